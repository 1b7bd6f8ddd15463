"""Image encoders from Hugging Face checkpoints: the vision tower of CLIP or SigLIP, and any
AutoModel that takes ``pixel_values`` (ViT, DINOv2, ConvNeXt, Swin, ...).

Pixels are prepared with Pillow and NumPy as the folder's ``preprocessor_config.json`` says
(size, crop, mean/std, filter), reproducing transformers' Pillow processors exactly (their
integer resize and crop offsets: :func:`image_preprocess.preprocess_image` resamples a
fractional crop box instead, up to a pixel off, which shifts a 224 px CLIP input by a mean
0.05-0.09 after normalisation). The transformers processors themselves are not used: by
default they want torchvision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from polymodal.encoders.base import EncoderInfo
from polymodal.encoders.hf_common import (
    Checkpoint,
    HFEncoder,
    HFModule,
    accepts,
    build_info,
    drop_masking_parameters,
    find_layers,
    load_config,
    load_model,
)
from polymodal.encoders.image_preprocess import normalize, stack_batch
from polymodal.errors import ConfigError
from polymodal.modality import Modality


@dataclass(frozen=True)
class VisionTower:
    """The vision half of a checkpoint: its class, the sub-config, and its embedding output."""

    model_class: str
    sub_config: str | None
    pooled: str


TOWERS = {
    "clip": VisionTower("CLIPVisionModelWithProjection", "vision_config", "image_embeds"),
    "siglip": VisionTower("SiglipVisionModel", "vision_config", "pooler_output"),
    "siglip_vision_model": VisionTower("SiglipVisionModel", None, "pooler_output"),
}


@dataclass(frozen=True)
class PixelRecipe:
    """How a checkpoint wants its pixels: resize, optional centre crop, then normalise."""

    size: int | tuple[int, int]  # int: the shorter side; (height, width): resized to exactly that
    crop: int | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resample: Image.Resampling

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the pixels the model receives."""
        if self.crop is not None:
            return self.crop, self.crop
        return self.size if isinstance(self.size, tuple) else (self.size, self.size)

    @property
    def draft_size(self) -> int:
        """A shorter side big enough for any resize this recipe does (for JPEG draft decoding)."""
        return max(self.size) if isinstance(self.size, tuple) else self.size

    def apply(self, image: Image.Image) -> np.ndarray:
        """RGB Pillow image -> float32 (3, H, W), pixel for pixel as transformers' Pillow
        processors do it (integer resize, integer crop offsets)."""
        width, height = image.size
        if isinstance(self.size, tuple):
            target = (self.size[1], self.size[0])
        elif width <= height:
            target = (self.size, int(self.size * height / width))
        else:
            target = (int(self.size * width / height), self.size)
        resized = image.convert("RGB").resize(target, self.resample)
        if self.crop is not None:
            left, top = (target[0] - self.crop) // 2, (target[1] - self.crop) // 2
            resized = resized.crop((left, top, left + self.crop, top + self.crop))
        return normalize(np.asarray(resized), mean=self.mean, std=self.std)

    def describe(self) -> dict[str, str]:
        return {
            "size": str(self.size),
            "crop": str(self.crop),
            "mean": str(self.mean),
            "std": str(self.std),
            "resample": self.resample.name.lower(),
        }


def pixel_recipe(config: dict[str, Any], where: str) -> PixelRecipe:
    """Read a Hugging Face ``preprocessor_config.json`` into a :class:`PixelRecipe`."""
    size_cfg = config.get("size", 224)
    crop_cfg = config.get("crop_size")
    size: int | tuple[int, int]
    if isinstance(size_cfg, int):
        # Old configs: an int is the shorter side when a crop follows, else a square.
        size = size_cfg if crop_cfg is not None else (size_cfg, size_cfg)
    elif "shortest_edge" in size_cfg:
        size = int(size_cfg["shortest_edge"])
    elif "height" in size_cfg and "width" in size_cfg:
        size = (int(size_cfg["height"]), int(size_cfg["width"]))
    else:
        raise ConfigError(f"{where}: image size {size_cfg} is not supported")
    crop = None
    if crop_cfg is not None and config.get("do_center_crop", True):
        if isinstance(crop_cfg, dict) and crop_cfg.get("height") != crop_cfg.get("width"):
            raise ConfigError(f"{where}: non-square crop {crop_cfg} is not supported")
        crop = int(crop_cfg if isinstance(crop_cfg, int) else crop_cfg["height"])
    elif isinstance(size, int) and config.get("crop_pct"):
        # ConvNeXt: below 384 px, resize to size / crop_pct and crop back; from 384, squash.
        if size < 384:
            size, crop = int(size / float(config["crop_pct"])), size
        else:
            size = (size, size)
    if crop is not None and crop > (min(size) if isinstance(size, tuple) else size):
        raise ConfigError(f"{where}: crop {crop} is larger than the resized image {size}")
    mean, std = _mean_std(config)
    resample = Image.Resampling(int(config.get("resample", Image.Resampling.BICUBIC)))
    return PixelRecipe(size=size, crop=crop, mean=mean, std=std, resample=resample)


def _mean_std(config: dict[str, Any]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std in the units of ``x / 255`` that image_preprocess.normalize uses."""
    mean = np.asarray(config.get("image_mean", 0.0), dtype=np.float64).reshape(-1)
    std = np.asarray(config.get("image_std", 1.0), dtype=np.float64).reshape(-1)
    if not config.get("do_normalize", True):
        mean, std = np.zeros(1), np.ones(1)
    rescale = float(config.get("rescale_factor", 1 / 255))
    if not config.get("do_rescale", True):
        rescale = 1.0
    # (x * rescale - mean) / std == (x / 255 - m') / s' with m' = mean / (255 rescale), s' likewise.
    factor = 255.0 * rescale
    return tuple(float(v) for v in mean / factor), tuple(float(v) for v in std / factor)


class ImageModule(HFModule):
    """Patch (or grid) states, an all-true mask, and the pooled vector."""

    def __init__(self, model: torch.nn.Module, layers_path: str, *, pooled: str) -> None:
        super().__init__(model, layers_path)
        self.pooled = pooled  # an output attribute, or "cls" / "mean" over the tokens

    def forward(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model(pixel_values=batch["pixel_values"])
        hidden = _as_tokens(out.last_hidden_state)
        if self.pooled == "cls":
            pooled = hidden[:, 0]
        elif self.pooled == "mean":
            pooled = hidden.mean(1)
        else:
            pooled = getattr(out, self.pooled).flatten(1)
        mask = torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)
        return hidden, mask, pooled


def _as_tokens(hidden: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) feature maps of convolutional models -> (B, H*W, C) tokens."""
    return hidden.flatten(2).transpose(1, 2) if hidden.dim() == 4 else hidden


class HFImageEncoder(HFEncoder):
    """Image file -> read_image -> the checkpoint's resize/crop/normalise -> model."""

    def __init__(
        self, info: EncoderInfo, module: ImageModule, recipe: PixelRecipe, *, batch_size: int = 16
    ) -> None:
        super().__init__(info, module, batch_size=batch_size)
        self.recipe = recipe

    def decode(self, value: str) -> np.ndarray:
        """Read and preprocess one image; unusable files raise InputError."""
        from polymodal.data.readers.image import read_image

        return self.recipe.apply(read_image(value, draft_size=self.recipe.draft_size))

    def collate(self, items: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        return {"pixel_values": torch.from_numpy(stack_batch(items))}

    def example_inputs(self, n: int) -> list[np.ndarray]:
        """``n`` random normalised images of the model's input size."""
        rng = np.random.default_rng(n)
        height, width = self.recipe.input_size
        return [rng.standard_normal((3, height, width)).astype(np.float32) for _ in range(n)]


def load_image(checkpoint: Checkpoint) -> HFImageEncoder:
    """An image encoder for ``checkpoint``."""
    pre = checkpoint.json("preprocessor_config.json")
    if pre is None:
        raise ConfigError(
            f"{checkpoint.root} has no preprocessor_config.json: the image size and "
            "normalisation it expects are unknown"
        )
    recipe = pixel_recipe(pre, str(checkpoint.root))
    tower = _tower(checkpoint)
    if tower is not None:
        model = _load_tower(checkpoint, tower)
        pooled = tower.pooled
    else:
        model = _load_auto(checkpoint)
        pooled = _choose_pooling(model, recipe)
    module = ImageModule(model, find_layers(model), pooled=pooled)
    with torch.inference_mode():
        probe = torch.zeros((1, 3, *recipe.input_size))
        tokens, _, vector = module({"pixel_values": probe})
    info = build_info(
        checkpoint,
        modality=Modality.IMAGE,
        width=vector.shape[-1],
        token_width=tokens.shape[-1],
        description=f"{checkpoint.model_type} image encoder from {checkpoint.source.location}",
        preprocessing={**recipe.describe(), "pooling": pooled},
    )
    return HFImageEncoder(info, module, recipe)


def _tower(checkpoint: Checkpoint) -> VisionTower | None:
    if checkpoint.model_type == "clip_vision_model":
        if "CLIPVisionModelWithProjection" in checkpoint.architectures:
            return VisionTower("CLIPVisionModelWithProjection", None, "image_embeds")
        return VisionTower("CLIPVisionModel", None, "pooler_output")
    return TOWERS.get(checkpoint.model_type)


def _load_tower(checkpoint: Checkpoint, tower: VisionTower) -> torch.nn.Module:
    import transformers

    config = None
    if tower.sub_config is not None:
        full = load_config(checkpoint.folder)
        config = getattr(full, tower.sub_config)
        if hasattr(full, "projection_dim"):
            # Sub-configs do not inherit the checkpoint's projection width.
            config.projection_dim = full.projection_dim
    model, _ = load_model(
        getattr(transformers, tower.model_class), checkpoint.folder, config=config
    )
    return model


def _load_auto(checkpoint: Checkpoint) -> torch.nn.Module:
    from transformers import AutoModel

    if checkpoint.model_type in ("clap", "clap_audio_model"):
        raise ConfigError(f"{checkpoint.root} is a CLAP (audio/text) checkpoint, not an image one")
    model, missing = load_model(AutoModel, checkpoint.folder, optional=("pooler.",))
    if not accepts(model, "pixel_values") or accepts(model, "input_ids"):
        raise ConfigError(
            f"{checkpoint.root}: {type(model).__name__} is not an image-only model; "
            "pass the right modality for this checkpoint"
        )
    drop_masking_parameters(model)
    if any(k.startswith("pooler.") for k in missing):
        # A classification checkpoint has no trained pooler: pool without it.
        model.pooler = None
    return model


def _choose_pooling(model: torch.nn.Module, recipe: PixelRecipe) -> str:
    """The model's own pooled output when it has one, else its CLS token, else the mean."""
    with torch.inference_mode():
        out = model(pixel_values=torch.zeros((1, 3, *recipe.input_size)))
    if getattr(out, "pooler_output", None) is not None:
        return "pooler_output"
    embeddings = getattr(model, "embeddings", None)
    return "cls" if getattr(embeddings, "cls_token", None) is not None else "mean"

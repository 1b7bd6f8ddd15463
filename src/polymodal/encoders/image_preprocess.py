"""Pixel preprocessing shared by image encoders: resize, centre crop, normalise, to float32 CHW.

(:func:`pixels_chw` gives uint8 CHW instead, for models that normalise inside their graph.)

Only Pillow and NumPy: no torchvision. The centre crop is taken from the source image and resized
in one Pillow call (``resize(box=...)``), which gives the same picture as "resize the shorter side,
then crop" (to within the half-pixel rounding of an integer crop) while resampling only the pixels
that are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from PIL import Image

ResampleName = Literal["nearest", "box", "bilinear", "hamming", "bicubic", "lanczos"]

_RESAMPLE: dict[str, Image.Resampling] = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def preprocess_image(
    image: Image.Image,
    *,
    size: int,
    crop: int | None = None,
    mean: float | Sequence[float] = 0.0,
    std: float | Sequence[float] = 1.0,
    resample: ResampleName | Image.Resampling = "bicubic",
) -> np.ndarray:
    """Resize so the shorter side is ``size``, centre-crop ``crop`` x ``crop``, normalise.

    Pixels are first scaled to [0, 1], then ``(x - mean) / std`` per channel (the Hugging Face
    convention; e.g. EfficientNet-Lite's ``(x - 127) / 128`` is ``mean=127/255, std=128/255``).
    ``crop=None`` keeps the whole resized image. Returns float32 (3, H, W).
    """
    resized = resize_and_crop(image, size=size, crop=crop, resample=resample)
    return normalize(np.asarray(resized), mean=mean, std=std)


def resize_and_crop(
    image: Image.Image,
    *,
    size: int,
    crop: int | None = None,
    resample: ResampleName | Image.Resampling = "bicubic",
) -> Image.Image:
    """The resize and centre crop of :func:`preprocess_image`, as an RGB Pillow image."""
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    if crop is not None and not 0 < crop <= size:
        raise ValueError(f"crop must be in 1..size ({size}), got {crop}")
    if image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    scale = size / min(width, height)
    method = _resample(resample)
    if crop is None:
        target = (max(1, round(width * scale)), max(1, round(height * scale)))
        return image if target == image.size else image.resize(target, method)
    # The crop window in source pixels: crop / scale wide, centred.
    side = crop / scale
    # Clamped: float rounding may put an edge a hair outside the image, which Pillow refuses.
    left = max(0.0, (width - side) / 2)
    top = max(0.0, (height - side) / 2)
    box = (left, top, min(float(width), left + side), min(float(height), top + side))
    return image.resize((crop, crop), method, box=box)


def normalize(
    pixels: np.ndarray, *, mean: float | Sequence[float] = 0.0, std: float | Sequence[float] = 1.0
) -> np.ndarray:
    """(H, W, 3) uint8 -> float32 (3, H, W) as ``(x / 255 - mean) / std``."""
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) pixels, got shape {pixels.shape}")
    mean_c = _per_channel(mean, "mean")
    std_c = _per_channel(std, "std")
    if np.any(std_c == 0):
        raise ValueError("std must be non-zero")
    # One fused multiply-add per value: x * (1 / (255 std)) - mean / std.
    scale = (1.0 / (255.0 * std_c)).astype(np.float32)
    offset = (-mean_c / std_c).astype(np.float32)
    chw = np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)
    chw *= scale[:, None, None]
    chw += offset[:, None, None]
    return chw


def pixels_chw(image: Image.Image) -> np.ndarray:
    """An RGB image as uint8 (3, H, W), for models that normalise inside their graph.

    A quarter of the bytes of the float32 form, and no arithmetic while decoding: the decode
    threads do less work and queued batches hold less memory.
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1))


def stack_batch(items: Sequence[np.ndarray]) -> np.ndarray:
    """Stack equally sized (3, H, W) arrays into one contiguous float32 (N, 3, H, W) batch."""
    if not items:
        raise ValueError("cannot stack an empty batch")
    return np.stack(items).astype(np.float32, copy=False)


def _per_channel(value: float | Sequence[float], name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size == 1:
        return np.repeat(arr, 3)
    if arr.size != 3:
        raise ValueError(f"{name} must be one number or three (RGB), got {arr.size}")
    return arr


def _resample(value: ResampleName | Image.Resampling) -> Image.Resampling:
    if isinstance(value, Image.Resampling):
        return value
    try:
        return _RESAMPLE[value]
    except KeyError:
        known = ", ".join(_RESAMPLE)
        raise ValueError(f"unknown resample filter {value!r}; use one of {known}") from None

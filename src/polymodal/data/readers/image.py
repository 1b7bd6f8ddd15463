"""Decode an image file into an RGB ``PIL.Image`` quickly, or say plainly why it cannot be used.

This is the hot path of image embedding, so it avoids work: the size is checked from the header
before any pixel is decoded, JPEGs are decoded at a reduced DCT scale when ``draft_size`` allows,
and an image that already is RGB with no EXIF rotation is returned as decoded, with no copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from polymodal.errors import InputError

DEFAULT_MAX_PIXELS = 64_000_000
"""More pixels than this (a 8000 x 8000 image) is refused as a likely decompression bomb."""

_WHITE = (255, 255, 255)
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_DEEP_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def read_image(
    path: str | Path,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft_size: int | None = None,
) -> Image.Image:
    """Read ``path`` as an RGB image with its EXIF orientation applied.

    Transparency is composited on white; greyscale, palette, CMYK and 16-bit images are converted
    to 8-bit RGB. With ``draft_size``, a JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8)
    whose shorter side is still at least ``draft_size`` pixels: several times faster when the
    caller is going to shrink the image anyway. Raises ``InputError`` for anything unusable.
    """
    if max_pixels <= 0:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    if draft_size is not None and draft_size <= 0:
        raise ValueError(f"draft_size must be positive, got {draft_size}")
    try:
        fp = open(path, "rb")  # noqa: SIM115 - closed below; the decoded image outlives it
    except FileNotFoundError:
        raise InputError("file not found", path=path) from None
    except IsADirectoryError:
        raise InputError("is a folder, not an image file", path=path) from None
    except PermissionError:
        raise InputError("permission denied", path=path) from None
    with fp:
        img = _decode(fp, path, max_pixels=max_pixels, draft_size=draft_size)
    orientation = _orientation(img)
    img = _to_rgb(img, path)
    method = _TRANSPOSE.get(orientation)
    return img if method is None else img.transpose(method)


def _decode(
    fp: BinaryIO, path: str | Path, *, max_pixels: int, draft_size: int | None
) -> Image.Image:
    """Open, check the header size, then decode every pixel (so that truncation shows here)."""
    fmt = "image"
    try:
        img = Image.open(fp)
        fmt = img.format or fmt
        pixels = img.width * img.height
        if pixels > max_pixels:
            raise InputError(_too_many(pixels, max_pixels), path=path)
        if draft_size is not None:
            img.draft("RGB", (draft_size, draft_size))
        img.load()
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(_not_an_image(fp), path=path) from None
    except Image.DecompressionBombError as exc:
        raise InputError(_bomb_message(str(exc), max_pixels), path=path) from None
    except Image.DecompressionBombWarning as exc:  # only when the caller made the warning an error
        raise InputError(_bomb_message(str(exc), max_pixels), path=path) from None
    except OSError as exc:
        if "truncated" in str(exc):
            raise InputError(
                f"truncated {fmt}: the file ends before the image data does", path=path
            ) from None
        raise InputError(f"corrupt {fmt}: {exc}", path=path) from None
    except Exception as exc:  # Pillow's plugins raise many types on bad data
        raise InputError(f"corrupt {fmt}: {type(exc).__name__}: {exc}", path=path) from None
    return img


def _orientation(img: Image.Image) -> int:
    """EXIF orientation (1 = upright); a damaged EXIF block does not make the pixels unusable."""
    try:
        return int(img.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:  # broken metadata, good pixels: keep the image upright
        return 1


def _to_rgb(img: Image.Image, path: str | Path) -> Image.Image:
    mode = img.mode
    if mode == "RGB" and "transparency" not in img.info:
        return img
    try:
        if mode in _ALPHA_MODES or "transparency" in img.info:
            rgba = img.convert("RGBA")
            out = Image.new("RGB", img.size, _WHITE)
            out.paste(rgba, mask=rgba.getchannel("A"))
            return out
        if mode in _DEEP_MODES or mode == "F":
            return Image.fromarray(_deep_to_uint8(np.asarray(img), mode)).convert("RGB")
        return img.convert("RGB")
    except (ValueError, OSError) as exc:
        raise InputError(f"unsupported colour mode {mode}: {exc}", path=path) from None


def _deep_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """Scale 16-bit (or 32-bit integer / float) pixels to 0..255; Pillow's convert would clip."""
    values = arr.astype(np.float32)
    if mode == "F":
        scale = 255.0 if float(np.nanmax(values, initial=0.0)) <= 1.0 else 1.0
    else:
        scale = 1.0 / 257.0  # 65535 -> 255
    return np.clip(np.nan_to_num(values * scale) + 0.5, 0, 255).astype(np.uint8)


def _too_many(pixels: int, limit: int) -> str:
    return f"image has {pixels:,} pixels, more than the limit of {limit:,}"


def _bomb_message(pillow_message: str, max_pixels: int) -> str:
    # Pillow's own guard (PIL.Image.MAX_IMAGE_PIXELS) fires inside Image.open, before our check.
    words = pillow_message.replace("(", " ").split()
    pixels = next((int(w) for w in words if w.isdigit()), None)
    if pixels is not None and pixels > max_pixels:
        return _too_many(pixels, max_pixels)
    return f"image refused by Pillow's decompression-bomb guard: {pillow_message}"


def _not_an_image(fp: BinaryIO) -> str:
    fp.seek(0)
    head = fp.read(64)
    if not head:
        return "zero-byte file"
    if _looks_like_text(head):
        snippet = head[:24].decode("utf-8", errors="replace").strip()
        return f"not an image: the file starts with text ({snippet!r})"
    return f"not an image: unrecognised format (first bytes {head[:8].hex(' ')})"


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    sample = head.decode("utf-8", errors="replace")
    good = sum(ch.isprintable() or ch in "\t\n\r" for ch in sample)
    return good >= 0.95 * len(sample)

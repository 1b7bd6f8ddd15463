"""Photo-like copies of the drawings: each cut-out pasted on a background, as if photographed.

The zero-shot target is phone photos (a garment lying on a bed or a floor), the training images
are drawings and cut-outs on white. Each copy puts the drawing's opaque part (its alpha channel,
or everything not near-white) at a random size, place and tilt on a background: a crop of one of
the Scratch background photos (rooms, floors, walls, outdoors) or a noisy solid colour; then
lighting, blur and JPEG compression vary. Everything is drawn from a generator seeded by the
image's path and the copy's number, so a re-run writes the same files (and reuses them).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageEnhance, ImageFilter

from . import IMAGE_COLUMNS, stable_name

SIZE = 256
BACKGROUNDS = Path("/usr/share/scratch/Media/Backgrounds")
_MAX_SIDE = 1024  # drawings are shrunk to this before anything else (some are huge)


@lru_cache(maxsize=1)
def _background_photos() -> tuple[Path, ...]:
    if not BACKGROUNDS.is_dir():
        return ()
    return tuple(sorted(p for p in BACKGROUNDS.rglob("*.jpg")))


def _rng(path: str, k: int) -> np.random.Generator:
    seed = int.from_bytes(hashlib.sha1(f"{path}\x1f{k}".encode()).digest()[:8], "little")
    return np.random.default_rng(seed)


def cutout(path: str | Path) -> Image.Image:
    """The drawing as RGBA: its own alpha, or near-white made transparent when it has none."""
    with Image.open(path) as img:
        img.draft("RGB", (_MAX_SIDE, _MAX_SIDE))
        img = img.convert("RGBA")
    img.thumbnail((_MAX_SIDE, _MAX_SIDE))
    rgba = np.asarray(img).copy()
    if (rgba[..., 3] == 255).all():
        white = (rgba[..., :3] > 245).all(axis=-1)
        rgba[..., 3] = np.where(white, 0, 255)
    box = Image.fromarray(rgba).getbbox()
    out = Image.fromarray(rgba)
    return out.crop(box) if box else out


def background(rng: np.random.Generator) -> Image.Image:
    """A SIZE x SIZE background: a crop of a background photo, or a noisy, shaded colour."""
    photos = _background_photos()
    if photos and rng.random() < 0.5:
        with Image.open(photos[int(rng.integers(len(photos)))]) as img:
            img = img.convert("RGB")
        side = int(min(img.size) * rng.uniform(0.3, 0.8))
        x = int(rng.integers(0, img.width - side + 1))
        y = int(rng.integers(0, img.height - side + 1))
        return img.crop((x, y, x + side, y + side)).resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    colour = rng.integers(40, 240, size=3)
    shade = np.linspace(rng.uniform(0.8, 1.0), rng.uniform(1.0, 1.2), SIZE)[:, None, None]
    noise = rng.normal(0, rng.uniform(2, 12), size=(SIZE, SIZE, 1))
    pixels = np.clip(colour[None, None, :] * shade + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def photo_like(path: str | Path, k: int) -> Image.Image:
    """Copy ``k`` of the drawing at ``path`` as a photo-like RGB image."""
    rng = _rng(str(path), k)
    canvas = background(rng)
    item = cutout(path)
    item = item.rotate(float(rng.uniform(-15, 15)), expand=True, resample=Image.Resampling.BILINEAR)
    scale = rng.uniform(0.55, 0.95) * SIZE / max(item.size)
    size = (max(1, round(item.width * scale)), max(1, round(item.height * scale)))
    item = item.resize(size, Image.Resampling.BILINEAR)
    x = int(rng.integers(0, SIZE - item.width + 1))
    y = int(rng.integers(0, SIZE - item.height + 1))
    canvas.paste(item, (x, y), item)
    canvas = ImageEnhance.Brightness(canvas).enhance(float(rng.uniform(0.75, 1.2)))
    canvas = ImageEnhance.Contrast(canvas).enhance(float(rng.uniform(0.75, 1.15)))
    if rng.random() < 0.5:
        canvas = canvas.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.2))))
    buf = BytesIO()
    canvas.save(buf, format="JPEG", quality=int(rng.integers(60, 92)))
    return Image.open(BytesIO(buf.getvalue())).convert("RGB")


def augmented_pairs(frame: pd.DataFrame, work: Path, *, copies: int = 1) -> pd.DataFrame:
    """``copies`` photo-like copies of every image pair in ``frame`` (same text, source and
    group, so a copy stays on its original's side of a split), written as JPEG under
    ``work/augmented/``. Images that cannot be read are skipped (counted in ``attrs``)."""
    rows = []
    failed = 0
    for image, text, source, group in frame[list(IMAGE_COLUMNS)].itertuples(index=False):
        for k in range(copies):
            out = work / "augmented" / stable_name(image, str(k), suffix=".jpg")
            if not out.is_file():
                try:
                    picture = photo_like(image, k)
                except (OSError, ValueError, Image.DecompressionBombError):
                    failed += 1
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                tmp = out.with_suffix(".tmp.jpg")
                picture.save(tmp, format="JPEG", quality=95)
                tmp.replace(out)  # a killed build never leaves half a file behind
            rows.append(
                {"image": str(out.resolve()), "text": text, "source": source, "group": group}
            )
    result = pd.DataFrame(rows, columns=list(IMAGE_COLUMNS))
    result.attrs["skipped"] = {"unreadable": failed}
    return result

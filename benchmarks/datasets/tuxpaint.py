"""Tux Paint stamps (Debian ``tuxpaint-stamps-default``): image + description + sound -> category.

A stamp is ``<name>.txt`` beside ``<name>.png`` and/or ``<name>.svg`` under
``/usr/share/tuxpaint/stamps/<category>/...``. Columns:

- ``image``: the PNG; an SVG-only stamp is rasterised to 256 px under the work folder with
  ``rsvg-convert`` (Debian ``librsvg2-bin``) or ``cairosvg`` when either is present, else its image
  is left empty (the stamp keeps its text and sound);
- ``text``: the first line of the ``.txt`` (English; the other lines are translations);
- ``sound``: ``<name>.ogg`` (or ``.wav``), the stamp's sound effect. ``<name>_desc*.ogg`` is
  someone reading the description aloud, which would leak the text, so it is never used;
  ``<name>_<locale>.ogg`` files are localised copies of the sound effect and are not used either;
- ``category``: the top-level folder (the label).

With tuxpaint-stamps-default 2022.06.04 there are 952 ``.txt`` files, 950 with an image (the two
``seasonal/christmas/gift*`` stamps have none) in 16 categories (``cartoon`` has no
descriptions); 134 of the 950 have a sound. Note that ``symbols/math/0..9`` and the German
letter stamps' sounds speak the digit or letter. Split by seed: 20% test, 20% val, stratified by
category.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pandas as pd

from . import BenchData, random_split

STAMPS = Path("/usr/share/tuxpaint/stamps")
LABEL = "category"
RASTER_PX = 256


def find_stamps(root: Path = STAMPS) -> pd.DataFrame:
    """One row per stamp with a description and an image: path stem, category, png, svg, sound."""
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root} not found: install the stamps with `apt-get install tuxpaint-stamps-default`"
        )
    rows = []
    for txt in sorted(root.rglob("*.txt")):
        stem = txt.with_suffix("")
        png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
        if not (png.is_file() or svg.is_file()):
            continue
        sound = next(
            (s for s in (stem.with_suffix(".ogg"), stem.with_suffix(".wav")) if s.is_file()), None
        )
        rows.append(
            {
                "stamp": str(stem.relative_to(root)),
                LABEL: stem.relative_to(root).parts[0],
                "text": _first_line(txt),
                "png": str(png) if png.is_file() else None,
                "svg": str(svg) if svg.is_file() else None,
                "sound": str(sound) if sound else None,
            }
        )
    return pd.DataFrame(rows)


def _first_line(path: Path) -> str | None:
    lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    first = lines[0].strip() if lines else ""
    return first or None


def rasterise(svg: Path, out: Path, px: int = RASTER_PX) -> bool:
    """Render ``svg`` to a PNG fitting ``px`` x ``px`` at ``out``; False when no renderer can."""
    if out.is_file():
        return True
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.png")
    if shutil.which("rsvg-convert"):
        cmd = ["rsvg-convert", "-a", "-w", str(px), "-h", str(px), "-o", str(tmp), str(svg)]
        done = subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
    else:
        try:
            import cairosvg  # optional, never a package dependency
        except ImportError:
            return False
        try:
            cairosvg.svg2png(url=str(svg), write_to=str(tmp), output_width=px)
            done = True
        except Exception:  # a broken SVG: the stamp keeps its text and sound
            done = False
    if done and tmp.is_file() and tmp.stat().st_size > 0:
        tmp.replace(out)  # rename: a killed build never leaves half a PNG behind
        return True
    tmp.unlink(missing_ok=True)
    return False


def build_tuxpaint(
    work: Path,
    *,
    seed: int = 0,
    limit: int | None = None,
    root: Path = STAMPS,
    svg: bool = True,
    sound_only: bool = False,
) -> BenchData:
    """The stamps table for ``seed``. ``svg=False`` leaves SVG-only stamps without an image;
    ``sound_only`` keeps the stamps that have a sound; ``limit`` keeps every n-th stamp so all
    categories stay (for quick tests)."""
    stamps = find_stamps(root)
    if sound_only:
        stamps = stamps[stamps["sound"].notna()].reset_index(drop=True)
    if limit is not None and limit < len(stamps):
        step = len(stamps) / limit
        stamps = stamps.iloc[[int(i * step) for i in range(limit)]].reset_index(drop=True)
    raster_dir = (work / "tuxpaint" / "svg").resolve()
    images: list[str | None] = []
    failed = 0
    for png, src, stamp in zip(stamps["png"], stamps["svg"], stamps["stamp"], strict=True):
        if isinstance(png, str):  # pandas keeps a missing path as NaN, not None
            images.append(png)
            continue
        out = raster_dir / f"{stamp}.png"
        if svg and rasterise(Path(src), out):
            images.append(str(out))
        else:
            images.append(None)
            failed += 1
    stamps["image"] = images
    stamps["split"] = random_split(
        len(stamps), seed, fractions=(0.2, 0.2), strata=stamps[LABEL].to_numpy()
    )
    frame = stamps[["stamp", "image", "text", "sound", LABEL, "split"]]
    notes = {
        "stamps": len(frame),
        "categories": int(frame[LABEL].nunique()),
        "png": int(stamps["png"].notna().sum()),
        "svg_rasterised": int(stamps["png"].isna().sum()) - failed,
        "no_image": int(frame["image"].isna().sum()),
        "with_sound": int(frame["sound"].notna().sum()),
        "per_category": {k: int(v) for k, v in frame[LABEL].value_counts().sort_index().items()},
    }
    return BenchData(
        name="tuxpaint",
        frame=frame.reset_index(drop=True),
        base=None,
        label=LABEL,
        problem="multiclass",
        columns={"image": "image", "text": "text", "sound": "audio"},
        groups={"image": ("image",), "text": ("text",), "audio": ("sound",)},
        notes=notes,
    )


def build_tuxpaint_sounds(work: Path, *, seed: int = 0, **options: object) -> BenchData:
    """The stamps that have a sound (134): image + text + sound all present in every row."""
    data = build_tuxpaint(work, seed=seed, sound_only=True, **options)  # type: ignore[arg-type]
    return replace(data, name="tuxpaint_sounds")

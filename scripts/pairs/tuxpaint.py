"""Tux Paint stamps (Debian ``tuxpaint-stamps-default``): images and sounds with their descriptions.

A stamp is ``<name>.txt`` beside ``<name>.png`` and/or ``<name>.svg``. The first line of the
``.txt`` is the English description ("A guinea fowl."); the ``xx.utf8=`` lines after it are
translations and are dropped. Sounds: ``<name>.ogg`` (or ``.wav``) is the stamp's sound effect
(for ``symbols/math/0..9`` someone says the digit), ``<name>_desc.ogg`` is an English speaker
reading the description (66 stamps). ``<name>_desc_<lang>.ogg`` are readings in other languages
and ``<name>_<locale>.ogg`` localised copies: neither is used.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd

from . import AUDIO_COLUMNS, IMAGE_COLUMNS, MissingData, clean_caption, evenly, frame_of

STAMPS = Path("/usr/share/tuxpaint/stamps")
RASTER_PX = 256


def descriptions(root: Path = STAMPS) -> dict[Path, str]:
    """Stamp stem (path without suffix) -> its cleaned English description."""
    if not root.is_dir():
        raise MissingData(f"{root} not found: apt-get install tuxpaint-stamps-default")
    out = {}
    for txt in sorted(root.rglob("*.txt")):
        lines = txt.read_text(encoding="utf-8-sig", errors="replace").splitlines()
        first = clean_caption(lines[0]) if lines else ""
        if first and "=" not in first:  # a file starting with a translation has no English line
            out[txt.with_suffix("")] = first
    return out


def image_pairs(work: Path, *, limit: int | None = None, root: Path = STAMPS) -> pd.DataFrame:
    """One pair per stamp with a description and an image; SVG-only stamps are rasterised to
    ``RASTER_PX`` under ``work/tuxpaint/svg`` (skipped, with a count, when no renderer exists)."""
    rows = []
    unrendered = 0
    for stem, text in evenly(sorted(descriptions(root).items()), limit):
        png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
        if png.is_file():
            image = png
        elif svg.is_file():
            image = work / "tuxpaint" / "svg" / stem.relative_to(root).with_suffix(".png")
            if not rasterise(svg, image):
                unrendered += 1
                continue
        else:
            continue
        rows.append(_row("image", image, text, stem, root))
    frame = frame_of(rows, IMAGE_COLUMNS)
    frame.attrs["skipped"] = {"svg not rendered": unrendered}
    return frame


def audio_pairs(work: Path, *, limit: int | None = None, root: Path = STAMPS) -> pd.DataFrame:
    """Each stamp's sound effect and its English spoken description, paired with the text."""
    rows = []
    for stem, text in evenly(sorted(descriptions(root).items()), limit):
        for sound in (stem.with_suffix(".ogg"), stem.with_suffix(".wav")):
            if sound.is_file():
                rows.append(_row("audio", sound, text, stem, root))
                break
        spoken = stem.parent / f"{stem.name}_desc.ogg"
        if spoken.is_file():
            rows.append(_row("audio", spoken, text, stem, root))
    return frame_of(rows, AUDIO_COLUMNS)


def _row(column: str, path: Path, text: str, stem: Path, root: Path) -> dict[str, str]:
    return {
        column: str(path.resolve()),
        "text": text,
        "source": "tuxpaint",
        "group": f"tuxpaint:{stem.relative_to(root)}",
    }


def rasterise(svg: Path, out: Path, px: int = RASTER_PX) -> bool:
    """Render ``svg`` into a PNG fitting ``px`` x ``px`` at ``out`` with ``rsvg-convert``
    (Debian ``librsvg2-bin``); False when it is absent or fails."""
    if out.is_file():
        return True
    if shutil.which("rsvg-convert") is None:
        return False
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.png")
    cmd = ["rsvg-convert", "-a", "-w", str(px), "-h", str(px), "-o", str(tmp), str(svg)]
    try:
        ok = subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
    except subprocess.TimeoutExpired:
        ok = False
    if ok and tmp.is_file() and tmp.stat().st_size > 0:
        tmp.replace(out)  # a killed build never leaves half a PNG behind
        return True
    tmp.unlink(missing_ok=True)
    return False

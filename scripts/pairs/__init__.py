"""Real (media, text) pairs for the default alignments, built offline from Debian packages.

Every builder returns a :class:`pandas.DataFrame` with the columns

- ``image`` or ``audio``: an absolute file path (system data, or a file generated under the work
  folder: rendered emoji, rasterised SVG stamps, synthesised speech);
- ``text``: the English caption (cleaned);
- ``source``: which builder made the pair (``tuxpaint``, ``openclipart``, ``emoji``, ...);
- ``group``: pairs that must land in the same train/validation split (the same stamp, emoji
  base, clip-art title or spoken sentence), so held-out retrieval never sees a near-copy.

System data is referenced by path, never copied. Nothing here reads ``shared/data/clothing``
(image zero-shot is reported on it) or ``shared/data/fsdd`` (audio zero-shot is reported on it).

    from scripts.pairs import image_pairs, audio_pairs
    images = image_pairs(Path("out/align"))
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

IMAGE_COLUMNS = ("image", "text", "source", "group")
AUDIO_COLUMNS = ("audio", "text", "source", "group")

# Debian package -> a file it installs, to tell whether it is there.
PACKAGES: dict[str, str] = {
    "tuxpaint-stamps-default": "/usr/share/tuxpaint/stamps",
    "openclipart-png": "/usr/share/openclipart/png",
    "openclipart-svg": "/usr/share/openclipart/svg",
    "fonts-noto-color-emoji": "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "unicode-data": "/usr/share/unicode/emoji/emoji-test.txt",
    "scratch": "/usr/share/scratch/Media",
    "espeak-ng": "/usr/bin/espeak-ng",
    "librsvg2-bin": "/usr/bin/rsvg-convert",  # rasterises the SVG-only Tux Paint stamps
    "wamerican": "/usr/share/dict/words",  # tells English OpenClipArt titles from Italian ones
}


class MissingData(RuntimeError):
    """A Debian package the pairs come from is not installed (the message says what to run)."""


def missing_packages(names: Iterable[str] | None = None) -> list[str]:
    """The packages among ``names`` (default: all of :data:`PACKAGES`) that are not installed."""
    return [n for n in (names or PACKAGES) if not Path(PACKAGES[n]).exists()]


def ensure_packages(names: Iterable[str] | None = None, *, install: bool = True) -> None:
    """Install the missing packages with apt-get when running as root; otherwise raise
    :class:`MissingData` naming the command to run."""
    missing = missing_packages(names)
    if not missing:
        return
    command = ["apt-get", "install", "-y", "-q", *missing]
    if not install or os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise MissingData(f"missing Debian data: run `sudo {' '.join(command)}`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(command, check=True, env=env)
    still = missing_packages(missing)
    if still:
        raise MissingData(f"apt-get did not install {', '.join(still)}")


# --------------------------------------------------------------------------- text cleaning
_SPACES = re.compile(r"\s+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def clean_caption(text: str) -> str:
    """Collapse whitespace, normalise quotes, drop a trailing full stop and surrounding quotes."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"')
    text = _SPACES.sub(" ", text.replace("\u201d", '"')).strip().strip("\"'").strip()
    return text[:-1].rstrip() if text.endswith(".") and not text.endswith("..") else text


def words_of_name(name: str) -> str:
    """A file or sound name as words: ``HorseGallop2`` -> ``horse gallop``, ``car-blue`` ->
    ``car blue``."""
    name = _CAMEL.sub(" ", Path(name).stem)
    name = re.sub(r"[_\-.]+", " ", name)
    name = re.sub(r"\d+", " ", name)
    name = re.sub(r"\b[a-z]\b$", " ", name.lower())  # "bat1-a": the frame letter of an animation
    return _SPACES.sub(" ", name).strip()


def stable_name(*parts: str, suffix: str) -> str:
    """A short file name that depends only on ``parts`` (re-runs reuse generated files)."""
    digest = hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]
    return f"{digest}{suffix}"


# --------------------------------------------------------------------------- splits and tables
def frame_of(rows: Sequence[dict[str, str]], columns: Sequence[str]) -> pd.DataFrame:
    """Rows -> a DataFrame with exactly ``columns``, duplicates (same media, same text) dropped."""
    frame = pd.DataFrame(list(rows), columns=list(columns))
    return frame.drop_duplicates(subset=[columns[0], "text"]).reset_index(drop=True)


def split_by_group(frame: pd.DataFrame, fraction: float, *, seed: int) -> np.ndarray:
    """A boolean mask of held-out rows: about ``fraction`` of the groups of each source, chosen
    by ``seed``; every row of a group falls on the same side."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    held = np.zeros(len(frame), dtype=bool)
    rng = np.random.default_rng(seed)
    for _, part in frame.groupby("source", sort=True):
        groups = np.array(sorted(part["group"].unique()))
        n = round(fraction * len(groups))
        chosen = set(rng.choice(groups, size=n, replace=False)) if n else set()
        held[part.index[part["group"].isin(chosen)]] = True
    return held


def cap_per_text(frame: pd.DataFrame, cap: int, *, seed: int) -> pd.DataFrame:
    """Keep at most ``cap`` rows per caption, so that 90 near-identical "gramastar" stars do not
    dominate a contrastive batch."""
    shuffled = frame.sample(frac=1.0, random_state=seed)
    kept = shuffled.groupby("text", sort=False).head(cap)
    return frame.loc[sorted(kept.index)].reset_index(drop=True)


def image_pairs(
    work: Path,
    *,
    sources: Sequence[str] = ("tuxpaint", "openclipart", "emoji", "scratch"),
    limit: int | None = None,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """All image-text pairs of ``sources`` (``limit`` keeps that many per source, spread evenly)."""
    from . import emoji, openclipart, scratch, tuxpaint

    builders: dict[str, Callable[..., pd.DataFrame]] = {
        "tuxpaint": tuxpaint.image_pairs,
        "openclipart": openclipart.image_pairs,
        "emoji": emoji.image_pairs,
        "scratch": scratch.image_pairs,
    }
    return _concat(builders, sources, work=work, limit=limit, log=log)


def audio_pairs(
    work: Path,
    *,
    sources: Sequence[str] = ("tuxpaint", "scratch", "speech"),
    limit: int | None = None,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """All audio-text pairs of ``sources``; FSDD is never among them (it is the held-out
    labelled sound set for audio zero-shot)."""
    from . import scratch, speech, tuxpaint

    builders: dict[str, Callable[..., pd.DataFrame]] = {
        "tuxpaint": tuxpaint.audio_pairs,
        "scratch": scratch.audio_pairs,
        "speech": speech.audio_pairs,
    }
    return _concat(builders, sources, work=work, limit=limit, log=log)


def _concat(
    builders: dict[str, Callable[..., pd.DataFrame]],
    sources: Sequence[str],
    *,
    work: Path,
    limit: int | None,
    log: Callable[[str], None],
) -> pd.DataFrame:
    unknown = sorted(set(sources) - set(builders))
    if unknown:
        raise ValueError(f"unknown sources {unknown}; known: {sorted(builders)}")
    parts = []
    for name in sources:
        part = builders[name](work, limit=limit)
        log(f"  {name}: {len(part)} pairs, {part['group'].nunique()} groups")
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def evenly(items: Sequence, limit: int | None) -> list:
    """Every n-th item so that ``limit`` remain (all of them when ``limit`` is None)."""
    items = list(items)
    if limit is None or limit >= len(items):
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]

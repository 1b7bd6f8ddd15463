"""Scratch 1.4 media (Debian ``scratch``): sounds, photos and drawings named by their files.

``Media/Sounds/<Category>/<Name>.wav|mp3`` (114 sounds in 8 categories): the caption is the name
as words plus the category ("horse gallop, animal sound"). ``Media/Backgrounds/<Place>/`` holds
photos and paintings named for what they show ("bench-with-view.jpg"), ``Media/Costumes/{Animals,
Things,Transportation,Fantasy}`` drawings ("cat1-a.gif" -> "cat"). Costumes of people are named
after the person drawn ("anjuli-1"), which says nothing of the picture, so they are left out, as
are the letter costumes, ``.sprite`` projects and names that are not English words.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from . import AUDIO_COLUMNS, IMAGE_COLUMNS, MissingData, evenly, frame_of, words_of_name

MEDIA = Path("/usr/share/scratch/Media")
SOUND_EXTENSIONS = (".wav", ".mp3")
IMAGE_EXTENSIONS = (".jpg", ".png", ".gif")
IMAGE_FOLDERS = (
    "Backgrounds/Indoors",
    "Backgrounds/Nature",
    "Backgrounds/Outdoors",
    "Backgrounds/Sports",
    "Costumes/Animals",
    "Costumes/Things",
    "Costumes/Transportation",
    "Costumes/Fantasy",
)
# Sound categories as a phrase that says what kind of sound it is.
SOUND_KIND = {
    "Animal": "animal sound",
    "Effects": "sound effect",
    "Electronic": "electronic sound",
    "Human": "human sound",
    "Instruments": "musical instrument",
    "Music Loops": "music loop",
    "Percussion": "percussion",
    "Vocals": "singing voice",
}


def _media(root: Path) -> Path:
    if not root.is_dir():
        raise MissingData(f"{root} not found: apt-get install scratch")
    return root


def audio_pairs(work: Path, *, limit: int | None = None, root: Path = MEDIA) -> pd.DataFrame:
    """One pair per sound: "<name as words>, <kind of sound>"."""
    del work
    sounds = sorted(
        p for p in (_media(root) / "Sounds").rglob("*") if p.suffix.lower() in SOUND_EXTENSIONS
    )
    rows = []
    for path in evenly(sounds, limit):
        kind = SOUND_KIND.get(path.parent.name, path.parent.name.lower())
        name = words_of_name(path.name)
        text = f"{name}, {kind}" if name and name not in kind else kind
        rows.append(
            {
                "audio": str(path),
                "text": text,
                "source": "scratch",
                "group": f"scratch:{path.parent.name}/{name}",
            }
        )
    return frame_of(rows, AUDIO_COLUMNS)


def image_pairs(work: Path, *, limit: int | None = None, root: Path = MEDIA) -> pd.DataFrame:
    """One pair per background photo or costume drawing whose name is English words."""
    del work
    from .openclipart import english_words

    vocab = english_words()
    images = [
        p
        for folder in IMAGE_FOLDERS
        for p in sorted((_media(root) / folder).glob("*"))
        if p.suffix.lower() in IMAGE_EXTENSIONS
    ]
    rows = []
    for path in evenly(images, limit):
        name = words_of_name(path.name)
        words = re.findall(r"[a-z]+", name)
        if not words or (vocab and not all(w in vocab for w in words)):
            continue
        background = path.parent.parent.name == "Backgrounds"
        text = f"{name}, {path.parent.name.lower()}" if background else name
        rows.append(
            {"image": str(path), "text": text, "source": "scratch", "group": f"scratch:{name}"}
        )
    return frame_of(rows, IMAGE_COLUMNS)

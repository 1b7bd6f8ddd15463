"""OpenClipArt (Debian ``openclipart-png`` + ``openclipart-svg``): drawings, titles and keywords.

Each ``png/<path>.png`` has an SVG twin at ``svg/<path>.svg`` whose ``<cc:Work>`` metadata holds
``dc:title`` and ``dc:subject`` keywords. Both are noisy: titles are often a collection name
("gramastar" x 1375, "Part of the Flat Icon Collection (...)", "Lemon SVG theme"), "Clipart by
<author> - <file name>", or Italian ("Cavallo"); keywords repeat the category ("computer",
"icons", "hash"). The caption is the title when it is a real English phrase, followed by up to
four informative keywords and its folder's name ("Bored dog: mammal, animal, dogs"); a drawing
with neither is dropped and counted. PNGs over ``MAX_PIXELS`` (the largest is 623 megapixels) are
skipped by their header size.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pandas as pd

from . import IMAGE_COLUMNS, MissingData, cap_per_text, clean_caption, evenly, frame_of

ROOT = Path("/usr/share/openclipart")
WORDS = Path("/usr/share/dict/words")  # Debian wamerican: tells English titles from Italian ones
MAX_PIXELS = 64_000_000  # the project's image reader refuses more
MAX_PER_CAPTION = 5
MAX_KEYWORDS = 4
# A title shared by this many drawings is a collection's name, not a description.
COLLECTION_SIZE = 8

_GENERIC_WORDS = (
    "hash icon icons theme computer action application applications mimetypes mime-types "
    "mimeicon filesystem appicon lemon_theme_icon magick unsorted special signs_and_symbols "
    "menu webpage clipart clip art svg png image picture drawing media remix public domain "
    "openclipart externalsource gradients white black simple bordered color colour cartoon "
    "line lineart architetto rollandin nicu buculei work"
)
_GENERIC = frozenset(_GENERIC_WORDS.split())
_BAD_TITLE = re.compile(
    r"^(part of|clipart by\b.*-\s*\w*\d|untitled|unnamed|layer|drawing|image|svg|hash\(|"
    r"open clip art)|\.svg$|\b(collection|iconset|icon theme|theme)\b",
    re.IGNORECASE,
)
_WORK = re.compile(r"<cc:Work\b.*?</cc:Work>", re.S)
_TITLE = re.compile(r"<dc:title>(.*?)</dc:title>", re.S)
_SUBJECT = re.compile(r"<dc:subject>(.*?)</dc:subject>", re.S)
_ITEM = re.compile(r"<rdf:li>(.*?)</rdf:li>", re.S)


def metadata(svg: Path) -> tuple[str, list[str]]:
    """The raw ``dc:title`` and keywords of the work described in ``svg`` ("" and [] if none)."""
    text = svg.read_text(encoding="utf-8", errors="replace")
    work = _WORK.search(text)
    if work is None:
        return "", []
    block = work.group(0)
    title = _TITLE.search(block)
    subject = _SUBJECT.search(block)
    keywords = _ITEM.findall(subject.group(1)) if subject else []
    return (title.group(1) if title else ""), keywords


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """Lower-case English words from the system word list (empty when it is absent)."""
    if not WORDS.is_file():
        return frozenset()
    return frozenset(w.strip().lower() for w in WORDS.read_text(errors="replace").splitlines())


def clean_title(title: str) -> str:
    """A usable title, or "" for a collection name, a file name or a non-English word."""
    title = clean_caption(title.replace("_", " "))
    match = re.match(r"clipart by [^-]+-\s*(.+)$", title, re.IGNORECASE)
    if match:  # "Clipart by Nicu Buculei - contour_chipmunk": the file name after the dash
        title = match.group(1)
    if not title or _BAD_TITLE.search(title) or re.search(r"\d", title):
        return ""
    words = re.findall(r"[a-z]+", title.lower())
    vocab = english_words()
    # "Cavallo", "Camicia in seta": most words must be English.
    if not words or (vocab and 2 * sum(w in vocab for w in words) < len(words) + 1):
        return ""
    return title[0].upper() + title[1:]


def clean_keywords(keywords: list[str], title: str) -> list[str]:
    """Informative keywords: no generic ones, none already in the title, no numbers or ids."""
    seen = set(re.findall(r"[a-z]+", title.lower()))
    vocab = english_words()
    out = []
    for raw in keywords:
        word = clean_caption(raw.replace("_", " ")).lower()
        parts = re.findall(r"[a-z]+", word)
        if not parts or word in _GENERIC or re.search(r"\d|0x", word) or word in seen:
            continue
        if vocab and not all(p in vocab for p in parts):  # "architetto francesco rollandin"
            continue
        seen.update(parts)
        out.append(word)
    return out[:MAX_KEYWORDS]


def caption(title: str, keywords: list[str]) -> str:
    """ "Title: kw, kw" / "Title" / "kw, kw" / "" from cleaned parts."""
    if title and keywords:
        return f"{title}: {', '.join(keywords)}"
    return title or ", ".join(keywords)


def image_pairs(work: Path, *, limit: int | None = None, root: Path = ROOT) -> pd.DataFrame:
    """One pair per drawing with a usable caption (at most ``MAX_PER_CAPTION`` per caption)."""
    del work  # PNGs are used where they lie
    png_root, svg_root = root / "png", root / "svg"
    if not png_root.is_dir() or not svg_root.is_dir():
        raise MissingData(f"{root} not found: apt-get install openclipart-png openclipart-svg")
    items = []
    for png in sorted(png_root.rglob("*.png")):
        svg = svg_root / png.relative_to(png_root).with_suffix(".svg")
        if svg.is_file():
            items.append((png, *metadata(svg)))
    # Titles shared across many drawings name a collection ("gramastar", "Lemon SVG theme").
    counts = Counter(clean_caption(t).lower() for _, t, _ in items)
    skipped: Counter[str] = Counter()
    rows = []
    for png, raw_title, raw_keywords in evenly(items, limit):
        title = "" if counts[clean_caption(raw_title).lower()] >= COLLECTION_SIZE else raw_title
        title = clean_title(title)
        # The folder names what is drawn as often as the keywords do ("people/clothing/hats").
        folder = png.parent.name.replace("_", " ") if png.parent != png_root else ""
        text = caption(title, clean_keywords([*raw_keywords, folder], title))
        if not text:
            skipped["no usable title or keyword"] += 1
            continue
        if _pixels(png) > MAX_PIXELS:
            skipped[f"over {MAX_PIXELS // 1_000_000} megapixels"] += 1
            continue
        group = f"openclipart:{title.lower() or text.lower()}"
        rows.append({"image": str(png), "text": text, "source": "openclipart", "group": group})
    frame = frame_of(rows, IMAGE_COLUMNS)
    capped = cap_per_text(frame, MAX_PER_CAPTION, seed=0)
    skipped[f"over {MAX_PER_CAPTION} with one caption"] += len(frame) - len(capped)
    capped.attrs["skipped"] = dict(skipped)
    return capped


def _pixels(path: Path) -> int:
    """Width x height from the PNG header (Pillow's own bomb check would raise on opening)."""
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return 0  # not a PNG after all: the image reader will say so when it is embedded
    return int.from_bytes(head[16:20], "big") * int.from_bytes(head[20:24], "big")

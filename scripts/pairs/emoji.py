"""Emoji (Debian ``fonts-noto-color-emoji`` + ``unicode-data``): rendered pictures with their names.

``/usr/share/unicode/emoji/emoji-test.txt`` lists every emoji with its official name, group and
subgroup; only fully-qualified ones are used, without the skin-tone variants (the same picture
five more times, which would crowd contrastive batches) and without the "Component" group (bare
skin-tone swatches and hair parts). Each is drawn with Pillow from Noto Color Emoji at its one
bitmap size (109 px) on a white square, saved as PNG under ``work/emoji/``. A sequence the font
cannot draw as one glyph (it would come out as several pictures side by side) is skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from . import IMAGE_COLUMNS, MissingData, clean_caption, evenly, frame_of

EMOJI_TEST = Path("/usr/share/unicode/emoji/emoji-test.txt")
FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
FONT_SIZE = 109  # Noto Color Emoji is a bitmap font with this one size
GLYPH_WIDTH = 136  # the width of one glyph at FONT_SIZE
CANVAS = 160
_SKIN_TONES = frozenset(range(0x1F3FB, 0x1F400))
_LINE = re.compile(r"^([0-9A-F ]+?)\s*;\s*fully-qualified\s*#\s*\S+\s+E[\d.]+\s+(.+)$")


@dataclass(frozen=True)
class EmojiEntry:
    """One emoji: its characters, official name, group and subgroup."""

    chars: str
    name: str
    group: str
    subgroup: str


def read_emoji_test(path: Path = EMOJI_TEST) -> list[EmojiEntry]:
    """The fully-qualified emoji of ``emoji-test.txt``, less skin-tone variants and components."""
    if not path.is_file():
        raise MissingData(f"{path} not found: apt-get install unicode-data")
    out = []
    group = subgroup = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif (match := _LINE.match(line)) and group != "Component":
            codes = [int(c, 16) for c in match.group(1).split()]
            if not _SKIN_TONES.intersection(codes):
                chars = "".join(map(chr, codes))
                out.append(EmojiEntry(chars, match.group(2).strip(), group, subgroup))
    return out


@lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont:
    if not FONT.is_file():
        raise MissingData(f"{FONT} not found: apt-get install fonts-noto-color-emoji")
    return ImageFont.truetype(str(FONT), FONT_SIZE)


def render(chars: str, out: Path) -> bool:
    """Draw ``chars`` centred on a white ``CANVAS`` square into ``out`` (PNG); False when the
    font draws it as more than one glyph."""
    if out.is_file():
        return True
    font = _font()
    left, top, right, bottom = font.getbbox(chars, mode="RGBA")
    if right - left > GLYPH_WIDTH * 1.5:  # several glyphs: the font cannot join the sequence
        return False
    glyph = Image.new("RGBA", (right - left, bottom - top), (255, 255, 255, 0))
    ImageDraw.Draw(glyph).text((-left, -top), chars, font=font, embedded_color=True)
    if glyph.getbbox() is None:  # nothing drawn
        return False
    canvas = Image.new("RGB", (CANVAS, CANVAS), (255, 255, 255))
    scale = min(1.0, (CANVAS - 8) / max(glyph.size))
    if scale < 1.0:
        size = (round(glyph.width * scale), round(glyph.height * scale))
        glyph = glyph.resize(size, Image.Resampling.LANCZOS)
    canvas.paste(glyph, ((CANVAS - glyph.width) // 2, (CANVAS - glyph.height) // 2), glyph)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.png")
    canvas.save(tmp, format="PNG")
    tmp.replace(out)  # a killed build never leaves half a PNG behind
    return True


def caption(entry: EmojiEntry) -> str:
    """The official name, made a phrase: "flag: Germany" -> "flag of Germany", "keycap: 7" ->
    "keycap 7"."""
    name = entry.name
    if name.startswith("flag: "):
        return f"flag of {name[6:]}"
    return clean_caption(name.replace(": ", " ").replace("’", "'"))


def image_pairs(work: Path, *, limit: int | None = None, path: Path = EMOJI_TEST) -> pd.DataFrame:
    """One pair per drawable emoji: its rendered picture and its name."""
    rows = []
    skipped = 0
    for entry in evenly(read_emoji_test(path), limit):
        png = work / "emoji" / f"{'-'.join(f'{ord(c):x}' for c in entry.chars)}.png"
        if not render(entry.chars, png):
            skipped += 1
            continue
        rows.append(
            {
                "image": str(png.resolve()),
                "text": caption(entry),
                "source": "emoji",
                "group": f"emoji:{entry.name}",
            }
        )
    frame = frame_of(rows, IMAGE_COLUMNS)
    frame.attrs["skipped"] = {"not one glyph": skipped}
    return frame

"""Clean a text cell: one Unicode form, no control characters, tidy whitespace, bounded length."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from polymodal.errors import InputError

DEFAULT_MAX_CHARS = 20_000

# Control characters (category Cc) that are not whitespace, plus the byte-order mark that
# spreadsheets leave at the start of cells. Other format characters (zero-width joiners in emoji)
# carry meaning and stay.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ufeff]")
# The characters str.splitlines() breaks at; a whitespace run holding one becomes a newline.
_BREAKING_SPACE = re.compile(r"\s*[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]\s*")
_SPACE = re.compile(r"[^\S\n]+")


@dataclass(frozen=True)
class TextValue:
    """A cleaned text; ``original_chars`` counts the cleaned text before truncation."""

    text: str
    truncated: bool
    original_chars: int


def read_text(value: str, *, max_chars: int = DEFAULT_MAX_CHARS) -> TextValue:
    """Normalise ``value`` (NFC, no NULs or control characters, whitespace runs collapsed).

    A run of whitespace that contains a line break becomes one newline, any other run one space,
    so paragraphs stay apart. Text longer than ``max_chars`` is cut and reported through
    ``.truncated``; that is not an error. Empty or whitespace-only text raises ``InputError``.
    """
    if max_chars <= 0:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    if not isinstance(value, str):
        raise InputError(f"not text: got a value of type {type(value).__name__}")
    # Controls go first so that a letter and an accent they separated compose under NFC.
    text = unicodedata.normalize("NFC", _CONTROL.sub("", value))
    text = _BREAKING_SPACE.sub("\n", text)
    text = _SPACE.sub(" ", text).strip()
    if not text:
        raise InputError("empty text")
    n = len(text)
    if n <= max_chars:
        return TextValue(text=text, truncated=False, original_chars=n)
    return TextValue(text=text[:max_chars].rstrip(), truncated=True, original_chars=n)

from __future__ import annotations

import unicodedata

import pytest

from polymodal.data.readers.text import DEFAULT_MAX_CHARS, TextValue, read_text
from polymodal.errors import InputError


def test_nfc_normalisation() -> None:
    decomposed = "Cafe\u0301 cre\u0300me"
    out = read_text(decomposed)
    assert out.text == "Café crème"
    assert unicodedata.is_normalized("NFC", out.text)
    assert len(out.text) == 10


def test_nuls_and_control_characters_are_removed() -> None:
    out = read_text("\ufeffab\x00c\x07d\x1be\x7ff\x9bg")
    assert out.text == "abcdefg"


def test_a_control_between_letter_and_accent_does_not_block_composition() -> None:
    assert read_text("e\x00\u0301").text == "é"


def test_whitespace_runs_collapse_but_paragraphs_stay_apart() -> None:
    out = read_text("  one \t\t two\u00a0\u2003three \r\n\r\n\n  four\x0cfive  ")
    assert out.text == "one two three\nfour\nfive"


def test_emoji_sequences_keep_their_joiners() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert read_text(f"hi {family}").text == f"hi {family}"


def test_short_text_is_not_truncated() -> None:
    assert read_text("hello world") == TextValue("hello world", truncated=False, original_chars=11)


def test_long_text_is_truncated_and_reported_not_an_error() -> None:
    words = ("lorem ipsum dolor " * 6000)[:100_000]
    assert len(words) == 100_000
    out = read_text(words)
    assert out.truncated is True
    assert out.original_chars == len(words.strip())
    assert len(out.text) <= DEFAULT_MAX_CHARS == 20_000
    assert out.text == words[: len(out.text)]
    assert len(out.text) >= DEFAULT_MAX_CHARS - 1  # only a trailing space may go


def test_max_chars_is_a_parameter() -> None:
    out = read_text("abcdefghij", max_chars=4)
    assert out == TextValue("abcd", truncated=True, original_chars=10)


@pytest.mark.parametrize("value", ["", "   ", "\n\t \r\n", "\x00\x00", "\ufeff"])
def test_empty_text(value: str) -> None:
    with pytest.raises(InputError, match="empty text"):
        read_text(value)


@pytest.mark.parametrize("value", [None, 3.5, b"bytes"])
def test_non_text_values(value: object) -> None:
    with pytest.raises(InputError, match="not text"):
        read_text(value)  # type: ignore[arg-type]

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import describe_media as media
from polymodal.describe import ocr as ocr_module
from polymodal.describe.ocr import OcrBox, OcrEngine, reading_order, respace
from polymodal.errors import ConfigError


def _box(text: str, left: float, top: float, right: float, bottom: float) -> OcrBox:
    return OcrBox(text, 1.0, (left, top, right, bottom))


def test_reading_order_is_top_to_bottom_then_left_to_right() -> None:
    boxes = [
        _box("world", 100, 12, 160, 40),
        _box("second", 10, 70, 90, 98),
        _box("Hello", 10, 10, 90, 38),  # a little higher than "world": same line still
        _box("line", 100, 72, 150, 99),
    ]
    lines = reading_order(boxes)
    assert [[b.text for b in line] for line in lines] == [["Hello", "world"], ["second", "line"]]


def test_respace_restores_wide_gaps_only() -> None:
    # "Freshbread" as RapidOCR gives it: character quads with a wide gap between h and b.
    spans = [(29, 41), (41, 53), (53, 67), (69, 84), (86, 101)]
    spans += [(111, 126), (127, 141), (141, 155), (157, 171), (177, 192)]
    quads = [[[a, 0], [b, 0], [b, 9], [a, 9]] for a, b in spans]
    assert respace("Freshbread", list("Freshbread"), quads) == "Fresh bread"
    tight = [[[10 * i, 0], [10 * i + 9, 0], [10 * i + 9, 9], [10 * i, 9]] for i in range(5)]
    assert respace("hello", list("hello"), tight) == "hello"


def test_unknown_engine_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown OCR engine"):
        OcrEngine("abbyy")


def test_missing_tesseract_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr_module, "TESSERACT", "/nonexistent/tesseract")
    with pytest.raises(ConfigError, match="apt-get install tesseract-ocr"):
        OcrEngine("tesseract")


@pytest.mark.real_weights
def test_rapidocr_reads_rendered_lines_in_order(sign_png: Path, blank_png: Path) -> None:
    engine = OcrEngine()
    found = engine.read(sign_png)
    assert found.text == "OPEN DAILY\nFresh bread"
    assert all(b.score > 0.9 for b in found.boxes)
    assert engine.read(blank_png).empty


@pytest.mark.skipif(not Path(ocr_module.TESSERACT).is_file(), reason="tesseract not installed")
def test_tesseract_reads_rendered_lines(sign_png: Path) -> None:
    img = media.text_image(["OPEN DAILY", "Fresh bread"], size=36, width=480)
    assert OcrEngine("tesseract").read(img).text == "OPEN DAILY\nFresh bread"
    assert OcrEngine("tesseract").read(media.text_image([], width=200)).empty


@pytest.mark.real_weights
def test_rapidocr_reads_again_a_long_thin_line_it_first_returned_empty() -> None:
    font = media.FONTS / "liberation" / "LiberationSans-Regular.ttf"
    if not font.is_file():
        pytest.skip("Liberation fonts not installed")
    lines = [
        "Bread, sliced, and shared by everyone.",
        "Gimel stands for gants or all. If the dreidel lands on gimel, take everything in the "
        "middle.",
    ]
    # Recorded: RapidOCR's batched recogniser gives '' (score 0) for the second line here.
    found = OcrEngine().read(media.text_image(lines, font=font, size=12, width=1043)).text
    assert "Gimel stands for gants" in found

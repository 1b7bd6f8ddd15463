"""Text found in images: PP-OCRv4 through RapidOCR (default, weights ship in its pip package) or
Debian's Tesseract, read in reading order (top to bottom, then left to right within a line)."""

from __future__ import annotations

import importlib.util
import itertools
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from polymodal.errors import ConfigError, InputError

ENGINES = ("rapidocr", "tesseract")
TESSERACT = "/usr/bin/tesseract"
# Two boxes sit on one line when their vertical overlap is at least this share of the shorter.
_SAME_LINE_OVERLAP = 0.5
_REREAD_HEIGHT = 48  # a line read again is enlarged to about the recogniser's input height
_LINE_ASPECT = 8  # boxes this many times wider than tall are lines of text worth reading again
_SPACE_WIDTH = 0.55  # a gap wider than this share of a character is a space


@dataclass(frozen=True)
class OcrBox:
    """One piece of text and where it is: (left, top, right, bottom) in pixels."""

    text: str
    score: float
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class OcrResult:
    """The text of an image in reading order (lines joined by newlines) and its pieces."""

    text: str
    boxes: list[OcrBox] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.text


class OcrEngine:
    """Read the text in images with ``engine`` ("rapidocr" or "tesseract").

    ``min_score``: RapidOCR pieces recognised with less confidence are dropped (photos without
    text otherwise yield scraps of noise). ``respace``: put back the spaces between words that
    RapidOCR's recogniser drops, from its character positions (see :func:`respace`).
    """

    def __init__(
        self, engine: str = "rapidocr", *, min_score: float = 0.5, respace: bool = True
    ) -> None:
        if engine not in ENGINES:
            raise ConfigError(f"unknown OCR engine {engine!r}: use one of {', '.join(ENGINES)}")
        if engine == "tesseract" and not Path(TESSERACT).is_file():
            raise ConfigError(
                f"OCR engine 'tesseract' needs {TESSERACT}: apt-get install tesseract-ocr "
                "tesseract-ocr-eng (or use the default engine, rapidocr)"
            )
        if engine == "rapidocr":
            _check_rapidocr()
        self.engine = engine
        self.min_score = min_score
        self.respace = respace
        self._rapid: Any = None
        self._lock = threading.Lock()

    def read(self, image: Image.Image | str | Path) -> OcrResult:
        """The text in ``image`` (a PIL image or a file); empty text when there is none."""
        if not isinstance(image, Image.Image):
            from polymodal.data.readers.image import read_image

            image = read_image(image)
        if self.engine == "tesseract":
            return _tesseract(image)
        return self._rapidocr(image)

    def _rapidocr(self, image: Image.Image) -> OcrResult:
        with self._lock:
            if self._rapid is None:
                from rapidocr_onnxruntime import RapidOCR

                self._rapid = RapidOCR()
            # RapidOCR keeps per-call state in its sub-models; one call at a time.
            # text_score=0: empty pieces must reach us to be read again; min_score filters.
            found, _ = self._rapid(image.convert("RGB"), return_word_box=True, text_score=0.0)
        boxes = []
        for points, text, score, *chars in found or []:
            pts = np.asarray(points, dtype=np.float32)
            box = (float(pts[:, 0].min()), float(pts[:, 1].min()))
            box += (float(pts[:, 0].max()), float(pts[:, 1].max()))
            text, score = str(text).strip(), float(score)
            if (not text or score < self.min_score) and _line_like(box):
                # Long thin lines sometimes come back empty or garbled from the batched
                # recogniser; read alone and enlarged, they are read (a 466 x 14 px line of the
                # OCR benchmark came back as '').
                text, score = self._reread(image, box)
            elif self.respace and len(chars) >= 2 and " " not in text:
                # A piece with spaces already was split by the recogniser: trust it.
                text = respace(text, chars[1], chars[0])
            if score >= self.min_score and text:
                boxes.append(OcrBox(text, score, box))
        ordered = reading_order(boxes)
        return OcrResult("\n".join(" ".join(b.text for b in line) for line in ordered), boxes)

    def _reread(
        self, image: Image.Image, box: tuple[float, float, float, float]
    ) -> tuple[str, float]:
        with self._lock:
            found, _ = self._rapid(_crop(image, box).convert("RGB"), use_det=False, use_cls=False)
        if not found:
            return "", 0.0
        text, score = found[0][0], found[0][1]
        return str(text).strip(), float(score)


def _line_like(box: tuple[float, float, float, float]) -> bool:
    return box[2] - box[0] >= _LINE_ASPECT * max(1.0, box[3] - box[1])


def _crop(image: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    left, top, right, bottom = box
    pad = max(2.0, 0.15 * (bottom - top))
    crop = image.crop(
        (
            int(max(0, left - pad)),
            int(max(0, top - pad)),
            int(min(image.width, right + pad)),
            int(min(image.height, bottom + pad)),
        )
    )
    scale = max(1, round(_REREAD_HEIGHT / max(1, crop.height)))
    return crop.resize((crop.width * scale, crop.height * scale), Image.Resampling.BICUBIC)


def respace(text: str, chars: Sequence[str], char_boxes: Sequence[Any]) -> str:
    """Put back the spaces PP-OCR's recogniser drops between words ("Freshbread").

    A gap between two characters counts as a space when it is wider than half a character and
    than twice the usual gap of the line. ``char_boxes`` are RapidOCR's per-character quads.
    """
    if len(chars) != len(char_boxes) or len(chars) < 3:
        return text
    # (character, left, right, whether the recogniser put a space before it)
    letters: list[tuple[str, float, float, bool]] = []
    spaced = False
    for c, b in zip(chars, char_boxes, strict=True):
        if not c.strip():
            spaced = True
            continue
        letters.append((c, float(b[0][0]), float(b[1][0]), spaced))
        spaced = False
    if len(letters) < 3:
        return text
    gaps = [b[1] - a[2] for a, b in itertools.pairwise(letters)]
    width = float(np.median([right - left for _, left, right, _ in letters]))
    wide = max(_SPACE_WIDTH * width, 2 * float(np.median(gaps)))
    out = [letters[0][0]]
    for (c, _, _, was_spaced), gap in zip(letters[1:], gaps, strict=True):
        out.append(" " + c if was_spaced or gap > wide else c)
    return "".join(out)


def reading_order(boxes: Sequence[OcrBox]) -> list[list[OcrBox]]:
    """Group boxes into lines (by vertical overlap), lines top to bottom, boxes left to right."""
    lines: list[list[OcrBox]] = []
    for box in sorted(boxes, key=lambda b: (b.box[1] + b.box[3]) / 2):
        line = lines[-1] if lines else None
        if line is not None and _overlap(line, box) >= _SAME_LINE_OVERLAP:
            line.append(box)
        else:
            lines.append([box])
    return [sorted(line, key=lambda b: b.box[0]) for line in lines]


def _overlap(line: list[OcrBox], box: OcrBox) -> float:
    top, bottom = min(b.box[1] for b in line), max(b.box[3] for b in line)
    inter = min(bottom, box.box[3]) - max(top, box.box[1])
    shorter = min(bottom - top, box.box[3] - box.box[1])
    return inter / shorter if shorter > 0 else 0.0


def _tesseract(image: Image.Image) -> OcrResult:
    with tempfile.TemporaryDirectory(prefix="polymodal-ocr-") as tmp:
        path = Path(tmp) / "page.png"
        image.convert("RGB").save(path)
        done = subprocess.run(
            [TESSERACT, str(path), "stdout"], capture_output=True, text=True, timeout=120
        )
    if done.returncode != 0:
        raise InputError(f"tesseract failed: {done.stderr.strip()[-300:]}")
    lines = [" ".join(line.split()) for line in done.stdout.splitlines()]
    return OcrResult("\n".join(line for line in lines if line))


def _check_rapidocr() -> None:
    # find_spec, not import: importing it loads OpenCV, which only the first read should pay for.
    if importlib.util.find_spec("rapidocr_onnxruntime") is None:
        raise ConfigError(
            "OCR engine 'rapidocr' needs the rapidocr-onnxruntime package: "
            "pip install rapidocr-onnxruntime==1.4.4 (or use ocr='tesseract')"
        )

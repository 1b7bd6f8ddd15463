"""Describe: every medium turned into text — captions, text in images (OCR), transcripts with
timestamps, sound tags, and key frames of videos — for accessibility, search and features.

Everyday use::

    from polymodal.describe import Describer
    d = Describer().describe("photo.jpg")
    print(d.outcome, d.as_text())

Names are imported lazily: ``import polymodal.describe`` loads no model and no heavy library.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "Description": "description",
    "FrameDescription": "description",
    "Segment": "description",
    "OcrEngine": "ocr",
    "OcrResult": "ocr",
    "Transcriber": "transcribe",
    "Transcript": "transcribe",
    "SoundTagger": "sound_tags",
    "Describer": "describer",
    "describe_values": "describer",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)

"""Readers: one file or cell in, a clean in-memory value out, or an ``InputError`` that says why.

Names are imported lazily: importing one reader must not pay for another's library (PyAV).
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "AudioInfo": "audio",
    "audio_info": "audio",
    "read_audio": "audio",
    "read_audio_track": "audio",
    "stream_audio": "audio",
    "DEFAULT_MAX_PIXELS": "image",
    "read_image": "image",
    "TextValue": "text",
    "read_text": "text",
    "VideoClip": "video",
    "read_video": "video",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)

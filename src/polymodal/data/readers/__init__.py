"""Readers: one file or cell in, a clean in-memory value out, or an ``InputError`` that says why."""

from polymodal.data.readers.audio import (
    AudioInfo,
    audio_info,
    read_audio,
    read_audio_track,
    stream_audio,
)
from polymodal.data.readers.image import DEFAULT_MAX_PIXELS, read_image
from polymodal.data.readers.text import TextValue, read_text
from polymodal.data.readers.video import VideoClip, read_video

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "AudioInfo",
    "TextValue",
    "VideoClip",
    "audio_info",
    "read_audio",
    "read_audio_track",
    "read_image",
    "read_text",
    "read_video",
    "stream_audio",
]

"""Key frames of a video: a frame at each scene change, and at least one every ``every`` seconds.

Frames are decoded at ``sample_fps`` and compared as 32 x 32 greyscale thumbnails; a frame
whose mean absolute difference from the last key frame exceeds ``scene_threshold`` (0-1) starts a
new scene. Only key frames are kept in memory, so long videos stay cheap in memory (not in time:
every frame is decoded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

from polymodal.data.paths import check_file
from polymodal.data.readers.image import DEFAULT_MAX_PIXELS
from polymodal.errors import InputError

_THUMB = (32, 32)


@dataclass
class KeyFrame:
    """A frame kept for describing: its time in seconds from the start and its pixels (RGB)."""

    time: float
    image: Image.Image


@dataclass(frozen=True)
class VideoInfo:
    """What the container says: duration (0 when unknown) and whether it carries sound."""

    seconds: float
    has_audio: bool


def video_info(path: str | Path) -> VideoInfo:
    """Read the container header; ``InputError`` for a corrupt container or no video stream."""
    p = Path(path)
    check_file(p)
    with _open(p) as container:
        if not container.streams.video:
            raise InputError("no video stream in the file", path=p)
        seconds = (container.duration or 0) / av.time_base
        return VideoInfo(seconds=float(seconds), has_audio=bool(container.streams.audio))


def key_frames(
    path: str | Path,
    *,
    every: float = 5.0,
    scene_threshold: float = 0.05,
    sample_fps: float = 2.0,
    max_frames: int = 32,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[KeyFrame]:
    """Key frames of ``path`` (see the module docstring), at most ``max_frames`` of them."""
    if every <= 0 or sample_fps <= 0 or max_frames <= 0:
        raise ValueError("every, sample_fps and max_frames must be positive")
    p = Path(path)
    check_file(p)
    kept: list[KeyFrame] = []
    last_thumb: np.ndarray | None = None
    next_sample = 0.0
    with _open(p) as container:
        if not container.streams.video:
            raise InputError("no video stream in the file", path=p)
        stream = container.streams.video[0]
        pixels = stream.codec_context.width * stream.codec_context.height
        if pixels > max_pixels:
            raise InputError(
                f"video frames have {pixels:,} pixels, more than the limit of {max_pixels:,}",
                path=p,
            )
        stream.thread_type = "AUTO"
        start: float | None = None
        try:
            for index, frame in enumerate(container.decode(stream)):
                t = float(frame.time) if frame.time is not None else index / 25.0
                start = t if start is None else start
                t -= start
                if t + 1e-3 < next_sample:
                    continue
                next_sample = (math.floor(t * sample_fps + 1e-3) + 1) / sample_fps
                image = frame.to_image()
                thumb = _thumb(image)
                due = not kept or t - kept[-1].time >= every - 1e-3
                if due or _change(last_thumb, thumb) > scene_threshold:
                    kept.append(KeyFrame(round(t, 3), image))
                    last_thumb = thumb
                    if len(kept) >= max_frames:
                        break
        except av.error.FFmpegError as exc:
            raise InputError(f"corrupt video data: {_message(exc)}", path=p) from None
    if not kept:
        raise InputError("video has no decodable frames", path=p)
    return kept


def _thumb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L").resize(_THUMB, Image.Resampling.BILINEAR), np.float32)


def _change(a: np.ndarray | None, b: np.ndarray) -> float:
    return math.inf if a is None else float(np.abs(a - b).mean() / 255.0)


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        raise InputError(
            f"corrupt or unsupported video container: {_message(exc)}", path=path
        ) from None


def _message(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or exc)

"""Sample frames from a video at a fixed rate, by their timestamps, and read its audio track."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

from polymodal.data.paths import check_file
from polymodal.data.readers.audio import _av_message, read_audio_track
from polymodal.data.readers.image import DEFAULT_MAX_PIXELS
from polymodal.errors import InputError

# Timestamps are rounded to the stream's time base; a frame this close before a target time is
# treated as on it, so that 0.999999 s counts as 1 s.
_EPS_S = 1e-3


@dataclass
class VideoClip:
    """Frames (RGB) with their times in seconds from the start, and the audio track.

    ``audio`` is float32 mono at ``sample_rate``; it is None when the video has no audio track
    or audio was not asked for (then ``sample_rate`` is 0).
    """

    frames: list[Image.Image]
    times: np.ndarray
    audio: np.ndarray | None
    sample_rate: int


def read_video(
    path: str | Path,
    *,
    fps: float = 1.0,
    max_frames: int = 64,
    sample_rate: int | None = 16000,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_seconds: float | None = None,
) -> VideoClip:
    """Decode ``path``, keeping one frame per ``1 / fps`` seconds of presentation time.

    Frames are chosen by timestamp, not by index, so variable frame rates and gaps are handled:
    for each target time ``k / fps`` the first frame at or after it is kept, at most
    ``max_frames`` of them. ``max_seconds`` bounds both the frames and the audio read.
    ``sample_rate=None`` skips the audio. Raises ``InputError`` for a missing or corrupt file, a
    file with no video stream, or frames larger than ``max_pixels``.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if max_frames <= 0:
        raise ValueError(f"max_frames must be positive, got {max_frames}")
    p = Path(path)
    check_file(p)
    frames, times = _sample_frames(
        p, fps=fps, max_frames=max_frames, max_pixels=max_pixels, max_seconds=max_seconds
    )
    audio = None
    if sample_rate is not None:
        audio = read_audio_track(p, sample_rate=sample_rate, max_seconds=max_seconds)
    return VideoClip(
        frames=frames,
        times=np.asarray(times, dtype=np.float64),
        audio=audio,
        sample_rate=0 if audio is None else sample_rate,
    )


def _sample_frames(
    path: Path, *, fps: float, max_frames: int, max_pixels: int, max_seconds: float | None
) -> tuple[list[Image.Image], list[float]]:
    frames: list[Image.Image] = []
    times: list[float] = []
    step = 1.0 / fps
    target = 0.0
    limit = math.inf if max_seconds is None else max_seconds
    with _open_container(path) as container:
        if not container.streams.video:
            raise InputError("no video stream in the file", path=path)
        stream = container.streams.video[0]
        pixels = stream.codec_context.width * stream.codec_context.height
        if pixels > max_pixels:
            raise InputError(
                f"video frames have {pixels:,} pixels, more than the limit of {max_pixels:,}",
                path=path,
            )
        stream.thread_type = "AUTO"  # frame + slice threads: decoding is most of the cost
        start = None if stream.start_time is None else float(stream.start_time * stream.time_base)
        try:
            for index, frame in enumerate(container.decode(stream)):
                t = _frame_time(frame, index, stream)
                if start is None:
                    start = t
                t -= start
                if t > limit:
                    break
                if t + _EPS_S < target:
                    continue
                frames.append(frame.to_image())
                times.append(t)
                if len(frames) >= max_frames:
                    break
                target = (math.floor((t + _EPS_S) / step) + 1) * step
        except av.error.FFmpegError as exc:
            raise InputError(f"corrupt video data: {_av_message(exc)}", path=path) from None
    if not frames:
        raise InputError("video has no decodable frames", path=path)
    return frames, times


def _frame_time(frame: av.VideoFrame, index: int, stream: av.video.stream.VideoStream) -> float:
    if frame.time is not None:
        return float(frame.time)
    # No timestamp at all (raw streams): fall back on the nominal rate.
    rate = stream.average_rate or stream.guessed_rate or 25
    return index / float(rate)


def _open_container(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        raise InputError(
            f"corrupt or unsupported video container: {_av_message(exc)}", path=path
        ) from None

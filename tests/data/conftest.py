"""Builders for the media files the reader tests need, made in a temporary folder."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from tests.conftest import shared_data

FSDD_WAV = "0_george_0.wav"  # 8 kHz mono, 2384 frames


@pytest.fixture
def fsdd_wav() -> Path:
    """One real spoken-digit recording (skips when the shared data is absent)."""
    path = shared_data() / "fsdd" / FSDD_WAV
    if not path.exists():
        pytest.skip(f"real data {path} is absent (set POLYMODAL_SHARED to the shared/data folder)")
    return path


def speech_or_chirp(seconds: float, rate: int = 8000) -> np.ndarray:
    """Real speech (FSDD, repeated) when available, else a chirp: float32 mono at ``rate``."""
    path = shared_data() / "fsdd" / FSDD_WAV
    t = np.arange(round(seconds * rate)) / rate
    if path.exists():
        x, sr = sf.read(path, dtype="float32")
        looped = np.resize(x, round(seconds * sr) + 1)
        return np.interp(t, np.arange(len(looped)) / sr, looped).astype(np.float32)
    return (0.5 * np.sin(2 * np.pi * (200 + 300 * t) * t)).astype(np.float32)


def write_video(
    path: Path,
    times: Sequence[float],
    colours: Sequence[tuple[int, int, int]],
    *,
    codec: str = "libx264",
    audio: np.ndarray | None = None,
    audio_rate: int = 8000,
    audio_codec: str = "aac",
    size: tuple[int, int] = (64, 48),
) -> Path:
    """Encode one solid-colour frame per time (seconds) and, optionally, a mono audio track."""
    width, height = size
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=10)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        # Millisecond timestamps, on the encoder too, so that uneven frame times survive.
        exact = codec == "libx264"
        if exact:
            video.time_base = video.codec_context.time_base = Fraction(1, 1000)
        sound = None
        if audio is not None:
            sound = container.add_stream(audio_codec, rate=audio_rate)
            sound.layout = "mono"
        for i, (t, colour) in enumerate(zip(times, colours, strict=True)):
            pixels = np.empty((height, width, 3), np.uint8)
            pixels[:] = colour
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = round(t * 1000) if exact else i
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if sound is not None and audio is not None:
            _encode_audio(container, sound, audio, audio_rate)
    return path


def write_audio_av(path: Path, samples: np.ndarray, rate: int, codec: str) -> Path:
    """Encode mono float samples with PyAV (for MP3 / M4A, which soundfile is not used for)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        _encode_audio(container, stream, samples, rate)
    return path


def _encode_audio(
    container: av.container.OutputContainer, stream: av.AudioStream, samples: np.ndarray, rate: int
) -> None:
    # PyAV re-chunks and converts one long frame to the encoder's frame size and sample format.
    frame = av.AudioFrame.from_ndarray(samples.astype(np.float32)[None, :], "fltp", "mono")
    frame.sample_rate, frame.pts = rate, 0
    container.mux(stream.encode(frame))
    container.mux(stream.encode())

"""Decode audio into float32 mono at a chosen sample rate, whole or streamed in bounded blocks.

WAV, FLAC, Ogg and AIFF go through soundfile (libsndfile); everything else (MP3, M4A, the audio
track of a video) through PyAV. Channels are averaged to mono before resampling, and resampling
is polyphase (``scipy.signal.resample_poly``) by the exact ratio of the two rates.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soundfile as sf

from polymodal.data.paths import check_file
from polymodal.errors import InputError

_SOUNDFILE_KINDS = {
    ".wav": "WAV",
    ".wave": "WAV",
    ".flac": "FLAC",
    ".ogg": "Ogg",
    ".oga": "Ogg",
    ".aiff": "AIFF",
    ".aif": "AIFF",
    ".aifc": "AIFF",
    ".au": "AU",
}
_READ_BLOCK_FRAMES = 1 << 20  # source frames per decoding step when reading a whole file


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says; ``frames`` is None when only the duration is known."""

    duration_s: float
    sample_rate: int
    channels: int
    frames: int | None = None


def audio_info(path: str | Path) -> AudioInfo:
    """Read the header of an audio (or video) file without decoding the samples."""
    return _open(path).info


def read_audio(
    path: str | Path, *, sample_rate: int, max_seconds: float | None = None
) -> np.ndarray:
    """Decode ``path`` to float32 mono in [-1, 1] at ``sample_rate``.

    With ``max_seconds`` only that much of the start is decoded. Raises ``InputError`` when the
    file is missing, corrupt, has no samples, or holds NaN / infinite samples.
    """
    source = _open(path)
    max_frames = _frames_for(max_seconds, source.info.sample_rate)
    parts = list(source.blocks(_READ_BLOCK_FRAMES, max_frames))
    if not parts:
        raise InputError("audio has no samples", path=path)
    mono = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return _finish(_resample(mono, source.info.sample_rate, sample_rate))


def read_audio_track(
    path: str | Path, *, sample_rate: int, max_seconds: float | None = None
) -> np.ndarray | None:
    """Like ``read_audio`` for a container's audio track; None when it has no audio track."""
    source = _AvSource(check_file(path), require_audio=False)
    if source.stream_index is None:
        return None
    max_frames = _frames_for(max_seconds, source.info.sample_rate)
    parts = list(source.blocks(_READ_BLOCK_FRAMES, max_frames))
    if not parts:
        return None
    mono = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return _finish(_resample(mono, source.info.sample_rate, sample_rate))


def stream_audio(
    path: str | Path, *, sample_rate: int, block_seconds: float = 30.0
) -> Iterator[np.ndarray]:
    """Yield consecutive blocks of float32 mono at ``sample_rate``, ``block_seconds`` long each
    (the last one shorter); memory stays bounded however long the file is.

    The blocks concatenate to what ``read_audio`` returns: each block is resampled with enough
    context from its neighbours that the filter sees the same samples. The file is opened now,
    so a missing or corrupt file raises here rather than at the first ``next()``.
    """
    if block_seconds <= 0:
        raise ValueError(f"block_seconds must be positive, got {block_seconds}")
    source = _open(path)
    if source.info.frames == 0:
        raise InputError("audio has no samples", path=path)
    block_frames = max(1, round(block_seconds * source.info.sample_rate))
    return _stream(source, sample_rate, block_frames)


def _stream(source: _Source, sample_rate: int, block_frames: int) -> Iterator[np.ndarray]:
    blocks = source.blocks(block_frames, None)
    produced = False
    for block in _resample_stream(blocks, source.info.sample_rate, sample_rate, block_frames):
        produced = True
        yield np.clip(block, -1.0, 1.0)  # a copy: the block may be a view of the stream's buffer
    if not produced:
        raise InputError("audio has no samples", path=source.path)


class _Source:
    """One opened audio file: its header, and a way to decode it in mono blocks."""

    path: Path
    info: AudioInfo

    def blocks(self, block_frames: int, max_frames: int | None) -> Iterator[np.ndarray]:
        raise NotImplementedError


def _open(path: str | Path) -> _Source:
    p = Path(path)
    check_file(p)
    kind = _SOUNDFILE_KINDS.get(p.suffix.lower())
    if kind is None:
        return _AvSource(p, require_audio=True)
    try:
        return _SoundFileSource(p)
    except sf.LibsndfileError as exc:
        sf_problem = _sf_message(exc)
    try:  # a misnamed file (an MP3 saved as .wav) is still readable
        return _AvSource(p, require_audio=True)
    except InputError:
        raise InputError(f"corrupt {kind}: {sf_problem}", path=p) from None


class _SoundFileSource(_Source):
    def __init__(self, path: Path) -> None:
        self.path = path
        with sf.SoundFile(path) as f:
            self.kind = _SOUNDFILE_KINDS.get(path.suffix.lower(), f.format)
            self.info = AudioInfo(
                duration_s=f.frames / f.samplerate if f.samplerate else 0.0,
                sample_rate=f.samplerate,
                channels=f.channels,
                frames=f.frames,
            )

    def blocks(self, block_frames: int, max_frames: int | None) -> Iterator[np.ndarray]:
        try:
            with sf.SoundFile(self.path) as f:
                frames = -1 if max_frames is None else max_frames
                for block in f.blocks(block_frames, frames=frames, dtype="float32", always_2d=True):
                    if len(block):
                        yield _mono(block.T, self.path)
        except sf.LibsndfileError as exc:
            raise InputError(f"corrupt {self.kind}: {_sf_message(exc)}", path=self.path) from None


class _AvSource(_Source):
    def __init__(self, path: Path, *, require_audio: bool) -> None:
        self.path = path
        self.stream_index: int | None = None
        with _av_open(path) as container:
            if not container.streams.audio:
                if require_audio:
                    raise InputError("no audio track in the file", path=path)
                self.info = AudioInfo(duration_s=0.0, sample_rate=0, channels=0, frames=0)
                return
            stream = container.streams.audio[0]
            self.stream_index = stream.index
            rate = stream.codec_context.sample_rate
            if not rate:
                raise InputError("audio track has no sample rate", path=path)
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            else:
                duration = (container.duration or 0) / av.time_base
            self.info = AudioInfo(
                duration_s=duration,
                sample_rate=rate,
                channels=stream.codec_context.layout.nb_channels,
            )

    def blocks(self, block_frames: int, max_frames: int | None) -> Iterator[np.ndarray]:
        budget = math.inf if max_frames is None else max_frames
        pending: list[np.ndarray] = []
        held = 0
        for samples in self._decoded():
            samples = samples[: int(min(len(samples), budget))]
            pending.append(samples)
            held += len(samples)
            budget -= len(samples)
            while held >= block_frames:
                block, pending, held = _take(pending, block_frames)
                yield block
            if budget <= 0:
                break
        if held:
            yield np.concatenate(pending)

    def _decoded(self) -> Iterator[np.ndarray]:
        """Mono float32 samples, one decoded frame at a time."""
        # A format converter only (to float planar): the rate stays, resampling is ours.
        converter = av.AudioResampler(format="fltp", rate=self.info.sample_rate)
        with _av_open(self.path) as container:
            stream = container.streams[self.stream_index]
            try:
                for frame in container.decode(stream):
                    for out in converter.resample(frame):
                        yield _mono(out.to_ndarray(), self.path)
                for out in converter.resample(None):
                    yield _mono(out.to_ndarray(), self.path)
            except av.error.FFmpegError as exc:
                raise InputError(
                    f"corrupt audio data: {_av_message(exc)}", path=self.path
                ) from None


def _take(pending: list[np.ndarray], n: int) -> tuple[np.ndarray, list[np.ndarray], int]:
    joined = np.concatenate(pending)
    rest = joined[n:]
    return joined[:n], [rest] if len(rest) else [], len(rest)


def _mono(channels_first: np.ndarray, path: Path) -> np.ndarray:
    samples = channels_first[0] if len(channels_first) == 1 else channels_first.mean(axis=0)
    samples = samples.astype(np.float32, copy=False)
    if not np.isfinite(samples).all():
        raise InputError("audio contains NaN or infinite samples", path=path)
    return samples


def _resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    if rate_in == rate_out:
        return x
    from scipy.signal import resample_poly  # scipy.signal takes ~0.3 s to import

    up, down = _ratio(rate_in, rate_out)
    return resample_poly(x, up, down).astype(np.float32, copy=False)


def _resample_stream(
    blocks: Iterator[np.ndarray], rate_in: int, rate_out: int, block_frames: int
) -> Iterator[np.ndarray]:
    """Resample a stream block by block with the same result as resampling it whole.

    Each output block is computed from its input block plus ``pad`` samples of context on both
    sides (more than half the polyphase filter); block and context lengths are multiples of
    ``down``, so each block's output lands exactly on the whole signal's output grid.
    """
    up, down = _ratio(rate_in, rate_out)
    half_filter = 10 * max(up, down)  # resample_poly's default filter half-length, upsampled
    pad = _round_up(math.ceil(half_filter / up) + 1, down)
    block = _round_up(block_frames, down)
    buf = np.zeros(0, dtype=np.float32)
    buf_start = 0  # input index of buf[0]
    emit = 0  # input index where the next output block starts
    for chunk in blocks:
        buf = np.concatenate([buf, chunk]) if len(buf) else chunk
        while buf_start + len(buf) >= emit + block + pad:
            lo = max(0, emit - pad)
            seg = buf[lo - buf_start : emit + block + pad - buf_start]
            skip = (emit - lo) * up // down
            yield _resample(seg, rate_in, rate_out)[skip : skip + block * up // down]
            emit += block
            drop = max(0, emit - pad - buf_start)
            buf, buf_start = buf[drop:], buf_start + drop
    if buf_start + len(buf) > emit:
        lo = max(0, emit - pad)
        skip = (emit - lo) * up // down
        yield _resample(buf[lo - buf_start :], rate_in, rate_out)[skip:]


def _finish(x: np.ndarray) -> np.ndarray:
    # Float files and the resampling filter's ripple can step slightly past full scale.
    return np.clip(x, -1.0, 1.0, out=x)


def _ratio(rate_in: int, rate_out: int) -> tuple[int, int]:
    if rate_out <= 0:
        raise ValueError(f"sample_rate must be positive, got {rate_out}")
    g = math.gcd(rate_in, rate_out)
    return rate_out // g, rate_in // g


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _frames_for(max_seconds: float | None, rate: int) -> int | None:
    if max_seconds is None:
        return None
    if max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    return max(1, round(max_seconds * rate))


def _av_open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        raise InputError(f"not a readable media file: {_av_message(exc)}", path=path) from None


def _av_message(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or exc)


def _sf_message(exc: sf.LibsndfileError) -> str:
    return str(getattr(exc, "error_string", None) or exc).rstrip(".")

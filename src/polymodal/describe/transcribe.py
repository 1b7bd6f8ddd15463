"""Transcripts with timestamps: Whisper tiny.en (faster-whisper) on the stretches that Silero VAD
(faster-whisper's bundled ONNX model) marks as speech.

Silero VAD finds the stretches of speech first; each (nearby ones joined) is transcribed on
its own, which keeps every segment's times on its speech.

Audio is streamed: the file is decoded in windows of ``window_seconds``, each cut at its
quietest moment near the end (so that no word is split between windows) and the rest carried
into the next one. Memory therefore stays bounded by about two windows, however long the
recording.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from polymodal.describe.description import Segment

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

SAMPLE_RATE = 16_000
CUT_SEARCH_S = 10.0  # a window is cut at the quietest point of its last ten seconds
_CUT_FRAME = 1_600  # 100 ms frames for finding that point
JOIN_GAP_S = 2.0  # speech stretches closer than this are transcribed together...
JOIN_MAX_S = 28.0  # ...while they fit in one Whisper window


@dataclass
class Transcript:
    """What was said, and when; ``seconds`` is the duration of the audio read."""

    segments: list[Segment] = field(default_factory=list)
    seconds: float = 0.0
    peak: float = 0.0  # largest absolute sample: tells digital silence from quiet sound

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments)

    @property
    def speech_seconds(self) -> float:
        return sum(s.end - s.start for s in self.segments)


class Transcriber:
    """Speech to text with segment timestamps, for files of any length.

    ``model``: a faster-whisper ``WhisperModel`` (default: the shipped tiny.en, shared in the
    process). ``beam_size``: 5 (faster-whisper's default) measured a little better than greedy
    (1) on espeak-ng sentences and FSDD digits (BENCHMARKS.md); greedy is up to ~2x faster.
    ``vad``: skip what Silero VAD hears as non-speech (silence then gives no segments at all,
    where Whisper alone tends to invent a "Thank you.").
    """

    def __init__(
        self,
        model: WhisperModel | None = None,
        *,
        window_seconds: float = 120.0,
        beam_size: int = 5,
        vad: bool = True,
        min_silence_ms: int = 500,
    ) -> None:
        if window_seconds < 2 * CUT_SEARCH_S:
            raise ValueError(f"window_seconds must be at least {2 * CUT_SEARCH_S:.0f}")
        self._model = model
        self.window_seconds = window_seconds
        self.beam_size = beam_size
        self.vad = vad
        self.min_silence_ms = min_silence_ms

    @property
    def model(self) -> WhisperModel:
        if self._model is None:
            from polymodal.describe.whisper import whisper_model

            self._model = whisper_model()
        return self._model

    def transcribe(self, path: str | Path) -> Transcript:
        """Transcribe an audio file (or a video's audio track), streamed window by window.

        Raises ``InputError`` when the file cannot be decoded or has no audio track.
        """
        from polymodal.data.readers.audio import stream_audio

        blocks = stream_audio(path, sample_rate=SAMPLE_RATE, block_seconds=self.window_seconds)
        out = Transcript()
        carry = np.zeros(0, dtype=np.float32)
        start = 0.0  # file time of carry[0]
        for block, last in _with_last(blocks):
            out.seconds += len(block) / SAMPLE_RATE
            out.peak = max(out.peak, float(np.abs(block).max(initial=0.0)))
            audio = np.concatenate([carry, block]) if len(carry) else block
            cut = len(audio) if last else quiet_cut(audio)
            out.segments.extend(self.transcribe_audio(audio[:cut], offset=start))
            carry, start = audio[cut:], start + cut / SAMPLE_RATE
        return out

    def transcribe_audio(self, audio: np.ndarray, *, offset: float = 0.0) -> list[Segment]:
        """Segments of 16 kHz mono ``audio``; times are shifted by ``offset`` seconds.

        With ``vad``, each stretch of speech (nearby ones joined, up to ``JOIN_MAX_S``) is
        transcribed on its own, so a segment never spans a long silence and its times stay
        those of the speech it holds.
        """
        if len(audio) < SAMPLE_RATE // 10:  # under 100 ms: nothing to say
            return []
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if not self.vad:
            return self._decode(audio, offset)
        out = []
        for start, end in join_regions(speech_regions(audio, self.min_silence_ms)):
            out.extend(self._decode(audio[start:end], offset + start / SAMPLE_RATE))
        return out

    def _decode(self, audio: np.ndarray, offset: float) -> list[Segment]:
        segments, _ = self.model.transcribe(
            audio,
            language="en",
            beam_size=self.beam_size,
            vad_filter=False,  # done above, per stretch of speech
            # Each piece stands alone: conditioning on earlier text lets one error repeat.
            condition_on_previous_text=False,
        )
        limit = offset + len(audio) / SAMPLE_RATE
        out = []
        for s in segments:
            text = s.text.strip()
            if text:
                start, end = offset + s.start, min(offset + s.end, limit)
                out.append(Segment(round(start, 2), round(end, 2), text))
        return out


def speech_regions(audio: np.ndarray, min_silence_ms: int = 500) -> list[tuple[int, int]]:
    """(start, end) sample indices of speech, by Silero VAD (faster-whisper's ONNX copy)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    found = get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=min_silence_ms))
    return [(int(c["start"]), int(c["end"])) for c in found]


def join_regions(
    regions: list[tuple[int, int]], *, gap_s: float = JOIN_GAP_S, longest_s: float = JOIN_MAX_S
) -> list[tuple[int, int]]:
    """Join regions less than ``gap_s`` apart while the result stays under ``longest_s``:
    fewer Whisper passes (each costs a 30 s encoder window) without bridging real pauses."""
    out: list[tuple[int, int]] = []
    for start, end in regions:
        near = bool(out) and start - out[-1][1] <= gap_s * SAMPLE_RATE
        if near and end - out[-1][0] <= longest_s * SAMPLE_RATE:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def quiet_cut(audio: np.ndarray, *, search_s: float = CUT_SEARCH_S) -> int:
    """Index of the quietest 100 ms within the last ``search_s`` seconds of ``audio``."""
    span = int(search_s * SAMPLE_RATE)
    if len(audio) <= 2 * span:
        return len(audio)
    lo = len(audio) - span
    n = span // _CUT_FRAME
    frames = audio[lo : lo + n * _CUT_FRAME].reshape(n, _CUT_FRAME)
    quietest = int(np.argmin(np.sqrt((frames.astype(np.float32) ** 2).mean(axis=1))))
    return lo + quietest * _CUT_FRAME + _CUT_FRAME // 2


def _with_last(items: Iterator[Any]) -> Iterator[tuple[Any, bool]]:
    """Each item with whether it is the last (one item of look-ahead)."""
    it = iter(items)
    try:
        prev = next(it)
    except StopIteration:
        return
    for item in it:
        yield prev, False
        prev = item
    yield prev, True

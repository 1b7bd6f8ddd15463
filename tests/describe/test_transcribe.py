from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from benchmarks import describe_media as media
from benchmarks.describe_wer import word_error_rate
from polymodal.describe.transcribe import (
    SAMPLE_RATE,
    Transcriber,
    _with_last,
    join_regions,
    quiet_cut,
)
from polymodal.errors import InputError


def test_quiet_cut_lands_in_the_pause() -> None:
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.3, 40 * SAMPLE_RATE).astype(np.float32)
    audio[int(34.0 * SAMPLE_RATE) : int(34.5 * SAMPLE_RATE)] = 0.0  # the only pause
    cut = quiet_cut(audio)
    assert 34.0 <= cut / SAMPLE_RATE <= 34.5


def test_quiet_cut_keeps_short_audio_whole() -> None:
    audio = np.ones(15 * SAMPLE_RATE, np.float32)
    assert quiet_cut(audio) == len(audio)


def test_join_regions_bridges_short_pauses_only() -> None:
    sr = SAMPLE_RATE
    regions = [(0, 2 * sr), (3 * sr, 5 * sr), (60 * sr, 62 * sr)]
    assert join_regions(regions) == [(0, 5 * sr), (60 * sr, 62 * sr)]
    # Never more than one Whisper window's worth together.
    long = [(0, 20 * sr), (21 * sr, 35 * sr)]
    assert join_regions(long) == long


def test_with_last_marks_only_the_final_item() -> None:
    assert list(_with_last(iter([1, 2, 3]))) == [(1, False), (2, False), (3, True)]
    assert list(_with_last(iter([]))) == []


def test_window_must_leave_room_for_the_cut() -> None:
    with pytest.raises(ValueError, match="window_seconds"):
        Transcriber(window_seconds=5)


def test_unreadable_audio_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEfmt garbage")
    with pytest.raises(InputError, match=r"bad\.wav"):
        Transcriber(model=object()).transcribe(bad)  # type: ignore[arg-type]


@pytest.mark.real_weights
def test_espeak_sentence_is_transcribed_with_times(speech_wav: Path) -> None:
    t = Transcriber().transcribe(speech_wav)
    # Recorded: "The quick round fox jump over the lazy dog." (tiny.en, beam 5, espeak-ng)
    assert word_error_rate("The quick brown fox jumps over the lazy dog.", t.text) <= 0.23
    assert "lazy dog" in t.text
    assert len(t.segments) == 1
    seg = t.segments[0]
    assert 0.0 <= seg.start < 0.5 and abs(seg.end - t.seconds) < 1.0


@pytest.mark.real_weights
def test_silence_gives_no_segments(silent_wav: Path) -> None:
    t = Transcriber().transcribe(silent_wav)
    assert t.segments == [] and t.text == "" and t.peak == 0.0
    assert t.seconds == pytest.approx(4.0)


@pytest.mark.real_weights
@pytest.mark.slow
def test_ten_minutes_stream_in_bounded_memory_with_file_times(work: Path) -> None:
    speech = media.speech_samples("Hello world.", work)
    path = work / "long.wav"
    # Speech every 147 s; 21 s windows put the one at 147 s across a window edge.
    starts = media.long_recording(path, speech, minutes=10, every_s=147)
    tracemalloc.start()  # NumPy's buffers are traced: decoded audio, VAD input, features
    try:
        t = Transcriber(window_seconds=21).transcribe(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert t.seconds == pytest.approx(600.0)
    whole_file = 600 * SAMPLE_RATE * 4
    # About 0.7 MB per window second (decode + VAD copies), whatever the length of the file.
    assert peak < whole_file / 2, f"peak {peak / 1e6:.1f} MB for a {whole_file / 1e6:.0f} MB file"
    found = [s.start for s in t.segments]
    assert len(found) == len(starts), t.segments
    for want, got, seg in zip(starts, found, t.segments, strict=True):
        assert abs(got - want) < 1.0
        assert "hello" in seg.text.lower()


@pytest.mark.real_weights
def test_speech_apart_in_one_window_keeps_its_own_times(work: Path) -> None:
    speech = media.speech_samples("Hello world.", work)
    path = work / "two.wav"
    starts = media.long_recording(path, speech, minutes=1.5, every_s=50)  # 0, 50 s
    t = Transcriber().transcribe(path)  # one 120 s window holds both
    assert [round(s.start) for s in t.segments] == [round(x) for x in starts]
    assert all(s.end - s.start < 3.0 for s in t.segments)

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from polymodal.data.readers.audio import (
    AudioInfo,
    audio_info,
    read_audio,
    read_audio_track,
    stream_audio,
)
from polymodal.errors import InputError
from tests.data.conftest import speech_or_chirp, write_audio_av, write_video


def _noise(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal((round(seconds * rate), channels))).astype(np.float32)


def _best_correlation(y: np.ndarray, x: np.ndarray, max_lag: int) -> float:
    """Highest correlation of ``x`` with ``y`` shifted by 0..max_lag (codecs add a delay)."""
    n = min(len(x), len(y) - max_lag)
    return max(float(np.corrcoef(y[k : k + n], x[:n])[0, 1]) for k in range(max_lag + 1))


# --- real data -------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_fsdd_resampled_to_16k_doubles_the_length(fsdd_wav: Path) -> None:
    x, rate = sf.read(fsdd_wav, dtype="float32")
    assert rate == 8000 and x.ndim == 1
    y = read_audio(fsdd_wav, sample_rate=16000)
    assert y.dtype == np.float32 and y.ndim == 1
    assert len(y) == 2 * len(x)
    assert np.abs(y).max() <= 1.0
    # Upsampling by 2 keeps the original samples (to filter precision) at the even positions.
    np.testing.assert_allclose(y[::2], x, atol=0.02 * np.abs(x).max())
    assert read_audio(fsdd_wav, sample_rate=8000).tolist() == x.tolist()


@pytest.mark.shared_data
def test_fsdd_info(fsdd_wav: Path) -> None:
    info = audio_info(fsdd_wav)
    assert info == AudioInfo(duration_s=2384 / 8000, sample_rate=8000, channels=1, frames=2384)


# --- decoding --------------------------------------------------------------------------------


def test_stereo_is_averaged_to_mono(tmp_path: Path) -> None:
    left = _noise(0.5, 16000)[:, 0]
    path = tmp_path / "stereo.flac"
    sf.write(path, np.stack([left, 0.5 * left], axis=1), 16000, subtype="PCM_24")
    y = read_audio(path, sample_rate=16000)
    np.testing.assert_allclose(y, 0.75 * left, atol=1e-4)


@pytest.mark.parametrize(
    ("rate_in", "rate_out"), [(44100, 16000), (22050, 16000), (16000, 16000), (48000, 44100)]
)
def test_resampled_length_is_exact(tmp_path: Path, rate_in: int, rate_out: int) -> None:
    path = tmp_path / "a.wav"
    sf.write(path, _noise(1.3, rate_in), rate_in)
    n_in = round(1.3 * rate_in)
    y = read_audio(path, sample_rate=rate_out)
    assert len(y) == -(-n_in * rate_out // rate_in)


def test_resampling_keeps_a_tone_and_removes_what_cannot_be_represented(tmp_path: Path) -> None:
    t = np.arange(44100) / 44100
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    alias = 0.3 * np.sin(2 * np.pi * 12000 * t)  # above the 8 kHz Nyquist of 16 kHz audio
    path = tmp_path / "tone.wav"
    sf.write(path, (tone + alias).astype(np.float32), 44100, subtype="FLOAT")
    y = read_audio(path, sample_rate=16000)
    spectrum = np.abs(np.fft.rfft(y[1000:-1000] * np.hanning(len(y) - 2000)))
    freqs = np.fft.rfftfreq(len(y) - 2000, 1 / 16000)
    assert abs(freqs[spectrum.argmax()] - 1000) < 5
    folded = spectrum[np.abs(freqs - 4000) < 20].max()  # 12 kHz would alias to 4 kHz
    assert folded < 0.01 * spectrum.max()


def test_max_seconds_reads_only_that_much(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    x = _noise(5.0, 8000)[:, 0]
    sf.write(path, x, 8000, subtype="FLOAT")
    y = read_audio(path, sample_rate=16000, max_seconds=1.25)
    assert len(y) == 2 * 10_000
    head = read_audio(path, sample_rate=8000, max_seconds=0.5)
    np.testing.assert_array_equal(head, np.clip(x[:4000], -1, 1))


@pytest.mark.parametrize(
    ("rate_in", "rate_out", "block_seconds"),
    [(8000, 16000, 0.37), (44100, 16000, 0.5), (16000, 16000, 0.3), (22050, 16000, 0.05)],
)
def test_stream_blocks_concatenate_to_read_audio(
    tmp_path: Path, rate_in: int, rate_out: int, block_seconds: float
) -> None:
    path = tmp_path / "s.wav"
    sf.write(path, _noise(2.3, rate_in, channels=2), rate_in, subtype="FLOAT")
    whole = read_audio(path, sample_rate=rate_out)
    blocks = list(stream_audio(path, sample_rate=rate_out, block_seconds=block_seconds))
    assert len(blocks) > 3
    lengths = {len(b) for b in blocks[:-1]}
    assert len(lengths) == 1 and 0 < len(blocks[-1]) <= lengths.pop()
    np.testing.assert_allclose(np.concatenate(blocks), whole, atol=1e-6)


def test_stream_through_pyav_matches_read_audio(tmp_path: Path) -> None:
    path = write_audio_av(tmp_path / "a.m4a", speech_or_chirp(2.0, 16000), 16000, "aac")
    whole = read_audio(path, sample_rate=8000)
    blocks = list(stream_audio(path, sample_rate=8000, block_seconds=0.3))
    assert len(blocks) > 3
    np.testing.assert_allclose(np.concatenate(blocks), whole, atol=1e-6)


@pytest.mark.parametrize(("name", "codec"), [("a.mp3", "libmp3lame"), ("a.m4a", "aac")])
def test_mp3_and_m4a_go_through_pyav(tmp_path: Path, name: str, codec: str) -> None:
    x = speech_or_chirp(1.5, 16000)
    path = write_audio_av(tmp_path / name, x, 16000, codec)
    y = read_audio(path, sample_rate=16000)
    assert y.dtype == np.float32
    assert abs(len(y) - len(x)) < 0.05 * len(x)  # the codec pads by up to a frame or two
    assert _best_correlation(y, x, max_lag=1200) > 0.9
    info = audio_info(path)
    assert info.sample_rate == 16000 and info.channels == 1
    assert info.duration_s == pytest.approx(1.5, abs=0.1)


def test_ogg_vorbis_via_soundfile(tmp_path: Path) -> None:
    x = speech_or_chirp(1.0, 8000)
    path = tmp_path / "a.ogg"
    sf.write(path, x, 8000, format="OGG", subtype="VORBIS")
    y = read_audio(path, sample_rate=16000)
    assert len(y) == 16000
    assert _best_correlation(y[::2], x, max_lag=50) > 0.9


def test_audio_track_of_a_video(tmp_path: Path) -> None:
    x = speech_or_chirp(1.0, 8000)
    path = write_video(tmp_path / "v.mp4", [0.0, 0.5], [(0, 0, 0)] * 2, audio=x)
    y = read_audio(path, sample_rate=8000)
    assert _best_correlation(y, x, max_lag=1200) > 0.95


def test_misnamed_mp3_is_still_read(tmp_path: Path) -> None:
    mp3 = write_audio_av(tmp_path / "a.mp3", speech_or_chirp(1.0, 16000), 16000, "libmp3lame")
    wrong = tmp_path / "really_mp3.wav"
    wrong.write_bytes(mp3.read_bytes())
    assert len(read_audio(wrong, sample_rate=16000)) == len(read_audio(mp3, sample_rate=16000))


# --- bad input -------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "gone.wav"
    with pytest.raises(InputError, match="file not found") as err:
        read_audio(path, sample_rate=16000)
    assert str(path) in str(err.value)
    with pytest.raises(InputError, match="file not found"):
        stream_audio(path, sample_rate=16000)  # raises at the call, not at the first next()


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="zero-byte file"):
        read_audio(path, sample_rate=16000)


def test_corrupt_wav(tmp_path: Path) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(b"RIFF\x24\x08\x00\x00WAVEfmt \x10\x00\x00\x00" + b"\xff" * 200)
    with pytest.raises(InputError, match="corrupt WAV: ") as err:
        read_audio(path, sample_rate=16000)
    assert str(path) in str(err.value)


def test_zero_length_audio(tmp_path: Path) -> None:
    path = tmp_path / "silent.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    assert path.stat().st_size > 0  # a valid header with no frames
    with pytest.raises(InputError, match="audio has no samples"):
        read_audio(path, sample_rate=16000)
    with pytest.raises(InputError, match="audio has no samples"):
        stream_audio(path, sample_rate=16000)


def test_nan_samples(tmp_path: Path) -> None:
    x = _noise(0.5, 8000)[:, 0]
    x[1234] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, x, 8000, subtype="FLOAT")
    with pytest.raises(InputError, match="NaN"):
        read_audio(path, sample_rate=16000)
    with pytest.raises(InputError, match="NaN"):
        list(stream_audio(path, sample_rate=16000))


def test_text_with_an_audio_name(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp3"
    path.write_text("this is not audio at all\n" * 10)
    with pytest.raises(InputError, match="not a readable media file") as err:
        read_audio(path, sample_rate=16000)
    assert str(path) in str(err.value)


def test_video_without_audio(tmp_path: Path) -> None:
    path = write_video(tmp_path / "silent.mp4", [0.0, 0.5], [(0, 0, 0)] * 2)
    with pytest.raises(InputError, match="no audio track"):
        read_audio(path, sample_rate=16000)
    assert read_audio_track(path, sample_rate=16000) is None

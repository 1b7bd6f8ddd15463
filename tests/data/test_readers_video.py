from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polymodal.data.readers.video import VideoClip, read_video
from polymodal.errors import InputError
from tests.data.conftest import speech_or_chirp, write_video

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
TEN_FPS = [i / 10 for i in range(30)]  # 3 s at 10 frames per second


def _colours(clip: VideoClip) -> list[tuple[int, ...]]:
    """Each frame's mean colour, rounded to the nearest of 0 / 255 per channel."""
    return [tuple(int(v > 127) * 255 for v in np.asarray(f).mean(axis=(0, 1))) for f in clip.frames]


@pytest.fixture
def rgb_clip(tmp_path: Path) -> Path:
    """3 s: red, then green, then blue, one second each, with a real spoken-digit track."""
    colours = [RED] * 10 + [GREEN] * 10 + [BLUE] * 10
    return write_video(tmp_path / "rgb.mp4", TEN_FPS, colours, audio=speech_or_chirp(3.0))


def test_frames_sampled_once_a_second(rgb_clip: Path) -> None:
    clip = read_video(rgb_clip, fps=1.0)
    np.testing.assert_allclose(clip.times, [0.0, 1.0, 2.0])
    assert _colours(clip) == [RED, GREEN, BLUE]
    assert all(f.mode == "RGB" and f.size == (64, 48) for f in clip.frames)


def test_other_rates_and_max_frames(rgb_clip: Path) -> None:
    np.testing.assert_allclose(
        read_video(rgb_clip, fps=2.5).times, [0, 0.4, 0.8, 1.2, 1.6, 2.0, 2.4, 2.8]
    )
    clip = read_video(rgb_clip, fps=10, max_frames=4)
    assert len(clip.frames) == 4
    np.testing.assert_allclose(clip.times, [0, 0.1, 0.2, 0.3])


def test_frames_chosen_by_timestamp_not_index(tmp_path: Path) -> None:
    times = [0.0, 0.1, 0.2, 0.3, 1.5, 1.6, 2.05, 2.1]  # a pause, then an uneven step
    shades = [(i * 30, 0, 0) for i in range(len(times))]
    path = write_video(tmp_path / "vfr.mp4", times, shades)
    clip = read_video(path, fps=1.0, sample_rate=None)
    np.testing.assert_allclose(clip.times, [0.0, 1.5, 2.05])
    reds = [float(np.asarray(f)[..., 0].mean()) for f in clip.frames]
    np.testing.assert_allclose(reds, [0, 4 * 30, 6 * 30], atol=4)  # frames 0, 4 and 6


def test_audio_track_is_resampled(rgb_clip: Path) -> None:
    clip = read_video(rgb_clip, fps=1.0, sample_rate=16000)
    assert clip.sample_rate == 16000
    assert clip.audio is not None and clip.audio.dtype == np.float32
    assert abs(len(clip.audio) - 3 * 16000) < 0.05 * 3 * 16000  # AAC pads the last frame
    x = speech_or_chirp(3.0, 16000)
    n = len(x) - 3000
    corr = max(float(np.corrcoef(clip.audio[k : k + n], x[:n])[0, 1]) for k in range(0, 2400, 2))
    assert corr > 0.9


def test_audio_can_be_skipped(rgb_clip: Path) -> None:
    clip = read_video(rgb_clip, sample_rate=None)
    assert clip.audio is None and clip.sample_rate == 0
    assert len(clip.frames) == 3


def test_max_seconds_bounds_frames_and_audio(rgb_clip: Path) -> None:
    clip = read_video(rgb_clip, fps=2.0, sample_rate=8000, max_seconds=1.2)
    np.testing.assert_allclose(clip.times, [0, 0.5, 1.0])
    assert clip.audio is not None and len(clip.audio) == round(1.2 * 8000)


def test_mpeg4_in_avi(tmp_path: Path) -> None:
    colours = [RED] * 10 + [GREEN] * 10 + [BLUE] * 10
    path = write_video(tmp_path / "clip.avi", TEN_FPS, colours, codec="mpeg4")
    clip = read_video(path, fps=1.0)
    np.testing.assert_allclose(clip.times, [0.0, 1.0, 2.0])
    assert _colours(clip) == [RED, GREEN, BLUE]


# --- bad input -------------------------------------------------------------------------------


def test_video_without_audio_track(tmp_path: Path) -> None:
    path = write_video(tmp_path / "mute.mp4", TEN_FPS[:10], [RED] * 10)
    clip = read_video(path, sample_rate=16000)
    assert clip.audio is None and clip.sample_rate == 0
    assert len(clip.frames) == 1


def test_corrupt_container(tmp_path: Path, rgb_clip: Path) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(InputError, match="corrupt or unsupported video container") as err:
        read_video(path)
    assert str(path) in str(err.value)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(rgb_clip.read_bytes()[:400])  # the index (moov) is gone
    with pytest.raises(InputError, match="video"):
        read_video(cut)


def test_text_named_as_video(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_text("not a video\n" * 20)
    with pytest.raises(InputError, match="corrupt or unsupported video container"):
        read_video(path)


def test_missing_and_zero_byte(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_video(tmp_path / "gone.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="zero-byte file"):
        read_video(empty)


def test_audio_only_file_is_not_a_video(tmp_path: Path) -> None:
    from tests.data.conftest import write_audio_av

    path = write_audio_av(tmp_path / "a.m4a", speech_or_chirp(0.5), 8000, "aac")
    with pytest.raises(InputError, match="no video stream"):
        read_video(path)


def test_frame_size_limit(rgb_clip: Path) -> None:
    with pytest.raises(InputError, match="video frames have 3,072 pixels, more than the limit"):
        read_video(rgb_clip, max_pixels=3000)

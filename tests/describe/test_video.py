from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from polymodal.describe.video import key_frames, video_info
from polymodal.errors import InputError


def test_key_frames_at_scene_changes_and_at_most_every_n_seconds(video_with_speech: Path) -> None:
    frames = key_frames(video_with_speech, every=5.0)
    # Three slides of 3 s: each change of slide is a scene change.
    assert [f.time for f in frames] == pytest.approx([0.0, 3.0, 6.0], abs=0.51)  # sampled at 2 fps
    frames = key_frames(video_with_speech, every=1.0)
    assert len(frames) >= 8  # a still scene still gets a frame every second
    assert all(b.time - a.time <= 1.01 for a, b in itertools.pairwise(frames))


def test_max_frames_bounds_the_frames_kept(video_with_speech: Path) -> None:
    assert len(key_frames(video_with_speech, every=0.5, max_frames=3)) == 3


def test_video_info_tells_whether_there_is_sound(
    video_with_speech: Path, video_silent_track: Path
) -> None:
    assert video_info(video_with_speech).has_audio
    info = video_info(video_silent_track)
    assert not info.has_audio and info.seconds == pytest.approx(6.0, abs=0.3)


def test_corrupt_container_is_an_input_error(corrupt_video: Path) -> None:
    with pytest.raises(InputError, match="corrupt"):
        key_frames(corrupt_video)
    with pytest.raises(InputError, match=r"corrupt\.mp4"):
        video_info(corrupt_video)


def test_audio_file_is_not_a_video(silent_wav: Path) -> None:
    with pytest.raises(InputError, match="no video stream"):
        video_info(silent_wav)

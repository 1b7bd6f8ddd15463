"""Media for the describe tests, built once per session from real parts (espeak-ng speech, Tux
Paint stamps, text rendered in installed fonts, ffmpeg); a test skips when a tool is missing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from benchmarks import describe_media as media

T = TypeVar("T")


def _or_skip(make: Callable[[], T]) -> T:
    try:
        return make()
    except media.MissingTool as err:
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("describe_media")


@pytest.fixture(scope="session")
def speech_wav(work: Path) -> Path:
    text = "The quick brown fox jumps over the lazy dog."
    return _or_skip(lambda: media.speak(text, work / "speech.wav"))


@pytest.fixture(scope="session")
def silent_wav(work: Path) -> Path:
    return media.silence(work / "silent.wav", 4.0)


@pytest.fixture(scope="session")
def sign_png(work: Path) -> Path:
    path = work / "sign.png"
    media.text_image(["OPEN DAILY", "Fresh bread"], size=36, width=480).save(path)
    return path


@pytest.fixture(scope="session")
def blank_png(work: Path) -> Path:
    path = work / "blank.png"
    media.text_image([], width=200).save(path)
    return path


@pytest.fixture(scope="session")
def stamps() -> list[Path]:
    return _or_skip(lambda: media.stamp_images(2))


@pytest.fixture(scope="session")
def video_with_speech(work: Path, stamps: list[Path], sign_png: Path, speech_wav: Path) -> Path:
    """0-3 s a stamp, 3-6 s the sign, 6-9 s another stamp; speech from 0 s."""
    from PIL import Image

    frames = [media.on_white(stamps[0]), Image.open(sign_png), media.on_white(stamps[1])]
    return _or_skip(lambda: media.slideshow(frames, work / "talk.mp4", audio=speech_wav))


@pytest.fixture(scope="session")
def video_silent_track(work: Path, stamps: list[Path]) -> Path:
    """No audio track at all."""
    frames = [media.on_white(p) for p in stamps]
    return _or_skip(lambda: media.slideshow(frames, work / "mute.mp4"))


@pytest.fixture(scope="session")
def corrupt_video(work: Path, video_silent_track: Path) -> Path:
    path = work / "corrupt.mp4"
    path.write_bytes(video_silent_track.read_bytes()[:3000])  # the index is at the end: lost
    return path

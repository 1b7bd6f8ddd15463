from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from polymodal.describe.describer import Describer, describe_values, file_modality
from polymodal.describe.description import Segment
from polymodal.describe.ocr import OcrResult
from polymodal.describe.transcribe import Transcript
from polymodal.errors import ConfigError


class FakeCaptioner:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def caption(self, paths: Sequence[str | Path]) -> list[str]:
        self.calls.append([str(p) for p in paths])
        return [f"a picture called {Path(p).stem}" for p in paths]


class FakeOcr:
    """Says "OPEN" for images that are mostly dark, nothing otherwise."""

    def read(self, image: Any) -> OcrResult:
        dark = np.asarray(image.convert("L")).mean() < 128
        return OcrResult("OPEN" if dark else "")


class FakeTranscriber:
    def transcribe(self, path: str | Path) -> Transcript:
        if "silent" in str(path):
            return Transcript([], seconds=4.0, peak=0.0)
        return Transcript([Segment(0.0, 1.5, "hello")], seconds=2.0, peak=0.5)


class FakeTagger:
    def tag(self, path: str | Path) -> list[tuple[str, float]]:
        return [("gong", 0.4)]


def fake_describer(**kwargs: Any) -> Describer:
    parts: dict[str, Any] = {
        "captioner": FakeCaptioner(),
        "ocr": FakeOcr(),
        "transcribe": FakeTranscriber(),
        "tags": FakeTagger(),
    }
    return Describer(**{**parts, **kwargs})


@pytest.fixture
def folder(tmp_path: Path, silent_wav: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (40, 30), "black").save(tmp_path / "dark.png")
    Image.new("RGB", (40, 30), "white").save(tmp_path / "light.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "note.txt").write_text("  A short\n\n note.  ", "utf-8")
    (tmp_path / "blank.md").write_text("   \n", "utf-8")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "talk.wav").write_bytes(silent_wav.read_bytes())
    (tmp_path / "silent.wav").write_bytes(silent_wav.read_bytes())
    (tmp_path / "data.bin").write_bytes(b"\x00\x01")
    return tmp_path


def test_file_modality_covers_text_files() -> None:
    assert file_modality("a/b.MD") == "text" and file_modality("x.mp4") == "video"
    assert file_modality("x.bin") is None


def test_image_caption_and_text(folder: Path) -> None:
    d = fake_describer().describe(folder / "dark.png")
    assert (d.outcome, d.caption, d.ocr_text) == ("ok", "a picture called dark", "OPEN")
    light = fake_describer().describe(folder / "light.jpg")
    assert light.outcome == "ok" and light.ocr_text is None
    assert light.notes == ["no text found in the image"]


def test_image_without_text_and_without_captioner_is_empty(folder: Path) -> None:
    d = fake_describer(captioner=None).describe(folder / "light.jpg")
    assert d.outcome == "empty" and d.as_text() == ""


def test_bad_files_give_error_outcomes_with_the_problem(folder: Path) -> None:
    d = fake_describer().describe(folder / "broken.jpg")
    assert d.outcome == "error" and "corrupt" in (d.problem or "")
    assert fake_describer().describe(folder / "missing.png").problem == "file not found"
    unknown = fake_describer().describe(folder / "data.bin")
    assert unknown.outcome == "error" and "unknown extension" in (unknown.problem or "")
    latin = fake_describer().describe(folder / "latin1.txt")
    assert latin.outcome == "error" and "not UTF-8" in (latin.problem or "")


def test_text_files(folder: Path) -> None:
    d = fake_describer().describe(folder / "note.txt")
    assert (d.outcome, d.text) == ("ok", "A short\nnote.")
    assert fake_describer().describe(folder / "blank.md").outcome == "empty"


def test_audio_speech_and_silence(folder: Path) -> None:
    talk = fake_describer().describe(folder / "talk.wav")
    assert talk.outcome == "ok" and talk.transcript == "hello" and talk.seconds == 2.0
    # 1.5 s of speech in 2 s: mostly speech, so no sound tags.
    assert talk.tags == []
    silent = fake_describer().describe(folder / "silent.wav")
    assert silent.outcome == "empty" and silent.notes == ["silent audio"] and silent.tags == []


def test_audio_without_transcriber_is_tagged(folder: Path) -> None:
    d = fake_describer(transcribe=False).describe(folder / "talk.wav")
    assert d.outcome == "ok" and d.tags == [("gong", 0.4)] and d.transcript is None


def test_batch_goes_on_past_bad_files_and_library_failures(folder: Path) -> None:
    class Exploding(FakeCaptioner):
        def caption(self, paths: Sequence[str | Path]) -> list[str]:
            if any("light" in str(p) for p in paths):
                raise RuntimeError("model fell over")
            return super().caption(paths)

    files = sorted(folder.iterdir())
    out = list(fake_describer(captioner=Exploding()).describe_many(files, progress=False))
    assert [Path(d.path).name for d in out] == [f.name for f in files]
    by_name = {Path(d.path).name: d for d in out}
    assert by_name["light.jpg"].outcome == "error"
    assert by_name["light.jpg"].problem == "RuntimeError: model fell over"
    assert by_name["dark.png"].outcome == "ok" and by_name["note.txt"].outcome == "ok"


def test_config_errors_stop_the_batch(folder: Path) -> None:
    with pytest.raises(ConfigError, match="caption"):
        list(fake_describer(captioner=object()).describe_many([folder / "dark.png"]))
    with pytest.raises(ConfigError, match="unknown OCR engine"):
        Describer(ocr="nope")


def test_describe_values_gives_one_text_per_cell(folder: Path) -> None:
    d = fake_describer()
    cells = ["dark.png", None, float("nan"), "", "broken.jpg", str(folder / "light.jpg")]
    out = describe_values(cells, "image", folder, describer=d)
    assert out[0] == "a picture called dark\nText: OPEN"
    assert out[1:5] == [None, None, None, None]
    assert out[5] == "a picture called light"
    assert describe_values(["hi", None], "text") == ["hi", None]
    with pytest.raises(ConfigError, match="numeric"):
        describe_values([1.0], "numeric")


def test_video_frames_are_captioned_and_read(video_silent_track: Path) -> None:
    captioner = FakeCaptioner()
    d = fake_describer(captioner=captioner).describe(video_silent_track)
    assert d.outcome == "ok" and d.notes == ["no audio track"] and d.transcript is None
    assert len(captioner.calls) == 1 and len(captioner.calls[0]) == len(d.frames) == 2
    assert [f.caption for f in d.frames] == [f"a picture called frame00{i}" for i in (0, 1)]


def test_corrupt_video_is_an_error_outcome(corrupt_video: Path) -> None:
    d = fake_describer().describe(corrupt_video)
    assert d.outcome == "error" and "corrupt or unsupported video container" in (d.problem or "")


@pytest.mark.real_weights
@pytest.mark.slow
def test_real_video_with_text_and_speech(video_with_speech: Path) -> None:
    d = Describer(captioner=None).describe(video_with_speech)
    assert d.outcome == "ok"
    sign = [f for f in d.frames if f.ocr_text and "DAILY" in f.ocr_text]
    assert sign and 2.9 <= sign[0].time <= 3.6
    assert d.segments and d.segments[0].start < 0.5
    assert "jump over the lazy" in (d.transcript or "")  # AAC-coded espeak-ng speech

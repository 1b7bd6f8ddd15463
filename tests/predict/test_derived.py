"""Derived columns: a video's sound track beside its frames, and media described as text."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw, ImageFont

from polymodal.data.schema import ColumnSpec, Schema
from polymodal.encoders.registry import build_encoder
from polymodal.errors import ConfigError
from polymodal.modality import Modality
from polymodal.predict import Predictor
from polymodal.predict.derived import Derived, extend_schema, plan

FFMPEG = shutil.which("ffmpeg")
COLOURS = {"red": "0xC83232", "blue": "0x3232C8"}


def fast(**kw: object) -> dict[str, object]:
    params: dict[str, object] = {
        "epochs": 15,
        "patience": 5,
        "hidden": 16,
        "depth": 1,
        "progress": False,
        "lr": 3e-3,
        "fusion": "early",
    }
    params.update(kw)
    return params


def test_plan_names_derived_columns_and_refuses_bad_requests() -> None:
    schema = Schema(
        (
            ColumnSpec("clip", Modality.VIDEO),
            ColumnSpec("photo", Modality.IMAGE),
            ColumnSpec("note", Modality.TEXT),
        )
    )
    derived = plan(schema, video_sound=True, describe=["photo"])
    assert derived == {
        "clip (sound)": Derived("clip", Modality.VIDEO, "sound"),
        "photo (described)": Derived("photo", Modality.IMAGE, "described"),
    }
    wider = extend_schema(schema, derived)
    assert wider.modality("clip (sound)") == Modality.AUDIO
    assert wider.modality("photo (described)") == Modality.TEXT
    assert set(plan(schema, video_sound=False, describe=True)) == {
        "clip (described)",
        "photo (described)",
    }
    with pytest.raises(ConfigError, match="not image, audio or video columns"):
        plan(schema, video_sound=False, describe=["note"])
    taken = Schema((*schema.columns, ColumnSpec("clip (sound)", Modality.AUDIO)))
    with pytest.raises(ConfigError, match="reserved"):
        plan(taken, video_sound=True, describe=False)


def _clip(path: Path, colour: str, *, with_sound: bool, freq: int) -> None:
    video = ["-f", "lavfi", "-i", f"color=c={colour}:s=48x48:d=1.5:r=4"]
    audio = ["-f", "lavfi", "-i", f"sine=frequency={freq}:duration=1.5"] if with_sound else []
    codecs = ["-c:v", "libx264", "-pix_fmt", "yuv420p"] + (["-c:a", "aac"] if with_sound else [])
    cmd = [str(FFMPEG), "-loglevel", "error", "-y", *video, *audio, *codecs, "-shortest"]
    subprocess.run([*cmd, str(path)], check=True)


@pytest.mark.skipif(FFMPEG is None, reason="ffmpeg (Debian package) is needed to build clips")
def test_video_column_gets_its_sound_track_as_an_audio_slot(tmp_path: Path) -> None:
    rows = []
    for i in range(16):
        label = ("red", "blue")[i % 2]
        silent = i == 5  # one clip with no audio track: its sound cell is absent, not an error
        _clip(tmp_path / f"{i}.mp4", COLOURS[label], with_sound=not silent, freq=300 + 40 * i)
        rows.append({"clip": f"{i}.mp4", "label": label})
    frame = pd.DataFrame(rows)
    encoders = {
        "video": build_encoder("video-frames", tiny=True),
        "audio": build_encoder("whisper-tiny-en", tiny=True),
    }
    model = Predictor("label", encoders=encoders, **fast()).fit(frame, base=tmp_path)
    assert model.schema_.modality("clip (sound)") == Modality.AUDIO
    assert set(model.slot_columns_.values()) == {"clip", "clip (sound)"}
    assert [s for s in model.skipped_ if s.column == "clip (sound)" and s.row == 5]
    before = model.predict_proba(frame, base=tmp_path)
    model.save(tmp_path / "model")
    loaded = Predictor.load(tmp_path / "model")
    np.testing.assert_allclose(loaded.predict_proba(frame, base=tmp_path), before, atol=1e-6)
    # Without the option there is no sound slot.
    plain = Predictor("label", encoders=encoders, video_sound=False, **fast())
    plain.fit(frame, base=tmp_path)
    assert set(plain.slot_columns_.values()) == {"clip"}


def _word_image(path: Path, word: str, font: ImageFont.FreeTypeFont) -> None:
    image = Image.new("RGB", (240, 90), "white")
    ImageDraw.Draw(image).text((14, 20), word, fill="black", font=font)
    image.save(path)


@pytest.mark.slow
@pytest.mark.real_weights
def test_describe_adds_what_an_image_says_as_text(tmp_path: Path) -> None:
    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 40)
    except OSError:
        pytest.skip("the DejaVu font (Debian fonts-dejavu-core) is needed to render words")
    words = {"open": ["OPEN", "Open now", "OPEN 24h"], "closed": ["CLOSED", "Closed", "SHUT"]}
    rows = []
    for label, texts in words.items():
        for j, word in enumerate(texts * 2):
            name = f"{label}{j}.png"
            _word_image(tmp_path / name, word, font)
            rows.append({"sign": name, "label": label})
    frame = pd.DataFrame(rows)
    encoders = {"image": build_encoder("efficientnet-lite0", tiny=True)}  # pixels say little
    model = Predictor("label", encoders=encoders, describe=True, **fast(epochs=40))
    model.fit(frame, frame, base=tmp_path)
    assert "sign (described)" in model.slot_columns_.values()
    described = model.features(frame, base=tmp_path)
    assert described.n_rows == len(frame)
    model.save(tmp_path / "model")
    loaded = Predictor.load(tmp_path / "model")
    assert loaded.describe is True
    np.testing.assert_allclose(
        loaded.predict_proba(frame, base=tmp_path),
        model.predict_proba(frame, base=tmp_path),
        atol=1e-6,
    )
    assert np.mean(np.array(model.predict(frame, base=tmp_path)) == frame["label"]) >= 0.9

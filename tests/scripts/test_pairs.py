"""Fast checks of the default-alignment pair builders on small subsets; skipped without the data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from scripts.pairs import (
    AUDIO_COLUMNS,
    IMAGE_COLUMNS,
    PACKAGES,
    cap_per_text,
    clean_caption,
    missing_packages,
    split_by_group,
    words_of_name,
)


def _require(*packages: str) -> None:
    missing = missing_packages(packages)
    if missing:
        pytest.skip(f"Debian data absent: apt-get install {' '.join(missing)}")


def _check_frame(frame: pd.DataFrame, columns: tuple[str, ...], source: str) -> None:
    assert tuple(frame.columns) == columns
    assert len(frame) > 0
    assert (frame["source"] == source).all()
    assert frame["text"].map(lambda t: isinstance(t, str) and t.strip() == t and t != "").all()
    assert frame["group"].str.startswith(f"{source}:").all()
    for path in frame[columns[0]].head(5):
        assert Path(path).is_absolute() and Path(path).is_file()
    assert not frame[columns[0]].str.contains("/shared/data/").any()  # no evaluation data


def test_text_helpers() -> None:
    assert clean_caption("  A guinea   fowl. ") == "A guinea fowl"
    assert clean_caption("“Quoted”") == "Quoted"
    assert clean_caption("Wait...") == "Wait..."
    assert words_of_name("HorseGallop2.wav") == "horse gallop"
    assert words_of_name("bat1-a.png") == "bat"
    assert words_of_name("car-blue.gif") == "car blue"
    assert words_of_name("Cough-female.wav") == "cough female"


def test_split_by_group_keeps_groups_together_and_is_seeded() -> None:
    frame = pd.DataFrame(
        {
            "source": ["x"] * 40 + ["y"] * 20,
            "group": [f"x{i // 2}" for i in range(40)] + [f"y{i}" for i in range(20)],
        }
    )
    held = split_by_group(frame, 0.25, seed=3)
    assert np.array_equal(held, split_by_group(frame, 0.25, seed=3))
    assert not np.array_equal(held, split_by_group(frame, 0.25, seed=4))
    for _, part in frame.assign(held=held).groupby("group"):
        assert part["held"].nunique() == 1
    assert held[:40].sum() == 10 and held[40:].sum() == 5  # a quarter of each source's groups


def test_cap_per_text() -> None:
    frame = pd.DataFrame({"image": list("abcdefg"), "text": ["star"] * 5 + ["moon", "sun"]})
    capped = cap_per_text(frame, 2, seed=0)
    assert capped["text"].value_counts().to_dict() == {"star": 2, "moon": 1, "sun": 1}


def test_tuxpaint_pairs(tmp_path: Path) -> None:
    _require("tuxpaint-stamps-default")
    from scripts.pairs import tuxpaint

    images = tuxpaint.image_pairs(tmp_path, limit=40)
    _check_frame(images, IMAGE_COLUMNS, "tuxpaint")
    assert not images["text"].str.contains(r"\.utf8=").any()  # translations stripped
    sounds = tuxpaint.audio_pairs(tmp_path, limit=300)
    _check_frame(sounds, AUDIO_COLUMNS, "tuxpaint")
    names = sounds["audio"].map(lambda p: Path(p).name)
    assert not names.str.contains(r"_desc_[a-z]").any()  # no readings in other languages
    assert names.str.endswith("_desc.ogg").any()  # the English readings are used


def test_openclipart_captions() -> None:
    from scripts.pairs import openclipart as oc

    assert oc.clean_title("Clipart by Nicu Buculei - contour_chipmunk") == "Contour chipmunk"
    assert oc.clean_title("Part of the Flat Icon Collection (Wed Aug 25 23:29:46 2004)") == ""
    kws = oc.clean_keywords(["hash", "", "mammal", "dog", "0x8b754fc", "icons"], "Bored dog")
    assert kws == ["mammal"]
    assert oc.caption("Bored dog", ["mammal"]) == "Bored dog: mammal"
    assert oc.caption("", ["mammal", "horse"]) == "mammal, horse"


def test_openclipart_pairs(tmp_path: Path) -> None:
    _require("openclipart-png", "openclipart-svg")
    from scripts.pairs import openclipart as oc

    frame = oc.image_pairs(tmp_path, limit=300)
    _check_frame(frame, IMAGE_COLUMNS, "openclipart")
    assert frame["text"].value_counts().max() <= oc.MAX_PER_CAPTION
    assert not frame["text"].str.contains("gramastar|Flat Icon|Lemon SVG", case=False).any()


def test_emoji_pairs_render_one_picture_each(tmp_path: Path) -> None:
    _require("fonts-noto-color-emoji", "unicode-data")
    from scripts.pairs import emoji

    entries = emoji.read_emoji_test()
    assert len(entries) > 1500
    assert not any("skin tone" in e.name for e in entries)
    frame = emoji.image_pairs(tmp_path, limit=20)
    _check_frame(frame, IMAGE_COLUMNS, "emoji")
    image = np.asarray(Image.open(frame["image"].iloc[0]).convert("RGB"))
    assert image.shape == (emoji.CANVAS, emoji.CANVAS, 3)
    assert (image[0, 0] == 255).all() and (image != 255).any()  # white ground, a drawing on it
    by_name = {e.name: e for e in entries}
    assert emoji.caption(by_name["flag: Germany"]) == "flag of Germany"
    dress = tmp_path / "dress.png"
    assert emoji.render(by_name["dress"].chars, dress)


def test_scratch_pairs(tmp_path: Path) -> None:
    _require("scratch")
    from scripts.pairs import scratch

    sounds = scratch.audio_pairs(tmp_path)
    _check_frame(sounds, AUDIO_COLUMNS, "scratch")
    assert "horse gallop, animal sound" in set(sounds["text"])
    images = scratch.image_pairs(tmp_path)
    _check_frame(images, IMAGE_COLUMNS, "scratch")
    assert not images["image"].str.contains("/People/|/Letters/").any()


def test_speech_pairs_are_seeded_and_never_fsdd(tmp_path: Path) -> None:
    _require("espeak-ng")
    from scripts.pairs import speech

    assert speech.voice_for("A guinea fowl", 0) == speech.voice_for("A guinea fowl", 0)
    frame = speech.audio_pairs(tmp_path, texts=["A guinea fowl", "Zero"], voices_per_text=2)
    _check_frame(frame, AUDIO_COLUMNS, "speech")
    assert len(frame) == 4
    assert not frame["audio"].str.contains("fsdd").any()


def test_every_package_is_known() -> None:
    assert {"tuxpaint-stamps-default", "espeak-ng", "unicode-data"} <= set(PACKAGES)


@pytest.mark.parametrize("kind", ["image-text", "audio-text"])
def test_shipped_default_is_small_and_records_how_it_was_trained(kind: str) -> None:
    from polymodal.align.default import default_dir, is_installed, load_default

    if not is_installed(kind):
        pytest.skip(f"no shipped {kind} alignment (run scripts/train_default_alignment.py)")
    folder = default_dir(kind)
    assert sum(p.stat().st_size for p in folder.iterdir()) < 3_000_000
    alignment = load_default(kind)
    assert alignment.b.encoder == "minilm-l6" and alignment.heads["b"].lock  # LiT: text locked
    training = alignment.record["training"]
    assert training["held_out_pairs"] > 0 and training["seed"] == 0
    assert "fsdd" not in json.dumps(training["pairs"]) and "clothing" not in training["pairs"]
    assert alignment.record["templates"]

"""Fast checks of the fusion benchmark builders on tiny subsets; skipped when data is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from benchmarks.datasets import SPLITS, BenchData, build, random_split
from benchmarks.datasets import av_digits as avd
from benchmarks.datasets import tuxpaint as tux
from tests.conftest import require_shared

pytestmark = pytest.mark.shared_data


def _require(path: Path, install: str) -> None:
    if not path.is_dir():
        pytest.skip(f"{path} is absent (apt-get install {install})")


def _check_common(data: BenchData) -> None:
    assert set(data.frame["split"]) == set(SPLITS)
    assert sorted(c for cols in data.groups.values() for c in cols) == sorted(data.columns)
    for split in SPLITS:
        part = data.part(split)
        assert list(part.columns) == [*data.columns, data.label]
        assert len(part) == data.sizes()[split] > 0
    for column, modality in data.columns.items():
        if modality in ("image", "audio"):
            paths = data.frame[column].dropna()
            assert all(Path(p).is_absolute() and Path(p).is_file() for p in paths)


def test_random_split_is_stratified_and_seeded() -> None:
    strata = np.array(["a"] * 50 + ["b"] * 10 + ["c"] * 3)
    split = random_split(len(strata), 0, fractions=(0.2, 0.2), strata=strata)
    for s in ("a", "b", "c"):
        rows = split[strata == s]
        assert {"train", "val", "test"} <= set(rows)  # even the 3-row class reaches test
    assert (split[strata == "a"] == "test").sum() == 10
    assert (random_split(63, 0, strata=strata) == split).all()
    assert (random_split(63, 1, strata=strata) != split).any()


# ---------------------------------------------------------------------------- houses
def test_houses_rows_match_the_source_file(tmp_path: Path) -> None:
    folder = require_shared("houses")
    data = build("houses", tmp_path, seed=0, folder=folder)
    _check_common(data)
    assert len(data.frame) == 535 and data.notes["zipcodes"] == 49
    first = data.frame.iloc[0]
    # HousesInfo.txt line 1 is house 1: "4 4 4053 85255 869500".
    assert (first["bedrooms"], first["bathrooms"], first["area"]) == (4, 4, 4053)
    assert first["zipcode"] == "85255" and first["price"] == 869500
    assert Path(first["kitchen"]).name == "1_kitchen.jpg"
    assert data.columns["zipcode"] == "categorical"
    assert list(tmp_path.iterdir()) == []  # nothing generated, nothing copied
    other = build("houses", tmp_path, seed=1, folder=folder)
    assert (other.frame["split"] != data.frame["split"]).any()


# ---------------------------------------------------------------------------- tux paint
def test_tuxpaint_stamps_counts_and_no_spoken_description() -> None:
    _require(tux.STAMPS, "tuxpaint-stamps-default")
    stamps = tux.find_stamps()
    assert len(stamps) == 950 and stamps["category"].nunique() == 16
    sounds = stamps["sound"].dropna()
    assert len(sounds) == 134
    # A *_desc*.ogg reads the description aloud: using it would leak the text modality.
    assert not sounds.str.contains("_desc").any()
    names = stamps.loc[sounds.index, "stamp"]
    assert all(Path(s).stem == Path(n).name for s, n in zip(sounds, names, strict=True))
    frog = stamps.set_index("stamp").loc["animals/amphibians/frog"]
    assert frog["text"] == "A frog."
    assert frog["sound"].endswith("animals/amphibians/frog.ogg")


def test_tuxpaint_build_subset(tmp_path: Path) -> None:
    _require(tux.STAMPS, "tuxpaint-stamps-default")
    data = build("tuxpaint", tmp_path, seed=0, limit=60, svg=False)
    _check_common(data)
    assert len(data.frame) == 60
    assert data.notes["no_image"] == data.frame["image"].isna().sum()
    assert data.frame["text"].notna().all()
    assert data.groups["audio"] == ("sound",)
    sounds = build("tuxpaint_sounds", tmp_path, seed=0, svg=False)
    assert sounds.name == "tuxpaint_sounds" and len(sounds.frame) == 134
    assert sounds.frame["sound"].notna().all()


def test_rasterise_svg(tmp_path: Path) -> None:
    _require(tux.STAMPS, "tuxpaint-stamps-default")
    svg = next(tux.STAMPS.rglob("*.svg"))
    out = tmp_path / "x.png"
    if not tux.rasterise(svg, out):
        pytest.skip("neither rsvg-convert nor cairosvg is available")
    with Image.open(out) as img:
        assert max(img.size) == tux.RASTER_PX


# ---------------------------------------------------------------------------- av-digits
def test_degrade_images_keeps_k_components() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 16, size=(40, 64))
    same = avd.degrade_images(x, np.arange(40), None).reshape(40, -1).astype(float)
    assert np.abs(same - np.round(255 * (1 - x / 16))).max() <= 1
    low = avd.degrade_images(x, np.arange(20), 2).reshape(40, -1).astype(float)
    centred = low[:20] - low[:20].mean(axis=0)
    # Before clipping and rounding the reconstructions span 2 directions: 2 big singular values.
    s = np.linalg.svd(centred, compute_uv=False)
    assert s[2] < 0.2 * s[1]


def test_mix_at_snr_hits_the_ratio() -> None:
    rng = np.random.default_rng(0)
    speech = (0.05 * np.sin(np.arange(8000) / 5.0)).astype(np.float32)
    bank = [rng.normal(size=3000).astype(np.float32)]  # shorter than the clip: tiled
    mixed = avd.mix_at_snr(speech, bank, -6.0, np.random.default_rng(1))
    noise = mixed - speech
    snr = 10 * np.log10(np.mean(speech**2) / np.mean(noise.astype(np.float64) ** 2))
    assert snr == pytest.approx(-6.0, abs=0.01)


def test_av_digits_split_by_speaker_with_disjoint_images(tmp_path: Path) -> None:
    fsdd = require_shared("fsdd")
    _require(avd.NOISE_DIR, "scratch")
    data = build("av_digits", tmp_path, seed=2, limit=1, fsdd=fsdd)
    _check_common(data)
    frame = data.frame
    assert len(frame) == 60  # 6 speakers x 10 digits x 1 clip
    by_split = frame.groupby("split")["speaker"].unique()
    assert len(by_split["test"]) == 1 and len(by_split["val"]) == 1
    assert by_split["test"][0] == avd.SPEAKERS[2] and by_split["val"][0] == avd.SPEAKERS[3]
    used = frame.groupby("speaker")["image_index"].apply(set)
    speakers = list(used.index)
    for i, a in enumerate(speakers):
        for b in speakers[i + 1 :]:
            assert not used[a] & used[b], f"{a} and {b} share an image"
    from sklearn.datasets import load_digits

    targets = load_digits().target
    assert (targets[frame["image_index"]] == frame["digit"]).all()
    # Audio is the clip plus noise, same length and rate, and deterministic across seeds.
    row = frame.iloc[0]
    noisy, rate = sf.read(row["audio"])
    clean, clean_rate = sf.read(row["clip"])
    assert rate == clean_rate and len(noisy) == len(clean)
    assert not np.allclose(noisy, clean, atol=1e-3)
    again = build("av_digits", tmp_path / "again", seed=0, limit=1, fsdd=fsdd)
    match = again.frame.set_index("clip").loc[row["clip"], "audio"]
    assert sf.read(match)[0].tolist() == noisy.tolist()
    with Image.open(row["image"]) as img:
        assert img.size == (64, 64)


def test_clothing_uses_its_own_split_folders(tmp_path: Path) -> None:
    from benchmarks.datasets import build

    try:
        data = build("clothing", tmp_path, limit=3)
    except FileNotFoundError as err:
        pytest.skip(f"clothing data absent: {err}")
    assert data.sizes() == {"train": 30, "val": 30, "test": 30}  # 3 per class x 10 classes
    assert set(data.frame["kind"]) == {
        "dress", "hat", "longsleeve", "outwear", "pants",
        "shirt", "shoes", "shorts", "skirt", "t-shirt",
    }  # fmt: skip
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in data.frame["photo"])

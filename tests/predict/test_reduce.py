"""Wide cached embeddings reduced to principal components on the training rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from polymodal.fusion.base import SlotSpec
from polymodal.modality import Modality
from polymodal.predict import Predictor
from polymodal.predict.features import FeatureSet, SlotData
from polymodal.predict.reduce import fit_reducer, principal_axes
from tests.predict.test_predictor import fast, make_table


def _features(pooled: np.ndarray, present: np.ndarray, narrow: np.ndarray) -> FeatureSet:
    return FeatureSet(
        len(pooled),
        {"wide": SlotData(present, pooled.astype(np.float32)), "narrow": SlotData(present, narrow)},
    )


SLOTS = [
    SlotSpec("wide", Modality.IMAGE, 40, 40),
    SlotSpec("narrow", Modality.TEXT, 6, 6),
]


@pytest.mark.parametrize("rows", [200, 15])
def test_principal_axes_match_an_svd(rows: int) -> None:
    rng = np.random.default_rng(rows)
    x = rng.normal(size=(rows, 30)) @ rng.normal(size=(30, 30))
    x -= x.mean(axis=0)
    std, axes = principal_axes(x)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    k = min(rows - 1, 30)
    np.testing.assert_allclose(std[:k], s[:k] / np.sqrt(rows - 1), rtol=1e-8)
    np.testing.assert_allclose(np.abs((axes[:k] * vt[:k]).sum(axis=1)), 1.0, atol=1e-8)


def test_wide_slots_keep_their_leading_components_and_absent_rows_stay_zero() -> None:
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(120, 3)) * [5.0, 2.0, 1.0]
    wide = latent @ rng.normal(size=(3, 40)) + 7.0  # rank 3 plus an offset
    present = np.ones(120, bool)
    present[:10] = False
    wide[:10] = 0.0
    narrow = rng.normal(size=(120, 6)).astype(np.float32)
    train = _features(wide, present, narrow)

    reducer = fit_reducer(train, SLOTS, rank=8)
    assert reducer is not None
    assert set(reducer.bases) == {"wide"}  # 6 <= 8: the narrow slot passes through
    assert reducer.bases["wide"].shape == (40, 3)  # only the directions the rows span
    assert [s.width for s in reducer.specs(SLOTS)] == [3, 6]

    out = reducer.transform(train)
    assert out.slots["wide"].pooled.shape == (120, 3)
    assert not out.slots["wide"].pooled[:10].any()
    np.testing.assert_array_equal(out.slots["narrow"].pooled, narrow)
    # The projection keeps everything the rows vary in: reconstructing them loses nothing.
    basis = reducer.bases["wide"]
    back = out.slots["wide"].pooled[10:] @ np.linalg.pinv(basis) + reducer.means["wide"]
    np.testing.assert_allclose(back, wide[10:], atol=1e-3)
    # Plain PCA, not whitened: the components keep their relative spread.
    spread = out.slots["wide"].pooled[10:].std(axis=0)
    assert spread[0] > 2 * spread[2]


def test_rank_zero_or_no_wide_slot_reduces_nothing() -> None:
    rng = np.random.default_rng(1)
    train = _features(
        rng.normal(size=(30, 40)), np.ones(30, bool), rng.normal(size=(30, 6)).astype(np.float32)
    )
    assert fit_reducer(train, SLOTS, rank=0) is None
    assert fit_reducer(train, SLOTS, rank=64) is None


def test_a_reduced_predictor_saves_loads_and_predicts_the_same(tmp_path: Path) -> None:
    frame = make_table(tmp_path / "data", n=60)
    frame.to_csv(tmp_path / "data" / "data.csv", index=False)
    data = tmp_path / "data" / "data.csv"
    model = Predictor("label", fusion="early", reduce_to=4, **fast(epochs=6)).fit(data)
    widths = {name: spec.width for name, spec in model.network_.specs.items()}
    assert widths["note"] == 4 and widths["photo"] == 4  # tiny encoders are wider than 4

    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "reduce.safetensors").is_file()
    assert json.loads((tmp_path / "m" / "config.json").read_text())["format_version"] == 2
    loaded = Predictor.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict_proba(data), model.predict_proba(data))
    # A subset of the columns still works through the reducer.
    subset = pd.read_csv(data).drop(columns=["photo"])
    assert loaded.predict(subset).shape == (60,)


def test_reduce_to_zero_keeps_full_width_and_the_old_format(tmp_path: Path) -> None:
    frame = make_table(tmp_path / "data", n=45)
    frame.to_csv(tmp_path / "data" / "data.csv", index=False)
    model = Predictor("label", fusion="early", reduce_to=0, **fast(epochs=3))
    model.fit(tmp_path / "data" / "data.csv")
    photo_width = next(s.width for s in model.slots_ if s.name == "photo")
    assert model.network_.specs["photo"].width == photo_width
    model.save(tmp_path / "m")
    assert not (tmp_path / "m" / "reduce.safetensors").exists()
    assert json.loads((tmp_path / "m" / "config.json").read_text())["format_version"] == 1


def test_the_model_notes_say_what_was_reduced_and_how_much_it_keeps() -> None:
    rng = np.random.default_rng(2)
    latent = rng.normal(size=(80, 2)) * [3.0, 1.0]
    wide = latent @ rng.normal(size=(2, 40)) + 0.01 * rng.normal(size=(80, 40))
    train = _features(wide, np.ones(80, bool), rng.normal(size=(80, 6)).astype(np.float32))
    reducer = fit_reducer(train, SLOTS, rank=2)
    assert reducer is not None
    assert reducer.explained["wide"] > 0.99  # two components hold nearly everything
    notes = reducer.notes({"wide": "photo", "narrow": "note"})
    assert notes[0] == (
        "column 'photo': 40-wide embeddings reduced to 2 principal components"
        " (100% of their variance)"
    )
    assert notes[1].startswith("column 'note': 6-wide embeddings reduced to 2")

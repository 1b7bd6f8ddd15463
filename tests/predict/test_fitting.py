"""Model selection's last step: the kept candidate retrained on train + val, alone or as a seed
ensemble, and saved models of either kind loading back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from polymodal.errors import ConfigError
from polymodal.predict import Predictor
from polymodal.predict.features import FeatureSet, SlotData, concat_features
from polymodal.predict.network import EnsembleNetwork, PredictorNetwork
from tests.predict.test_predictor import fast, make_table


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    folder = tmp_path_factory.mktemp("fitting")
    return make_table(folder, n=60), folder


def test_refit_trains_a_fresh_network_on_train_and_val(data: tuple[pd.DataFrame, Path]) -> None:
    frame, folder = data
    kept = Predictor("label", fusion="early", refit=False, **fast(epochs=6)).fit(frame, base=folder)
    refit = Predictor("label", fusion="early", **fast(epochs=6)).fit(frame, base=folder)
    row = refit.leaderboard_[0]
    assert row["refit_rows"] == 60 and "refit_rows" not in kept.leaderboard_[0]
    # Same validated run, so the same selection; the refit model differs from it.
    assert row["best_epoch"] == kept.leaderboard_[0]["best_epoch"]
    assert not np.allclose(
        refit.predict_proba(frame, base=folder), kept.predict_proba(frame, base=folder)
    )
    assert any("no longer held out" in n for n in refit.notes_)


def test_ensemble_averages_members_and_survives_save_load(
    data: tuple[pd.DataFrame, Path], tmp_path: Path
) -> None:
    frame, folder = data
    model = Predictor("label", fusion="linear", ensemble=3, **fast(epochs=6))
    model.fit(frame, base=folder)
    assert isinstance(model.network_, EnsembleNetwork) and len(model.network_.members) == 3
    x = model.features(frame, base=folder).tensors()
    members = [
        np.log(np.clip(_softmax(m(x).detach().numpy()), 1e-30, None))
        for m in model.network_.members
    ]
    np.testing.assert_allclose(
        model.outputs(model.features(frame, base=folder)), np.mean(members, axis=0), atol=1e-5
    )
    model.save(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["ensemble_size"] == 3
    loaded = Predictor.load(tmp_path / "m")
    np.testing.assert_allclose(
        loaded.predict_proba(frame, base=folder), model.predict_proba(frame, base=folder)
    )


def test_a_model_saved_before_ensembles_loads_as_one_network(
    data: tuple[pd.DataFrame, Path], tmp_path: Path
) -> None:
    frame, folder = data
    Predictor("label", fusion="early", **fast(epochs=3)).fit(frame, base=folder).save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    for key in ("ensemble_size",):
        config.pop(key)
    for key in ("refit", "ensemble"):
        config["params"].pop(key)
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert isinstance(Predictor.load(tmp_path).network_, PredictorNetwork)


def test_ensemble_without_refit_is_a_config_error(data: tuple[pd.DataFrame, Path]) -> None:
    frame, folder = data
    with pytest.raises(ConfigError, match="needs refit=True"):
        Predictor("label", ensemble=2, refit=False, **fast()).fit(frame, base=folder)


def test_concat_features_joins_rows_in_order() -> None:
    def fs(values: list[float], present: list[bool]) -> FeatureSet:
        pooled = np.array(values, np.float32)[:, None]
        return FeatureSet(len(values), {"a": SlotData(np.array(present), pooled)}, None,
                          np.arange(len(values)))  # fmt: skip

    joined = concat_features(fs([1.0, 2.0], [True, False]), fs([3.0], [True]))
    assert len(joined) == 3
    assert joined.slots["a"].pooled[:, 0].tolist() == [1.0, 2.0, 3.0]
    assert joined.slots["a"].present.tolist() == [True, False, True]
    assert joined.y is not None and joined.y.tolist() == [0, 1, 0]


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)

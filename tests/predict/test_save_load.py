"""Saved predictors: a self-describing folder, written atomically, loaded offline elsewhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from polymodal.errors import ConfigError
from polymodal.predict import Predictor
from polymodal.predict.predictor import FORMAT_VERSION
from tests.conftest import REPO
from tests.predict.test_predictor import fast, make_table

LOAD_AND_PREDICT = """
import sys, numpy as np
from polymodal.predict import Predictor
model = Predictor.load(sys.argv[1])
np.save(sys.argv[3], model.predict_proba(sys.argv[2]))
np.save(sys.argv[4], model.predict(sys.argv[2]).astype(str))
"""


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Predictor, Path]:
    folder = tmp_path_factory.mktemp("saved")
    frame = make_table(folder, n=60)
    frame.to_csv(folder / "data.csv", index=False)
    model = Predictor("label", fusion="hybrid", **fast(epochs=4)).fit(folder / "data.csv")
    return model, folder


def test_loads_in_a_fresh_process_with_identical_predictions(
    fitted: tuple[Predictor, Path], tmp_path: Path
) -> None:
    model, folder = fitted
    model.save(tmp_path / "model")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "src"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    proba_file, labels_file = tmp_path / "proba.npy", tmp_path / "labels.npy"
    args = [str(tmp_path / "model"), str(folder / "data.csv"), str(proba_file), str(labels_file)]
    res = subprocess.run(
        [sys.executable, "-c", LOAD_AND_PREDICT, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert np.array_equal(np.load(proba_file), model.predict_proba(folder / "data.csv"))
    assert np.array_equal(np.load(labels_file), model.predict(folder / "data.csv").astype(str))


def test_config_describes_the_model(fitted: tuple[Predictor, Path], tmp_path: Path) -> None:
    model, _ = fitted
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json",
        "model.safetensors",
        "tabular.json",
    ]
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    # Tiny encoders are narrower than reduce_to: nothing reduced, so the format older
    # polymodal reads (test_reduce.py covers format 2).
    assert config["format_version"] == 1 < FORMAT_VERSION
    assert config["polymodal_version"]
    assert set(config["params"]) == set(Predictor._PARAMS)
    assert config["params"]["encoders"] == {
        "text": "minilm-l6-tiny",
        "image": "efficientnet-lite0-tiny",
    }
    assert config["target"]["classes"] == ["cat", "dog", "fish"]
    assert config["schema"] == {
        "note": "text",
        "photo": "image",
        "size": "numeric",
        "shop": "categorical",
    }
    assert {s["name"] for s in config["slots"]} == {"note", "photo", "tabular"}
    assert config["encoders"]["image"]["cache_id"].startswith("efficientnet-lite0-tiny@")
    assert config["fusion"] == "hybrid"


def test_loaded_model_round_trips_in_process(
    fitted: tuple[Predictor, Path], tmp_path: Path
) -> None:
    model, folder = fitted
    model.save(tmp_path / "m")
    loaded = Predictor.load(tmp_path / "m")
    data = folder / "data.csv"
    assert np.array_equal(loaded.predict_proba(data), model.predict_proba(data))
    assert loaded.leaderboard_ == json.loads(json.dumps(model.leaderboard_))
    assert loaded.evaluate(data) == model.evaluate(data)


def test_save_replaces_a_model_but_not_a_foreign_folder(
    fitted: tuple[Predictor, Path], tmp_path: Path
) -> None:
    model, _ = fitted
    target = tmp_path / "m"
    model.save(target)
    old = {"format_version": 1, "polymodal_version": "0.0.1"}  # an older save, replaced whole
    (target / "config.json").write_text(json.dumps(old))
    model.save(target)
    assert json.loads((target / "config.json").read_text())["format_version"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(ConfigError, match="not a saved model"):
        model.save(foreign)
    assert (foreign / "holiday.jpg").exists()


def test_save_refuses_a_checkpoint_folder_that_merely_has_a_config_json(
    fitted: tuple[Predictor, Path], tmp_path: Path
) -> None:
    model, _ = fitted
    checkpoint = tmp_path / "bert"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text('{"model_type": "bert"}')
    (checkpoint / "pytorch_model.bin").write_bytes(b"weights")
    with pytest.raises(ConfigError, match=r"bert exists and is not a saved model \(no polymodal"):
        model.save(checkpoint)
    assert sorted(p.name for p in checkpoint.iterdir()) == ["config.json", "pytorch_model.bin"]
    (tmp_path / "empty").mkdir()
    model.save(tmp_path / "empty")  # an empty folder is fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"file is a file, not a folder"):
        model.save(tmp_path / "file")


@pytest.mark.parametrize("name", ["tabular.json", "model.safetensors"])
@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_damaged_model_folder_is_a_config_error_naming_the_file(
    fitted: tuple[Predictor, Path], tmp_path: Path, name: str, damage: str
) -> None:
    model, _ = fitted
    model.save(tmp_path / "m")
    file = tmp_path / "m" / name
    if damage == "missing":
        file.unlink()
    else:
        file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    problem = "missing" if damage == "missing" else "unreadable"
    with pytest.raises(ConfigError, match=rf"{name} is {problem}.*the model folder .*damaged"):
        Predictor.load(tmp_path / "m")


def test_a_newer_format_is_refused_clearly(fitted: tuple[Predictor, Path], tmp_path: Path) -> None:
    model, _ = fitted
    model.save(tmp_path / "m")
    config_file = tmp_path / "m" / "config.json"
    config = json.loads(config_file.read_text())
    config["format_version"] = FORMAT_VERSION + 1
    config_file.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"newer than this polymodal .* upgrade polymodal"):
        Predictor.load(tmp_path / "m")
    with pytest.raises(ConfigError, match=r"no config\.json"):
        Predictor.load(tmp_path)


def test_fine_tuned_encoder_weights_are_saved(tmp_path: Path) -> None:
    from polymodal.encoders.registry import build_encoder

    frame = make_table(tmp_path / "data", n=30)
    encoders = {
        "text": build_encoder("minilm-l6", tiny=True),
        "image": build_encoder("efficientnet-lite0", tiny=True),
    }
    model = Predictor(
        "label", fusion="hybrid", fine_tune_blocks=1, **fast(epochs=2, encoders=encoders)
    ).fit(frame, base=tmp_path / "data")
    assert len(model.network_.encoders) == 2
    model.save(tmp_path / "m")
    loaded = Predictor.load(tmp_path / "m")
    head = frame.head(10)
    assert np.array_equal(
        loaded.predict_proba(head, base=tmp_path / "data"),
        model.predict_proba(head, base=tmp_path / "data"),
    )


def test_regression_target_transform_is_saved(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"area": rng.uniform(50, 300, 120)})
    frame["price"] = np.exp(10 + frame["area"] / 100 + rng.normal(0, 0.6, 120))
    model = Predictor("price", fusion="early", **fast(epochs=5)).fit(frame)
    assert model.target_.log
    model.save(tmp_path / "m")
    loaded = Predictor.load(tmp_path / "m")
    assert loaded.target_.log
    assert np.array_equal(loaded.predict(frame), model.predict(frame))

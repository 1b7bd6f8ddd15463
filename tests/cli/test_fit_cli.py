"""`polymodal fit / predict / evaluate` on a CSV a new user writes by hand, with real encoders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.conftest import REPO

TEXTS = {
    "ripe": ["soft and sweet, ready to eat", "deep red skin, smells sweet", "juicy and soft"],
    "unripe": ["hard and sour", "green skin, still firm", "crunchy, not sweet yet"],
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "polymodal", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


def write_fruit_csv(folder: Path, n: int = 30) -> Path:
    """The kind of table a user types: a description, a photo file, a weight, a label."""
    rng = np.random.default_rng(0)
    lines = ["description,photo,weight_g,label"]
    for i in range(n):
        label = "ripe" if i % 2 == 0 else "unripe"
        colour = np.array((200, 30, 30) if label == "ripe" else (60, 180, 40))
        pixels = np.clip(colour + rng.integers(-40, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"fruit{i}.png")
        weight = 150 + (20 if label == "ripe" else 0) + int(rng.integers(-15, 15))
        lines.append(f'"{TEXTS[label][i % 3]}",fruit{i}.png,{weight},{label}')
    path = folder / "fruit.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.real_weights
@pytest.mark.slow
def test_fit_predict_evaluate_a_hand_written_csv(tmp_path: Path) -> None:
    data = write_fruit_csv(tmp_path)
    model_dir, report = tmp_path / "model", tmp_path / "report.html"
    res = run(
        "fit", str(data), "--label", "label", "--fusion", "early", "-o", str(model_dir),
        "--epochs", "20", "--report", str(report), "-q",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "early" in res.stdout and "val auroc" in res.stdout
    assert "embeddings: 36 encoded" in res.stderr  # 6 distinct texts + 30 photos
    assert (model_dir / "config.json").exists() and report.stat().st_size > 10_000

    preds = tmp_path / "preds.csv"
    res = run("predict", str(model_dir), str(data), "-o", str(preds), "-q")
    assert res.returncode == 0, res.stderr
    out = pd.read_csv(preds)
    assert list(out.columns[:3]) == ["prediction", "proba.ripe", "proba.unripe"]
    assert {"attr.text", "attr.image", "attr.tabular", "attr.base"} <= set(out.columns)
    assert (out["prediction"] == pd.read_csv(data)["label"]).mean() > 0.8

    # A second fresh process and this one agree with the first, digit for digit.
    again = tmp_path / "again.csv"
    assert run("predict", str(model_dir), str(data), "-o", str(again), "-q").returncode == 0
    assert again.read_text() == preds.read_text()
    from polymodal.predict import Predictor

    proba = Predictor.load(model_dir).predict_proba(data)
    assert np.array_equal(
        proba.astype(np.float32), out[["proba.ripe", "proba.unripe"]].to_numpy(np.float32)
    )

    res = run("evaluate", str(model_dir), str(data), "-q")
    assert res.returncode == 0, res.stderr
    assert "accuracy" in res.stdout and "auroc" in res.stdout

    # Photos gone: every row is still predicted, and every skipped cell is listed
    gone = pd.read_csv(data).assign(photo=[f"gone{i}.png" for i in range(30)])
    gone.to_csv(tmp_path / "gone.csv", index=False)
    res = run("predict", str(model_dir), str(tmp_path / "gone.csv"), "-o", str(preds), "-q")
    assert res.returncode == 0, res.stderr
    assert len(pd.read_csv(preds)) == 30
    listed = pd.read_csv(tmp_path / "preds.skipped.csv")
    assert listed["row"].tolist() == list(range(30)) and "30 cells skipped" in res.stderr
    res = run("evaluate", str(model_dir), str(tmp_path / "gone.csv"), "-q")
    assert res.returncode == 0 and "30 cells skipped" in res.stderr
    assert "... and 25 more" in res.stderr
    res = run("predict", str(model_dir), str(data), "-o", str(tmp_path), "-q")
    assert res.returncode == 2 and "is a folder" in res.stderr


def test_fit_reports_a_missing_label_column_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b\n1,x\n2,y\n")
    res = run("fit", str(tmp_path / "t.csv"), "--label", "price", "-o", str(tmp_path / "m"))
    assert res.returncode == 2
    assert "label column 'price' is not in the table; its columns are: 'a', 'b'" in res.stderr
    assert "Traceback" not in res.stderr


def test_fit_refuses_a_foreign_output_folder_before_fitting(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,label\n1,x\n2,y\n3,x\n4,y\n")
    checkpoint = tmp_path / "bert"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text('{"model_type": "bert"}')
    (checkpoint / "vocab.txt").write_text("[PAD]\n")
    res = run("fit", str(tmp_path / "t.csv"), "--label", "label", "-o", str(checkpoint), "-q")
    assert res.returncode == 2
    assert f"{checkpoint} exists and is not a saved model" in res.stderr
    assert "Traceback" not in res.stderr and "embeddings:" not in res.stderr  # refused first
    assert sorted(p.name for p in checkpoint.iterdir()) == ["config.json", "vocab.txt"]

    (tmp_path / "out").write_text("x")
    res = run("fit", str(tmp_path / "t.csv"), "--label", "label", "-o", str(tmp_path / "out"))
    assert res.returncode == 2
    assert "out is a file, not a folder" in res.stderr and "Traceback" not in res.stderr


def test_evaluate_json_prints_null_for_an_undefined_metric(tmp_path: Path) -> None:
    import json

    from polymodal.predict import Predictor
    from tests.predict.test_predictor import fast

    x = np.arange(40, dtype=np.float64)
    frame = pd.DataFrame({"x": x, "y": np.where(x % 2 == 0, "even", "odd")})
    Predictor("y", fusion="early", **fast(epochs=2)).fit(frame).save(tmp_path / "m")
    frame.head(6).assign(y="even").to_csv(tmp_path / "one_class.csv", index=False)
    res = run("evaluate", str(tmp_path / "m"), str(tmp_path / "one_class.csv"), "--json", "-q")
    assert res.returncode == 0, res.stderr
    metrics = json.loads(res.stdout, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert metrics["auroc"] is None and 0.0 <= metrics["accuracy"] <= 1.0


def test_a_split_folder_is_fitted_on_its_own_splits(tmp_path: Path) -> None:
    """train/ fits, validation/ validates, test/ scores; 'split' is never a feature."""
    from polymodal.cli.fit import folder_splits

    layout = {"train": 6, "validation": 2, "test": 3}
    for split, n in layout.items():
        for i in range(n):
            cls = "a" if i % 2 else "b"
            (tmp_path / "data" / split / cls).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8)).save(tmp_path / "data" / split / cls / f"{i}.png")
    data = tmp_path / "data"
    train, val, test, base = folder_splits(data, None, None, None)
    assert isinstance(train, pd.DataFrame) and isinstance(val, pd.DataFrame)
    assert isinstance(test, pd.DataFrame) and base == data
    assert (len(train), len(val), len(test)) == (6, 2, 3)
    assert all("split" not in f.columns for f in (train, val, test))
    assert set(train["folder"]) == {"a", "b"} and train["path"].str.startswith("train/").all()
    # --val given: the layout is not used, but the column is still no feature
    frame, v, t, _ = folder_splits(data, tmp_path / "v.csv", None, None)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 11 and "split" not in frame.columns
    assert v == tmp_path / "v.csv" and t is None
    # a folder of class folders only, or a table: passed through as given
    assert folder_splits(data / "train", None, None, None)[0] == data / "train"

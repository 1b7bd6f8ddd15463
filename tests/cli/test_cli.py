"""The CLI as a user runs it: real process, real files, clear errors instead of tracebacks."""

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


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        [sys.executable, "-m", "polymodal", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def test_models_lists_the_three_defaults() -> None:
    res = run("models")
    assert res.returncode == 0, res.stderr
    for name in ("minilm-l6", "efficientnet-lite0", "whisper-tiny-en", "tabular"):
        assert name in res.stdout
    assert "Apache-2.0" in res.stdout and "MIT" in res.stdout


def test_inspect_reports_schema_and_bad_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.png"
        )
    frame = pd.DataFrame(
        {
            "photo": [f"{i}.png" for i in range(5)] + ["gone.png"],
            "size": [1.0, 2.0, float("inf"), 4.0, 5.0, 6.0],
            "label": list("ababab"),
        }
    )
    frame.to_csv(tmp_path / "t.csv", index=False)
    res = run("inspect", str(tmp_path / "t.csv"), "--exclude", "label")
    assert res.returncode == 0, res.stderr
    assert "photo" in res.stdout and "image" in res.stdout
    assert "row 5, column 'photo': file not found" in res.stdout
    assert "row 2, column 'size': infinite value" in res.stdout


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    res = run("inspect", str(tmp_path / "t.csv"), "--column", "photo=image")
    assert res.returncode == 2
    assert res.stderr.strip().startswith("polymodal: error: column 'photo' is not in the table")
    assert "Traceback" not in res.stderr
    res = run("embed", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "o.parquet"))
    assert res.returncode == 2 and "file not found" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.real_weights
@pytest.mark.slow
def test_embed_writes_parquet_with_nulls_and_skipped_report(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.jpg"
        )
    (tmp_path / "bad.jpg").write_text("not an image")
    frame = pd.DataFrame(
        {
            "photo": [f"{i}.jpg" for i in range(4)] + ["bad.jpg"],
            "caption": ["red", "green", "blue", None, "black"],
        }
    )
    frame.to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "emb.parquet"
    res = run("embed", str(tmp_path / "t.csv"), "-o", str(out), "-q", "--column", "caption=text")
    assert res.returncode == 0, res.stderr
    got = pd.read_parquet(out)
    assert len(got) == 5
    assert got["photo.embedding"].isna().tolist() == [False] * 4 + [True]
    assert got["caption.embedding"].isna().tolist() == [False, False, False, True, False]
    assert len(got["photo.embedding"][0]) == 1280 and len(got["caption.embedding"][0]) == 384
    skipped = pd.read_csv(tmp_path / "emb.skipped.csv")
    assert skipped[["row", "column"]].values.tolist() == [[4, "photo"]]
    assert "1 cells skipped" in res.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "x", "--db", ".", "-k", "abc"], "Invalid value for '-k'"),
        (["search", "x", "--db", ".", "-k", "0"], "greater than or equal to 1"),
        (["frobnicate"], "No such command"),
        (["fit", "--bogus"], "No such option"),
    ],
)
def test_usage_errors_are_click_messages_not_tracebacks(args: list[str], message: str) -> None:
    # typer vendors its own click; its exceptions must still end as a usage message, exit 2
    res = run(*args)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr

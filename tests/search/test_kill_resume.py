"""Indexing killed (SIGKILL) at three random points, then resumed: nothing lost, nothing doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from polymodal.search.files import item_id
from polymodal.search.store import SearchStore
from tests.search.conftest import write_png, write_wav

N_PHOTOS = 40
BATCH = 2


def _commits(db: Path) -> int:
    versions = db / "image_text.lance" / "_versions"
    return len(os.listdir(versions)) if versions.is_dir() else 0


def _index(root: Path, db: Path, alignments: dict[str, str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "polymodal", "index", str(root), "--db", str(db)]
    cmd += ["--batch-size", str(BATCH), "-q"]
    for space, folder in alignments.items():
        cmd += ["--alignment", f"{space}={folder}"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _check_no_duplicates(db: Path) -> dict[str, int]:
    store = SearchStore.open(db)
    counts = {}
    for space in ("image-text", "audio-text"):
        table = store.table(space)
        if table is None:
            counts[space] = 0
            continue
        data = table.search().select(["id", "path"]).limit(None).to_arrow()
        ids, paths = data.column("id").to_pylist(), data.column("path").to_pylist()
        assert len(ids) == len(set(ids)), f"duplicate ids in {space}"
        assert len(paths) == len(set(paths)), f"duplicate paths in {space}"
        assert all(item_id(p) == i for i, p in zip(ids, paths, strict=True))
        counts[space] = len(ids)
    return counts


@pytest.mark.slow
def test_kill_at_three_random_points_then_resume(
    tmp_path: Path, tiny_alignments: dict[str, str]
) -> None:
    seed = int(os.environ.get("POLYMODAL_KILL_SEED", time.time_ns() % 10_000))
    rng = np.random.default_rng(seed)
    root, db = tmp_path / "media", tmp_path / "db"
    for i in range(N_PHOTOS):
        write_png(root / f"f{i % 4}" / f"p{i:02d}.png", seed=i)
    for i in range(3):
        write_wav(root / "sounds" / f"s{i}.wav", 200.0 * (i + 1))
    (root / "a.txt").write_text("a note about hats", encoding="utf-8")
    expected = {"image-text": N_PHOTOS + 1, "audio-text": 3 + 1}
    # Commits to wait for before each kill (the table's creation is commit 1), increasing.
    targets = np.sort(rng.choice(np.arange(2, N_PHOTOS // BATCH), size=3, replace=False))
    killed_mid_run = 0
    for target in targets:
        proc = _index(root, db, tiny_alignments)
        deadline = time.monotonic() + 120
        while proc.poll() is None and _commits(db) < target and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0, 0.2)))  # land anywhere inside the next batch
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed_mid_run += 1
        proc.communicate(timeout=60)
        counts = _check_no_duplicates(db)
        assert counts["image-text"] <= expected["image-text"]
    assert killed_mid_run == 3, f"indexing ended before a kill (seed {seed})"

    proc = _index(root, db, tiny_alignments)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert _check_no_duplicates(db) == expected, f"seed {seed}"
    assert "0 skipped" in out
    store = SearchStore.open(db)
    assert set(store.state("image-text")) == {
        item_id(p.relative_to(root).as_posix())
        for p in root.rglob("*")
        if p.suffix in (".png", ".txt")
    }

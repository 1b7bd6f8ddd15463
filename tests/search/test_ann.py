"""The derived FAISS HNSW index: recall vs exact search, persistence, staleness, kill safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from polymodal.errors import ConfigError
from polymodal.search import ann
from polymodal.search.ann import MANIFEST, DerivedIndex

DIM = 32
MODALITIES = ("image", "text")  # by the id's parity in the table tests


@pytest.fixture(autouse=True)
def _fresh_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    # These tests change a table and query at once: ask for its version every time.
    monkeypatch.setattr(ann, "VERSION_TTL_S", 0.0)


def clustered(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    """Unit vectors around 50 fixed centres (a shared seed for centres, ``seed`` for the points)."""
    centres = np.random.default_rng(1234).standard_normal((50, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, 50, n)] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def ids_of(n: int, start: int = 0) -> list[str]:
    return [f"{i:016x}" for i in range(start, start + n)]


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ vectors.T), axis=1)[:, :k]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    pairs = zip(found, truth, strict=True)
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in pairs]))


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return clustered(3000, seed=0), clustered(200, seed=1)


def test_recall_at_10_against_exact_search(data: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, queries = data
    ids = np.array(ids_of(len(vectors)))
    index = DerivedIndex.build(vectors, ids)
    scores, found = index.search(queries, 10)
    truth = ids[exact_top(vectors, queries, 10)]
    assert recall(found, truth) >= 0.97
    # Scores are the true inner products of the ids returned, best first.
    lookup = {i: v for i, v in zip(ids.tolist(), vectors, strict=True)}
    pairs = zip(found, queries, strict=True)
    expected = np.array([[lookup[i] @ q for i in row] for row, q in pairs])
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_removed_and_replaced_rows_are_never_returned(data: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, queries = data
    ids = ids_of(len(vectors))
    index = DerivedIndex.build(vectors, ids)
    _, before = index.search(queries[:20], 5)
    gone = sorted({i for row in before for i in row})
    assert index.remove(gone) == len(gone)
    _, after = index.search(queries[:20], 5)
    assert not set(after.ravel()) & set(gone)
    assert len(index) == len(vectors) - len(gone)
    # Re-adding an id with a new vector: the new one is found, only once.
    index.add(queries[:1], [ids[0]])
    scores, top = index.search(queries[:1], 3)
    assert top[0, 0] == ids[0] and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert list(top[0]).count(ids[0]) == 1


def test_fewer_alive_rows_than_k_leave_empty_slots() -> None:
    index = DerivedIndex.build(clustered(5, 3), ids_of(5))
    index.remove(ids_of(3))
    scores, found = index.search(clustered(1, 4), 5)
    assert sorted(found[0][:2]) == ids_of(2, start=3) and list(found[0][2:]) == ["", "", ""]
    assert np.all(scores[0][2:] < -1e30)  # FAISS fills empty slots with -FLT_MAX


def test_save_and_load_give_the_same_answers(
    data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    vectors, queries = data
    index = DerivedIndex.build(vectors, ids_of(len(vectors)), keys=["k"] * len(vectors), version=7)
    index.remove(ids_of(10))
    index.save(tmp_path / "ann")
    loaded = DerivedIndex.load(tmp_path / "ann")
    assert (loaded.version, len(loaded), loaded.dim) == (7, len(vectors) - 10, DIM)
    for a, b in zip(index.search(queries, 10), loaded.search(queries, 10), strict=True):
        np.testing.assert_array_equal(a, b)
    # A second save replaces the first save's files instead of piling them up.
    loaded.save(tmp_path / "ann")
    names = sorted(p.name for p in (tmp_path / "ann").iterdir())
    assert len(names) == 6 and MANIFEST in names
    assert all(n == MANIFEST or n.startswith(f"hnsw-{loaded.token}.") for n in names)


def test_a_damaged_or_newer_index_is_a_config_error(tmp_path: Path) -> None:
    folder = tmp_path / "ann"
    with pytest.raises(ConfigError, match="no ANN index"):
        DerivedIndex.load(folder)
    DerivedIndex.build(clustered(50, 0), ids_of(50)).save(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(ConfigError, match="newer polymodal"):
        DerivedIndex.load(folder)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    next(folder.glob("*.faiss")).write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="damaged"):
        DerivedIndex.load(folder)


# ---------------------------------------------------------------------- over a LanceDB table
def _rows(vectors: np.ndarray, ids: list[str], keys: list[str]) -> pa.Table:
    flat = pa.array(vectors.reshape(-1).astype(np.float32))
    return pa.table(
        {
            "id": ids,
            "sha256": keys,
            "modality": [MODALITIES[int(i, 16) % 2] for i in ids],
            "vector": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]),
        }
    )


@pytest.fixture
def table(tmp_path: Path, data: tuple[np.ndarray, np.ndarray]):
    import lancedb

    vectors, _ = data
    db = lancedb.connect(str(tmp_path / "lance"))
    return db.create_table("space", _rows(vectors, ids_of(len(vectors)), ["a"] * len(vectors)))


def _upsert(table, rows: pa.Table) -> None:
    table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(rows)


def test_no_index_below_the_threshold(table, tmp_path: Path) -> None:
    folder = tmp_path / "ann"
    assert ann.maybe_rebuild(table, folder, threshold=10_000) is False
    assert not folder.exists()
    assert ann.nearest(table, folder, clustered(1, 5)[0], 10) is None


def test_a_stale_index_answers_with_exact_search_over_newer_rows(
    table, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    vectors, queries = data
    folder = tmp_path / "ann"
    assert ann.maybe_rebuild(table, folder, threshold=1000) is True
    assert ann.maybe_rebuild(table, folder, threshold=1000) is False  # same table version
    built = DerivedIndex.load(folder)
    assert built.version == table.version and len(built) == len(vectors)

    q = queries[0]
    first = ann.nearest(table, folder, q, 10)
    assert first is not None and len(first) == 10
    # The table moves on: a new row equal to the query, a row changed to equal it, a row deleted.
    changed, deleted = first[1][0], first[0][0]
    _upsert(table, _rows(np.stack([q, q]), ["ffffffffffffffff", changed], ["new", "b"]))
    table.delete(f"id = '{deleted}'")
    hits = ann.nearest(table, folder, q, 10)
    assert hits is not None
    ids = [i for i, _ in hits]
    assert set(ids[:2]) == {"ffffffffffffffff", changed}
    assert hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert deleted not in ids and ids.count(changed) == 1
    assert len(hits) == 10

    # The next rebuild updates the saved index in place; answers stay the same.
    assert ann.maybe_rebuild(table, folder, threshold=1000) is True
    updated = DerivedIndex.load(folder)
    assert updated.version == table.version and len(updated) == len(vectors)
    again = ann.nearest(table, folder, q, 10)
    assert again is not None
    assert set(i for i, _ in again) == set(ids)  # the two top rows tie: order may differ
    np.testing.assert_allclose([s for _, s in again], [s for _, s in hits], atol=1e-5)


def test_too_many_changed_rows_fall_back_to_exact(
    table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "ann"
    ann.maybe_rebuild(table, folder, threshold=1000)
    monkeypatch.setattr(ann, "MAX_DELTA", 5)
    _upsert(table, _rows(clustered(6, 9), ids_of(6, start=10_000), ["n"] * 6))
    assert ann.nearest(table, folder, clustered(1, 5)[0], 10) is None


def test_a_group_keeps_to_its_rows_in_the_index_and_in_the_delta(
    table, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    vectors, queries = data
    folder = tmp_path / "ann"
    ann.maybe_rebuild(table, folder, threshold=1000)
    assert any("id" in list(ix.columns) for ix in table.list_indices())  # lookups by id
    ids = np.array(ids_of(len(vectors)))
    texts = np.array([int(i, 16) % 2 == 1 for i in ids])
    truth = ids[texts][exact_top(vectors[texts], queries[:50], 10)]
    found = [[i for i, _ in ann.nearest(table, folder, q, 10, group="text")] for q in queries[:50]]
    assert recall(np.array(found), truth) >= 0.95
    assert all(int(i, 16) % 2 == 1 for row in found for i in row)
    # A new image row equal to the query: found without a group or with "image", not "text".
    q = queries[0]
    _upsert(table, _rows(q[None], ["fffffffffffffffe"], ["new"]))  # even id: an image
    assert ann.nearest(table, folder, q, 3)[0][0] == "fffffffffffffffe"
    assert ann.nearest(table, folder, q, 3, group="image")[0][0] == "fffffffffffffffe"
    assert "fffffffffffffffe" not in [i for i, _ in ann.nearest(table, folder, q, 10, group="text")]


def test_the_table_version_is_asked_at_most_once_per_ttl(
    table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "ann"
    ann.maybe_rebuild(table, folder, threshold=1000)
    monkeypatch.setattr(ann, "VERSION_TTL_S", 3600.0)
    q = clustered(1, 5)[0]
    ann.nearest(table, folder, q, 10)
    _upsert(table, _rows(q[None], ["ffffffffffffffff"], ["new"]))
    stale = ann.nearest(table, folder, q, 10)
    assert stale is not None and "ffffffffffffffff" not in [i for i, _ in stale]
    monkeypatch.setattr(ann, "VERSION_TTL_S", 0.0)
    fresh = ann.nearest(table, folder, q, 10)
    assert fresh is not None and fresh[0][0] == "ffffffffffffffff"


def test_a_damaged_saved_index_is_rebuilt(table, tmp_path: Path) -> None:
    folder = tmp_path / "ann"
    ann.maybe_rebuild(table, folder, threshold=1000)
    (folder / MANIFEST).write_text("{not json")
    assert ann.nearest(table, folder, clustered(1, 5)[0], 10) is None
    assert ann.maybe_rebuild(table, folder, threshold=1000) is True
    assert ann.nearest(table, folder, clustered(1, 5)[0], 10) is not None


_SAVER = """
import sys, numpy as np
from polymodal.search.ann import DerivedIndex
rng = np.random.default_rng(0)
x = rng.standard_normal((20000, 32)).astype(np.float32)
index = DerivedIndex.build(x, [f"{i:016x}" for i in range(len(x))])
print("ready", flush=True)
version = 0
while True:
    version += 1
    index.version = version
    index.save(sys.argv[1])
"""


def test_a_kill_during_save_leaves_a_whole_index(tmp_path: Path) -> None:
    folder = tmp_path / "ann"
    proc = subprocess.Popen(
        [sys.executable, "-c", _SAVER, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 30
        while not (folder / MANIFEST).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(float(np.random.default_rng().uniform(0.05, 0.5)))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    index = DerivedIndex.load(folder)
    assert len(index) == 20000 and index.version is not None and index.version >= 1
    # The next save clears whatever the killed one left half-written.
    index.save(folder)
    assert len(list(folder.iterdir())) == 6

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from polymodal.errors import ConfigError
from polymodal.modality import Modality
from polymodal.search.files import FileRecord
from polymodal.search.store import META_FILE, SearchStore, SpaceMeta, make_rows


def _rows(paths: list[str], value: float):
    records = [FileRecord(p, Modality.IMAGE, 10, 1_700_000_000_000_000_000) for p in paths]
    vectors = np.full((len(paths), 4), value, np.float32)
    return make_rows("image-text", 4, records, ["0" * 64] * len(paths), vectors)


def _store(tmp_path: Path) -> SearchStore:
    store = SearchStore.create(tmp_path / "db", tmp_path)
    store.set_space("image-text", SpaceMeta("default", "abc", 4))
    return store


def test_upsert_by_id_never_duplicates(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.upsert("image-text", _rows(["a.png", "b.png"], 0.5))
    store.upsert("image-text", _rows(["b.png", "c.png"], 0.25))
    state = store.state("image-text")
    assert sorted(p for p, *_ in state.values()) == ["a.png", "b.png", "c.png"]
    assert store.count("image-text") == 3
    again = SearchStore.open(tmp_path / "db")
    assert again.count("image-text") == 3
    assert again.spaces["image-text"] == SpaceMeta("default", "abc", 4)
    b = [r for r in again.rows("image-text", list(state), vectors=True) if r["path"] == "b.png"]
    assert b[0]["vector"] == pytest.approx([0.25] * 4)


def test_delete_and_a_new_space_identity_drops_old_vectors(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.upsert("image-text", _rows(["a.png", "b.png"], 0.5))
    ids = list(store.state("image-text"))
    assert store.delete("image-text", ids[:1]) == 1
    assert store.count("image-text") == 1
    store.set_space("image-text", SpaceMeta("default", "other", 4))
    assert store.count("image-text") == 0


def test_missing_store_and_non_store_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no search store"):
        SearchStore.open(tmp_path / "nothing")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.png").write_bytes(b"x")
    with pytest.raises(ConfigError, match="not a polymodal search store"):
        SearchStore.open(tmp_path / "photos")
    with pytest.raises(ConfigError, match="not empty"):
        SearchStore.create(tmp_path / "photos", tmp_path)


def test_newer_store_is_refused(tmp_path: Path) -> None:
    _store(tmp_path)
    meta_path = tmp_path / "db" / META_FILE
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = 99
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="newer polymodal"):
        SearchStore.open(tmp_path / "db")


@pytest.mark.parametrize(
    "content", ["{not json", '{"format": "something-else"}', '{"format": "polymodal-search"}']
)
def test_corrupt_description_is_a_clear_error(tmp_path: Path, content: str) -> None:
    _store(tmp_path)
    (tmp_path / "db" / META_FILE).write_text(content)
    with pytest.raises(ConfigError, match="damaged"):
        SearchStore.open(tmp_path / "db")

from __future__ import annotations

from pathlib import Path

from polymodal.modality import Modality
from polymodal.search.files import WalkCounts, item_id, modality_of, walk
from tests.search.conftest import make_collection


def test_walk_lists_searchable_files_and_counts_the_rest(tmp_path: Path) -> None:
    expected = make_collection(tmp_path)
    counts = WalkCounts()
    records = list(walk(tmp_path, counts))
    paths = [r.rel_path for r in records]
    assert paths == sorted(paths)
    assert len(records) == expected["good"] + expected["broken"]
    assert (counts.hidden, counts.links, counts.other) == (1, 1, 1)
    by_path = {r.rel_path: r for r in records}
    assert by_path["sounds/low.wav"].modality == Modality.AUDIO
    assert by_path["notes.txt"].modality == Modality.TEXT
    assert by_path["red/r0.png"].folder == "red"
    assert by_path["notes.txt"].folder == ""
    assert by_path["red/r0.png"].size == (tmp_path / "red" / "r0.png").stat().st_size


def test_hidden_folders_are_not_entered(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "a.png").write_bytes(b"x")
    (tmp_path / "b.png").write_bytes(b"x")
    counts = WalkCounts()
    assert [r.rel_path for r in walk(tmp_path, counts)] == ["b.png"]
    assert counts.hidden == 1


def test_ids_are_stable_and_distinct() -> None:
    assert item_id("a/b.png") == item_id("a/b.png")
    assert item_id("a/b.png") != item_id("a/c.png")
    assert len(item_id("x")) == 16


def test_modality_by_extension() -> None:
    assert modality_of("X.JPG") == Modality.IMAGE
    assert modality_of("clip.mp4") == Modality.VIDEO
    assert modality_of("song.flac") == Modality.AUDIO
    assert modality_of("notes.md") == Modality.TEXT
    assert modality_of("data.csv") is None


def test_a_name_that_is_not_utf8_is_reported_not_fatal(tmp_path: Path) -> None:
    import os

    (tmp_path / "ok.txt").write_text("fine")
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt"), "wb") as f:
        f.write(b"text")
    counts = WalkCounts()
    assert [r.rel_path for r in walk(tmp_path, counts)] == ["ok.txt"]
    assert counts.unreadable == [("caf\\xe9.txt", "name is not valid UTF-8: rename it to index it")]

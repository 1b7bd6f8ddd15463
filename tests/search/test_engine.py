"""SearchEngine over tiny random alignments: indexing, incremental updates, filters, bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from polymodal.errors import ConfigError, InputError
from polymodal.search import SearchEngine
from polymodal.search.files import item_id
from polymodal.search.store import REPORT_FILE
from tests.search.conftest import write_png


def _paths(engine: SearchEngine, space: str) -> list[str]:
    return sorted(p for p, *_ in engine.store.state(space).values())


def test_index_puts_each_file_in_its_spaces_and_reports_the_unreadable(
    engine: SearchEngine,
) -> None:
    images = ["blue/b0.png", "blue/b1.png", "blue/b2.png", "red/r0.png", "red/r1.png"]
    assert _paths(engine, "image-text") == sorted([*images, "red/r2.png", "notes.txt"])
    assert _paths(engine, "audio-text") == ["notes.txt", "sounds/high.wav", "sounds/low.wav"]
    assert len(engine) == 9
    report = json.loads((engine.store.folder / REPORT_FILE).read_text())
    assert report["added"] == 9
    assert [s["path"] for s in report["skipped"]] == ["red/broken.jpg"]
    assert "not an image" in report["skipped"][0]["reason"]
    assert (report["hidden"], report["links"], report["other"]) == (1, 1, 1)


def test_reindex_embeds_only_what_changed(engine: SearchEngine, collection: Path) -> None:
    again = engine.index(progress=False)
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 9)

    later = time.time() + 5
    os.utime(collection / "red" / "r0.png", (later, later))  # touched, same bytes
    write_png(collection / "red" / "r1.png", seed=99)  # new content
    (collection / "blue" / "b2.png").unlink()
    write_png(collection / "green" / "g0.png", seed=7)
    report = engine.index(progress=False)
    assert (report.added, report.updated, report.removed) == (1, 1, 1)
    assert report.unchanged == 7  # the touched file among them: same bytes, same vector
    state = engine.store.state("image-text")
    r0 = state[item_id("red/r0.png")]
    assert r0[2] == (collection / "red" / "r0.png").stat().st_mtime_ns
    assert item_id("blue/b2.png") not in state
    assert "green/g0.png" in _paths(engine, "image-text")
    assert len(engine) == 9


def test_a_file_that_breaks_leaves_the_index(engine: SearchEngine, collection: Path) -> None:
    (collection / "red" / "r2.png").write_bytes(b"now broken")
    report = engine.index(progress=False)
    assert "red/r2.png" in [s.path for s in report.skipped]
    assert "red/r2.png" not in _paths(engine, "image-text")
    assert report.removed == 1  # it was in the index and is no longer


def test_add_indexes_given_files_only(engine: SearchEngine, collection: Path) -> None:
    write_png(collection / "new" / "n0.png", seed=5)
    write_png(collection / "new" / "n1.png", seed=6)
    (collection / "red" / "r0.png").unlink()
    report = engine.add([collection / "new" / "n0.png", "red/r0.png"])
    assert (report.added, report.removed) == (1, 1)
    paths = _paths(engine, "image-text")
    assert "new/n0.png" in paths and "new/n1.png" not in paths and "red/r0.png" not in paths
    with pytest.raises(InputError, match="not inside"):
        engine.add([collection.parent / "elsewhere.png"])


def test_filters(shared_engine: SearchEngine) -> None:
    eng = shared_engine
    assert {h.modality for h in eng.search(text="a dress", k=50, modality="audio")} == {"audio"}
    both = eng.search(text="a dress", k=50, modality=["image", "text"])
    assert {h.modality for h in both} == {"image", "text"}
    red = eng.search(text="a dress", k=50, folder="red")
    assert sorted(h.path for h in red) == ["red/r0.png", "red/r1.png", "red/r2.png"]
    assert eng.search(text="a dress", k=50, folder="red/") == red
    now = datetime.now(UTC)
    assert len(eng.search(text="a dress", k=50, after=now - timedelta(days=1))) == 9
    assert eng.search(text="a dress", k=50, after=now + timedelta(days=1)) == []
    assert eng.search(text="a dress", k=50, before=now - timedelta(days=1)) == []
    assert len(eng.search(text="a dress", k=3)) == 3


def test_hits_carry_metadata_and_resolve_to_files(shared_engine: SearchEngine) -> None:
    hits = shared_engine.search(text="a dress", k=50)
    assert len({h.id for h in hits}) == len(hits) == 9
    for h in hits:
        assert -1.0001 <= h.score <= 1.0001
        path = shared_engine.path_of(h.id)
        assert path == shared_engine.root / h.path and path.stat().st_size == h.size
        assert shared_engine.item(h.id).path == h.path
    assert hits[0].to_dict()["mtime"].endswith("+00:00")


def test_photo_and_sound_queries_search_their_own_space(shared_engine: SearchEngine) -> None:
    root = shared_engine.root
    by_photo = shared_engine.search(image=root / "red" / "r1.png", k=50)
    assert {h.space for h in by_photo} == {"image-text"}
    assert by_photo[0].score == pytest.approx(1.0, abs=1e-5)
    by_bytes = shared_engine.search(image=(root / "red" / "r1.png").read_bytes(), k=50)
    assert [h.score for h in by_bytes] == pytest.approx([h.score for h in by_photo], abs=1e-6)
    by_sound = shared_engine.search(audio=root / "sounds" / "low.wav", k=50)
    assert {h.space for h in by_sound} == {"audio-text"}
    sounds = shared_engine.search(audio=root / "sounds" / "low.wav", k=50, modality="audio")
    assert sounds[0].path == "sounds/low.wav"
    spoken = shared_engine.search(audio=root / "sounds" / "low.wav", text="a hum", k=50)
    assert {h.space for h in spoken} == {"audio-text"} and len(spoken) == 3


def test_composed_query_moves_from_photo_to_text_with_the_weight(
    shared_engine: SearchEngine,
) -> None:
    from polymodal.search.query import compose

    eng = shared_engine
    photo = eng.root / "blue" / "b0.png"

    def ranked(hits):
        return [(h.path, round(h.score, 5)) for h in hits]

    only_text = eng.search(text="a red dress", k=50, modality="text")
    as_text = eng.search(image=photo, text="a red dress", weight=1.0, k=50, modality="text")
    assert ranked(as_text) == ranked(h for h in only_text if h.space == "image-text")
    only_photo = eng.search(image=photo, k=50)
    as_photo = eng.search(image=photo, text="a red dress", weight=0.0, k=50)
    assert ranked(as_photo) == ranked(only_photo)
    a, b = np.eye(4, dtype=np.float32)[:2]
    assert compose(a, b, 0.5) == pytest.approx(np.array([1, 1, 0, 0]) / np.sqrt(2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "empty query"),
        ({"text": "   "}, "empty query"),
        ({"text": "x", "k": 0}, "k must be"),
        ({"text": "x", "weight": 2.0}, "weight"),
        ({"text": "x", "modality": "pdf"}, "unknown modality"),
        ({"text": "x", "folder": "../etc"}, "bad folder"),
        ({"image": b""}, "empty"),
        ({"image": b"GIF89a not really"}, "not an image"),
        ({"image": "/no/such/file.png"}, "not found"),
        ({"audio": b"RIFF\x00\x00garbage"}, "not a sound"),
    ],
)
def test_bad_queries_raise_input_error(shared_engine: SearchEngine, kwargs, message) -> None:
    with pytest.raises(InputError, match=message):
        shared_engine.search(**kwargs)


def test_query_file_of_the_wrong_kind_names_the_file(shared_engine: SearchEngine) -> None:
    notes = shared_engine.root / "notes.txt"
    with pytest.raises(InputError, match="not an image") as err:
        shared_engine.search(image=notes)
    assert str(notes) in str(err.value)
    with pytest.raises(InputError, match="no item"):
        shared_engine.item("0123456789abcdef")
    with pytest.raises(InputError, match="no item"):
        shared_engine.path_of("../../etc/passwd")


def test_open_checks_the_store_and_root(
    engine: SearchEngine, tmp_path: Path, tiny_alignments: dict[str, str]
) -> None:
    with pytest.raises(ConfigError, match="no search store"):
        SearchEngine.open(tmp_path / "absent")
    with pytest.raises(ConfigError, match="indexes"):
        SearchEngine.open(engine.store.folder, root=tmp_path)
    reopened = SearchEngine.open(engine.store.folder)
    assert len(reopened) == 9 and reopened.root == engine.root
    assert reopened.search(text="a dress", k=2)  # the alignment folders were remembered


def test_large_spaces_answer_through_the_derived_ann_index(
    collection: Path, tmp_path: Path, tiny_alignments: dict[str, str]
) -> None:
    pytest.importorskip("faiss")
    exact = SearchEngine.open(
        tmp_path / "db", create=True, root=collection, alignments=tiny_alignments
    )
    exact.index(progress=False)

    def ranked(hits):  # ties (the tiny encoder sees all photos alike) in path order
        return sorted((-round(h.score, 4), h.path) for h in hits)

    want = ranked(exact.search(text="a dress", k=50))
    ann = SearchEngine.open(tmp_path / "db")
    ann.ann_threshold = 1  # every space counts as large
    ann.index(progress=False)
    assert (tmp_path / "db" / "ann" / "image-text").is_dir()
    assert ranked(ann.search(text="a dress", k=50)) == want
    red = ann.search(text="a dress", k=5, folder="red", modality="image")
    assert sorted(h.path for h in red) == ["red/r0.png", "red/r1.png", "red/r2.png"]
    write_png(collection / "red" / "r9.png", seed=42)  # newer than the index: still found
    ann.add(["red/r9.png"])
    assert "red/r9.png" in [h.path for h in ann.search(text="a dress", k=50, folder="red")]


def _video(path: Path, *, sound: bool) -> None:
    cmd = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=1:size=64x64:rate=4"]
    if sound:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-shortest"]
    subprocess.run([*cmd, "-pix_fmt", "yuv420p", str(path)], check=True, timeout=60)


def test_videos_go_to_both_spaces_and_silent_ones_only_to_frames(
    tmp_path: Path, tiny_alignments: dict[str, str]
) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (Debian package ffmpeg)")
    root = tmp_path / "media"
    root.mkdir()
    _video(root / "talk.mp4", sound=True)
    _video(root / "silent.mp4", sound=False)
    eng = SearchEngine.open(tmp_path / "db", create=True, root=root, alignments=tiny_alignments)
    report = eng.index(progress=False)
    assert report.skipped == [] and report.added == 2
    assert _paths(eng, "image-text") == ["silent.mp4", "talk.mp4"]
    assert _paths(eng, "audio-text") == ["talk.mp4"]
    hits = eng.search(text="a talk", k=10, modality="video")
    assert sorted(h.path for h in hits) == ["silent.mp4", "talk.mp4"]
    assert eng.index(progress=False).unchanged == 2  # the silent one is not retried as new


def test_text_column_holds_descriptions_and_text_file_content(
    collection: Path, tmp_path: Path, tiny_alignments: dict[str, str]
) -> None:
    def describe(path: Path, modality) -> str | None:
        if path.name == "r1.png":
            raise RuntimeError("a describer bug")  # must not stop indexing
        return f"caption of {path.name}" if str(modality) == "image" else None

    eng = SearchEngine.open(
        tmp_path / "db", create=True, root=collection, alignments=tiny_alignments
    )
    report = eng.index(progress=False, describe=describe)
    assert report.added == 9
    texts = {h.path: h.text for h in eng.search(text="a dress", k=50)}
    assert texts["red/r0.png"] == "caption of r0.png"
    assert texts["red/r1.png"] is None
    assert texts["notes.txt"] == "a red summer dress with flowers"
    assert texts["sounds/low.wav"] is None
    assert eng.item(item_id("red/r0.png")).text == "caption of r0.png"


def test_words_in_descriptions_are_found_by_full_text_search(
    collection: Path, tmp_path: Path, tiny_alignments: dict[str, str]
) -> None:
    def describe(path: Path, modality) -> str | None:
        return "a zebra crossing at night" if path.name == "r2.png" else f"a picture {path.stem}"

    eng = SearchEngine.open(
        tmp_path / "db", create=True, root=collection, alignments=tiny_alignments
    )
    eng.index(progress=False, describe=describe)
    # Random tiny alignments rank by chance; the word match must lift the described photo.
    for k in (1, 5):
        assert eng.search(text="zebras", k=k)[0].path == "red/r2.png"  # stemmed match
    assert eng.search(text="zebra", modality="audio", k=5)[0].modality == "audio"
    # A file added later is found by its words too (before any index rebuild catches up).
    (collection / "red" / "late.png").write_bytes((collection / "red" / "r0.png").read_bytes())
    eng.add([collection / "red" / "late.png"], describe=lambda p, m: "an okapi in the rain")
    assert eng.search(text="okapi", k=3)[0].path == "red/late.png"


def test_damaged_table_files_are_a_clear_error(engine: SearchEngine) -> None:
    for data in (engine.store.folder / "image_text.lance" / "data").iterdir():
        data.write_bytes(b"garbage")
    reopened = SearchEngine.open(engine.store.folder)
    with pytest.raises(ConfigError, match="damaged"):
        reopened.search(text="a dress")
    with pytest.raises(ConfigError, match="damaged"):
        reopened.index(progress=False)


def test_text_that_is_not_utf8_is_skipped_not_fatal(engine: SearchEngine, collection: Path) -> None:
    (collection / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    report = engine.index(progress=False)
    reasons = {s.path: s.reason for s in report.skipped}
    assert reasons["latin1.txt"] == "not UTF-8 text (byte 3)"
    assert "notes.txt" in _paths(engine, "image-text")  # the rest of the batch is indexed


def test_a_missing_query_file_is_named_even_in_an_empty_store(
    tmp_path: Path, tiny_alignments: dict[str, str]
) -> None:
    from tests.search.conftest import open_indexed

    (tmp_path / "empty").mkdir()
    engine = open_indexed(tmp_path / "empty", tmp_path / "db", tiny_alignments)
    with pytest.raises(InputError, match="query file not found") as err:
        engine.search(image=tmp_path / "nothere.png")
    assert "nothere.png" in str(err.value)

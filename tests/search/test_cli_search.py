"""`polymodal index` and `polymodal search` in-process (the kill test runs them as processes)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from polymodal.search.store import META_FILE


def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str):
    from polymodal.cli.app import main

    monkeypatch.setattr(sys, "argv", ["polymodal", *args])
    code = 0
    try:
        main()
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def indexed(
    collection: Path,
    tmp_path: Path,
    tiny_alignments: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    db = tmp_path / "db"
    spaces = [f"--alignment={k}={v}" for k, v in tiny_alignments.items()]
    code, out, err = cli(capsys, monkeypatch, "index", str(collection), "--db", str(db), *spaces)
    assert code == 0, err
    assert "9 added" in out and "1 skipped" in out
    assert "skipped red/broken.jpg: not an image" in out
    assert str(db / "last-index-report.json") in out
    return db


def test_index_then_search_text_and_json(
    indexed: Path, collection: Path, capsys, monkeypatch
) -> None:
    code, out, err = cli(capsys, monkeypatch, "search", "a red dress", "--db", str(indexed))
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 9
    assert "--weight" not in err
    args = ("search", "a red dress", "--db", str(indexed), "--weight", "0.3")
    code, _, err = cli(capsys, monkeypatch, *args)
    assert code == 0 and "--weight only mixes a photo or sound with words; ignored" in err
    assert lines[0].split()[0] == "1" and str(collection) in lines[0]
    code, out, _ = cli(
        capsys,
        monkeypatch,
        "search",
        "--text",
        "a red dress",
        "--db",
        str(indexed),
        "-k",
        "2",
        "--modality",
        "image",
        "--folder",
        "red",
        "--after",
        "2000-01-01",
        "--json",
    )
    hits = json.loads(out)
    assert len(hits) == 2
    assert all(h["modality"] == "image" and h["path"].startswith("red/") for h in hits)
    assert Path(hits[0]["file"]) == collection / hits[0]["path"]
    assert set(hits[0]) >= {"id", "score", "space", "size", "mtime"}


def test_search_by_photo_and_composed(indexed: Path, collection: Path, capsys, monkeypatch) -> None:
    photo = str(collection / "red" / "r1.png")
    code, out, err = cli(capsys, monkeypatch, "search", "--db", str(indexed), "--image", photo)
    assert code == 0, err
    assert " 1.000 " in out.splitlines()[0]
    code, out, err = cli(
        capsys, monkeypatch, "search", "--db", str(indexed), "--image", photo, "--text", "in blue"
    )
    assert code == 0, err
    assert len(out.strip().splitlines()) == 7  # the image-text space: six photos and the note


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "--db", "{db}"], "empty query"),
        (["search", "x", "--db", "{db}", "--image", "{root}/notes.txt"], "not an image"),
        (["search", "x", "--db", "{db}", "--after", "yesterday"], "not a date"),
        (["search", "x", "--text", "y", "--db", "{db}"], "not both"),
        (["search", "x", "--db", "{root}"], "not a polymodal search store"),
        (["index", "{root}/notes.txt", "--db", "{db}x"], "not a folder"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    indexed: Path, collection: Path, capsys, monkeypatch, args: list[str], message: str
) -> None:
    args = [a.format(db=indexed, root=collection) for a in args]
    code, _, err = cli(capsys, monkeypatch, *args)
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_newer_or_damaged_store_is_one_line(indexed: Path, capsys, monkeypatch) -> None:
    meta = json.loads((indexed / META_FILE).read_text())
    (indexed / META_FILE).write_text(json.dumps({**meta, "format_version": 7}))
    code, _, err = cli(capsys, monkeypatch, "search", "x", "--db", str(indexed))
    assert code == 2 and "newer polymodal" in err and err.count("\n") == 1
    (indexed / META_FILE).write_text("{")
    code, _, err = cli(capsys, monkeypatch, "search", "x", "--db", str(indexed))
    assert code == 2 and "damaged" in err and err.count("\n") == 1


@pytest.mark.slow
@pytest.mark.real_weights
def test_index_describe_hook_leaves_text_files_to_the_indexer(tmp_path: Path) -> None:
    from PIL import Image, ImageDraw

    from polymodal.cli.index import _describer
    from polymodal.modality import Modality

    note = tmp_path / "note.txt"
    note.write_text("a red summer dress", encoding="utf-8")
    sign = tmp_path / "sign.png"
    image = Image.new("RGB", (320, 120), "white")
    ImageDraw.Draw(image).text((20, 40), "EXIT", fill="black", font_size=48)
    image.save(sign)
    describe = _describer()
    assert describe(note, Modality.TEXT) is None  # the indexer stores the file's own content
    said = describe(sign, Modality.IMAGE)
    assert said is not None and "EXIT" in said.upper()


def test_index_where_every_file_fails_exits_1(
    tmp_path: Path,
    tiny_alignments: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "a.jpg").write_bytes(b"not a photo")
    spaces = [f"--alignment={k}={v}" for k, v in tiny_alignments.items()]
    args = ("index", str(tmp_path / "media"), "--db", str(tmp_path / "db"), *spaces)
    code, out, err = cli(capsys, monkeypatch, *args)
    assert code == 1
    assert "skipped a.jpg" in out and "none of the 1 files could be indexed" in err

"""``polymodal describe`` as a user runs it: a real process over a folder with bad files."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from tests.cli.test_cli import run


def test_describe_folder_reports_each_file_and_a_summary(tmp_path: Path, silent_wav: Path) -> None:
    Image.new("RGB", (40, 30), "white").save(tmp_path / "blank.png")
    (tmp_path / "bad.png").write_text("not an image", "utf-8")
    (tmp_path / "note.txt").write_text("hello there", "utf-8")
    (tmp_path / "quiet.wav").write_bytes(silent_wav.read_bytes())
    (tmp_path / "skip.xyz").write_text("ignored in folders", "utf-8")
    out = tmp_path / "out" / "all.jsonl"
    res = run("describe", str(tmp_path), "--captioner", "none", "--no-ocr", "-q", "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert "bad.png [image] error: not an image" in res.stdout
    assert "note.txt [text] ok\nhello there" in res.stdout
    assert "quiet.wav [audio] empty (silent audio)" in res.stdout
    assert "described 4 files: 1 ok, 2 empty, 1 error" in res.stderr
    records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    names = [Path(r["path"]).name for r in records]
    assert names == ["bad.png", "blank.png", "note.txt", "quiet.wav"]
    assert records[2]["text"] == "hello there"


def test_describe_json_and_all_errors_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    res = run("describe", str(bad), "--json", "--captioner", "none", "-q")
    assert res.returncode == 1
    record = json.loads(res.stdout)
    assert record["outcome"] == "error" and "corrupt" in record["problem"]


def test_describe_unknown_ocr_engine_is_one_clear_line(tmp_path: Path) -> None:
    res = run("describe", str(tmp_path), "--ocr", "abbyy")
    assert res.returncode == 2
    assert res.stderr.strip() == (
        "polymodal: error: unknown OCR engine 'abbyy': use one of rapidocr, tesseract"
    )


def test_describe_skips_hidden_folders_reports_dangling_links_and_checks_o_first(
    tmp_path: Path,
) -> None:
    (tmp_path / "in" / ".git").mkdir(parents=True)
    (tmp_path / "in" / ".git" / "notes.txt").write_text("tool state")
    (tmp_path / "in" / "a.txt").write_text("hello there")
    (tmp_path / "in" / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    res = run("describe", str(tmp_path / "in"), "-q", "--no-tags")
    assert ".git" not in res.stdout
    assert "gone.jpg [image] error: file not found" in res.stdout
    assert "described 2 files: 1 ok, 1 error" in res.stderr
    res = run("describe", str(tmp_path / "in" / "a.txt"), "-q", "-o", str(tmp_path))
    assert res.returncode == 2 and "is a folder" in res.stderr
    assert "== " not in res.stdout  # refused before describing

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from polymodal.atomic import atomic_folder, atomic_output, atomic_write_bytes


def test_replaces_whole_file_with_normal_permissions(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temp file left


def test_failure_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_folder_is_replaced_whole_with_normal_permissions(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_folder(target) as tmp:
        (tmp / "a.txt").write_text("a")
        (tmp / "b.txt").write_text("b")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt", "b.txt"]
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temp or old folder left


def test_failure_leaves_old_folder_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(target) as tmp:
        (tmp / "a.txt").write_text("new")
        raise RuntimeError("killed before the second file")
    assert [p.name for p in target.iterdir()] == ["a.txt"]
    assert (target / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_link_is_followed_and_a_file_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with atomic_folder(tmp_path / "link") as tmp:
        (tmp / "a.txt").write_text("a")
    assert (tmp_path / "link").is_symlink() and (real / "a.txt").read_text() == "a"
    (tmp_path / "file").write_text("x")
    with (
        pytest.raises(NotADirectoryError, match="file is a file"),
        atomic_folder(tmp_path / "file"),
    ):
        pass
    assert (tmp_path / "file").read_text() == "x"


def test_unwritable_outputs_are_named_not_tracebacks(tmp_path: Path) -> None:
    from polymodal.atomic import check_writable
    from polymodal.errors import ConfigError

    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match=r"cannot write .*afile/x\.csv"):  # noqa: SIM117
        with atomic_output(tmp_path / "afile" / "x.csv"):
            pass
    with pytest.raises(ConfigError, match="is a folder"), atomic_output(tmp_path):
        pass
    with pytest.raises(ConfigError, match="is a folder"):
        check_writable(tmp_path)
    with pytest.raises(ConfigError, match="not a writable folder"):
        check_writable(tmp_path / "afile" / "x.csv")
    assert check_writable(tmp_path / "new" / "x.csv") == tmp_path / "new" / "x.csv"
    (tmp_path / "in.csv").write_text("a\n1\n")
    with pytest.raises(ConfigError, match="it is the input"):
        check_writable(tmp_path / "." / "in.csv", inputs=(tmp_path / "in.csv",))

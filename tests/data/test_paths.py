from __future__ import annotations

import os
from pathlib import Path

import pytest

from polymodal.data.paths import check_file, resolve_path
from polymodal.errors import InputError


@pytest.fixture
def base(tmp_path: Path) -> Path:
    root = tmp_path / "table"
    (root / "images").mkdir(parents=True)
    (root / "images" / "a.jpg").write_bytes(b"x")
    (tmp_path / "secret.txt").write_text("outside")
    return root


def test_relative_path_resolved_against_base(base: Path) -> None:
    assert resolve_path("images/a.jpg", base) == (base / "images" / "a.jpg").resolve()
    assert resolve_path("./images/../images/a.jpg", base) == (base / "images" / "a.jpg").resolve()


def test_dotdot_escape_is_refused(base: Path) -> None:
    with pytest.raises(InputError, match="path escapes the base folder") as err:
        resolve_path("../../etc/passwd", base)
    assert err.value.path == "../../etc/passwd"
    assert "../../etc/passwd" in str(err.value)


def test_escape_is_refused_even_when_the_target_is_absent(base: Path) -> None:
    # Refusing first means a table cannot probe which outside files exist.
    with pytest.raises(InputError, match="escapes"):
        resolve_path("../no_such_file", base)


def test_absolute_path_outside_base_is_refused(base: Path) -> None:
    outside = str(base.parent / "secret.txt")
    with pytest.raises(InputError, match="escapes") as err:
        resolve_path(outside, base)
    assert outside in str(err.value)


def test_absolute_path_inside_base_is_fine(base: Path) -> None:
    inside = str(base / "images" / "a.jpg")
    assert resolve_path(inside, base) == Path(inside).resolve()


def test_symlink_pointing_outside_is_followed(base: Path) -> None:
    # whoever owns the folder placed the link (a data set on another disk, a Hugging Face
    # snapshot's files linking to blobs beside it); the table only names it
    (base / "images" / "link.txt").symlink_to(base.parent / "secret.txt")
    assert resolve_path("images/link.txt", base) == (base.parent / "secret.txt").resolve()
    (base / "elsewhere").symlink_to(base.parent)
    assert resolve_path("elsewhere/secret.txt", base) == (base.parent / "secret.txt").resolve()


def test_dotdot_through_a_symlink_is_refused(base: Path) -> None:
    # "link/../x" lexically stays in base but walks up from wherever the link leads
    (base.parent / "deep").mkdir()
    (base / "images" / "deeplink").symlink_to(base.parent / "deep")
    with pytest.raises(InputError, match="escapes") as err:
        resolve_path("images/deeplink/../secret.txt", base)
    assert "--base" in str(err.value)


def test_symlink_inside_base_is_fine(base: Path) -> None:
    (base / "alias.jpg").symlink_to(base / "images" / "a.jpg")
    assert resolve_path("alias.jpg", base) == (base / "images" / "a.jpg").resolve()


def test_allow_outside(base: Path) -> None:
    secret = (base.parent / "secret.txt").resolve()
    assert resolve_path("../secret.txt", base, allow_outside=True) == secret
    assert resolve_path(str(secret), base, allow_outside=True) == secret


def test_no_base_allows_absolute_and_cwd_relative(
    base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = (base.parent / "secret.txt").resolve()
    assert resolve_path(str(secret), None) == secret
    monkeypatch.chdir(base)
    assert resolve_path("images/a.jpg", None) == (base / "images" / "a.jpg").resolve()
    assert resolve_path("../secret.txt", None) == secret


def test_missing_file(base: Path) -> None:
    with pytest.raises(InputError, match="file not found") as err:
        resolve_path("images/b.jpg", base)
    assert "images/b.jpg" in str(err.value)


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_path(base: Path, value: str) -> None:
    with pytest.raises(InputError, match="empty path"):
        resolve_path(value, base)


def test_symlink_loop(base: Path) -> None:
    os.symlink(base / "loop", base / "loop")
    # Python 3.11-3.12 report the loop; 3.13 resolves it to a path that does not exist.
    with pytest.raises(InputError, match=r"loop|file not found"):
        resolve_path("loop", base)


def test_check_file(tmp_path: Path) -> None:
    good = tmp_path / "a.bin"
    good.write_bytes(b"1")
    assert check_file(good) == good
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(InputError, match="zero-byte file"):
        check_file(tmp_path / "empty")
    with pytest.raises(InputError, match="is a folder"):
        check_file(tmp_path)
    with pytest.raises(InputError, match="file not found"):
        check_file(tmp_path / "nope")


def test_a_shared_folder_memo_resolves_exactly_as_realpath(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    (root / "real" / "sub").mkdir(parents=True)
    (root / "real" / "a.png").write_bytes(b"a")
    (root / "real" / "sub" / "b.png").write_bytes(b"b")
    (root / "linkdir").symlink_to(root / "real" / "sub")  # a folder link
    (root / "real" / "c.png").symlink_to("sub/b.png")  # a file link, relative target
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"o")
    (root / "real" / "out.png").symlink_to(outside)
    names = [
        "real/a.png",
        "real/./a.png",
        "linkdir/b.png",
        "linkdir/../a.png",  # '..' after a folder link: the link's parent, not root
        "real/c.png",
        "real//sub/b.png",
        str(root / "real" / "a.png"),
    ]
    memo: dict[str, str] = {}
    for name in names:
        plain = resolve_path(name, root)
        assert resolve_path(name, root, folders=memo) == plain
        assert plain == Path(os.path.realpath(root / name))
    assert len(memo) < len(names)  # folders were reused
    assert resolve_path("real/out.png", root, folders=memo) == outside.resolve()  # link followed
    # Without a base, relative paths start at the working folder, memo or not.
    monkeypatch.chdir(root)
    assert resolve_path("linkdir/b.png", None, folders={}) == resolve_path("linkdir/b.png", None)


def test_a_base_folder_that_is_not_there_is_one_clear_error(tmp_path: Path) -> None:
    from polymodal.data.paths import base_folder
    from polymodal.errors import ConfigError

    assert base_folder(None) is None
    assert base_folder(tmp_path) == tmp_path.resolve()
    with pytest.raises(ConfigError, match=r"base folder .*nope does not exist"):
        base_folder(tmp_path / "nope")

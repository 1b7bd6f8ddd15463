"""Write files (and folders of files) so that a kill at any moment leaves the old or the new, never
half of one or a mix of both."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from polymodal.errors import ConfigError


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"cannot write {target}: it is a folder; give a file name")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:  # a parent that is a file, a read-only or missing place
        raise ConfigError(f"cannot write {target}: {err.strerror}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the mode a plain open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def check_writable(path: str | Path, *, inputs: tuple[str | Path, ...] = ()) -> Path:
    """Refuse, before any work, an output file that could not be written at the end, or that
    is one of the command's ``inputs`` (writing it would destroy what was read)."""
    target = Path(path)
    if any(Path(i).resolve() == target.resolve() for i in inputs):
        raise ConfigError(f"cannot write {target}: it is the input; write the output elsewhere")
    if target.is_dir():
        raise ConfigError(f"cannot write {target}: it is a folder; give a file name")
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent  # the first folder that exists is where one gets created
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write {target}: {parent} is not a writable folder")
    return target


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a fresh empty folder beside ``path``; on success put it in place of ``path`` whole.

    Its files are fsynced first, then :func:`replace_dir` swaps it in. On any exception the
    temporary folder is removed and ``path`` is untouched. A symlink at ``path`` is followed, so
    the link stays and the folder it names is replaced; a file at ``path`` is refused
    (NotADirectoryError) rather than replaced.
    """
    target = Path(path)
    if target.is_symlink():
        target = target.resolve()
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target} is a file, not a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        # mkdtemp creates 0700; give the folder the mode a plain mkdir() would have.
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        for root, _, files in os.walk(tmp):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    os.fsync(f.fileno())
            _fsync_dir(Path(root))
        replace_dir(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(new: Path, target: Path) -> None:
    """Put folder ``new`` at ``target``: an existing ``target`` is renamed aside, ``new`` renamed
    in, then the old one removed. A kill between the two renames leaves the old folder whole under
    its aside name (``.NAME.old-*``), never a mix of old and new files."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.time_ns()}")
        os.replace(target, old)
    os.replace(new, target)
    _fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

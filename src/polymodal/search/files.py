"""Walk a media folder: every file polymodal can search, by modality, with size and mtime.

Hidden files and folders (a leading dot) and symbolic links are skipped and counted: a link could
lead outside the collection, and hidden files are usually tool state (``.DS_Store``, ``.git``).
The walk is a generator over ``os.scandir``, so a folder of a million files is never listed twice.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from polymodal.modality import EXTENSIONS, Modality

SEARCHABLE = (Modality.IMAGE, Modality.AUDIO, Modality.VIDEO, Modality.TEXT)
_BY_EXT = {ext: m for m in SEARCHABLE for ext in EXTENSIONS[m]}


@dataclass(frozen=True)
class FileRecord:
    """One searchable file. ``rel_path`` uses forward slashes, relative to the collection root."""

    rel_path: str
    modality: Modality
    size: int
    mtime_ns: int

    @property
    def id(self) -> str:
        return item_id(self.rel_path)

    @property
    def folder(self) -> str:
        """The first part of the path ('' for files directly in the root)."""
        parts = PurePosixPath(self.rel_path).parts
        return parts[0] if len(parts) > 1 else ""


@dataclass
class WalkCounts:
    """What the walk passed over, so that nothing is dropped silently."""

    hidden: int = 0
    links: int = 0
    other: int = 0  # files of no searchable type
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (rel_path, reason)


def item_id(rel_path: str) -> str:
    """The stable id of a file in the index: its relative path, hashed."""
    return hashlib.sha256(rel_path.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def modality_of(name: str) -> Modality | None:
    """The searchable modality a file name's extension signals, or None."""
    return _BY_EXT.get(os.path.splitext(name)[1].lower())


def walk(root: Path, counts: WalkCounts | None = None) -> Iterator[FileRecord]:
    """Yield every searchable file under ``root`` in a stable (sorted) order."""
    counts = counts if counts is not None else WalkCounts()
    yield from _walk(root, "", counts)


def _walk(folder: Path, prefix: str, counts: WalkCounts) -> Iterator[FileRecord]:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as err:
        counts.unreadable.append((prefix.rstrip("/") or ".", f"cannot list folder: {err.strerror}"))
        return
    for entry in entries:
        rel = prefix + entry.name
        if entry.name.startswith("."):
            counts.hidden += 1
            continue
        if not _utf8(entry.name):
            # the store keeps paths as UTF-8 text; such a name cannot be stored or shown as is
            shown = os.fsencode(rel).decode("utf-8", "backslashreplace")
            counts.unreadable.append((shown, "name is not valid UTF-8: rename it to index it"))
            continue
        try:
            if entry.is_symlink():
                counts.links += 1
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(Path(entry.path), rel + "/", counts)
                continue
            modality = modality_of(entry.name)
            if modality is None or not entry.is_file(follow_symlinks=False):
                counts.other += 1
                continue
            st = entry.stat(follow_symlinks=False)
        except OSError as err:
            counts.unreadable.append((rel, f"cannot stat: {err.strerror}"))
            continue
        yield FileRecord(rel, modality, st.st_size, st.st_mtime_ns)


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes, kept by Python as lone surrogates
        return False
    return True

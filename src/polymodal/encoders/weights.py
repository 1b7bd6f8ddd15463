"""Where an encoder's weights come from, described once as a frozen dataclass."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

SourceKind = Literal["package", "hub", "folder", "random"]


@dataclass(frozen=True)
class WeightSource:
    """The origin of a set of weights, with what it takes to use them correctly."""

    kind: SourceKind
    location: str  # python package, hub id, or folder path
    licence: str = "unknown"
    checksum: str | None = None  # sha256 of the main weights file (prefix is enough to key caches)
    preprocessing: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def offline(self) -> bool:
        """True when loading needs no network."""
        return self.kind in ("package", "folder", "random")


def file_checksum(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fast_checksum(path: str | Path) -> str:
    """A cheap fingerprint of a large weights file: size plus sha256 of its head and tail.

    Full hashing of every weights file at start-up costs seconds; this identifies a file well
    enough to key an embedding cache.
    """
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(p, "rb") as f:
        h.update(f.read(1 << 20))
        if size > 2 << 20:
            f.seek(-(1 << 20), 2)
            h.update(f.read(1 << 20))
    return h.hexdigest()

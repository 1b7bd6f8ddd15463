"""Bring a store up to date with its folder: embed new and changed files, drop deleted ones.

Per space, the folder's files are compared with the rows already stored (path, size, mtime):
a file whose size and mtime match is left alone; any other is embedded again through the
embedding cache (unchanged content is a cache hit, so a touched file costs a hash, not a model
run). Each batch is upserted as one commit, so a kill loses at most the batch in flight and a
re-run picks up where it stopped. Only file metadata is held for the whole folder; vectors and
decoded media live one batch at a time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from polymodal.atomic import atomic_write_bytes
from polymodal.errors import InputError
from polymodal.modality import Modality
from polymodal.search.files import FileRecord, WalkCounts, walk
from polymodal.search.space import Space, read_text_file
from polymodal.search.store import REPORT_FILE, SearchStore, SpaceMeta, make_rows

DEFAULT_BATCH = 64
COMPACT_EVERY = 100  # batches between compactions of a growing table
TEXT_SNIPPET = 2000  # characters of a text file kept in the text column
Describe = Callable[[Path, Modality], "str | None"]


@dataclass(frozen=True, order=True)
class Skipped:
    """A file that could not be indexed, and why."""

    path: str
    reason: str


@dataclass
class IndexReport:
    """What one indexing run did. Counts are of files (a text file lives in two spaces)."""

    root: str = ""
    files: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    hidden: int = 0
    links: int = 0
    other: int = 0
    seconds: float = 0.0
    per_space: dict[str, int] = field(default_factory=dict)  # rows per space afterwards

    def summary(self) -> str:
        spaces = ", ".join(f"{k}: {v}" for k, v in sorted(self.per_space.items()))
        return (
            f"{self.files} files: {self.added} added, {self.updated} updated, "
            f"{self.removed} removed, {self.unchanged} unchanged, {len(self.skipped)} skipped "
            f"({self.seconds:.1f} s; rows per space: {spaces or 'none'}; passed over "
            f"{self.hidden} hidden, {self.links} links, {self.other} of other types)"
        )

    def to_dict(self) -> dict:
        return asdict(self)

    def write(self, folder: Path) -> Path:
        path = folder / REPORT_FILE
        atomic_write_bytes(path, (json.dumps(self.to_dict(), indent=2) + "\n").encode())
        return path


@dataclass
class _Tally:
    added: set[str] = field(default_factory=set)
    updated: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    skipped: dict[str, str] = field(default_factory=dict)  # id -> reason
    describe: Describe | None = None
    texts: dict[str, str | None] = field(default_factory=dict)  # a video lives in two spaces


def index_folder(
    store: SearchStore,
    spaces: Sequence[Space],
    *,
    batch_size: int = DEFAULT_BATCH,
    progress: bool = True,
    after_space: Callable[[Space], None] | None = None,
    describe: Describe | None = None,
) -> IndexReport:
    """Index every searchable file under ``store.root``, incrementally.

    ``describe(path, modality)`` may return a caption, transcript or OCR text for a file; it
    fills the ``text`` column (text files get their own first characters when it returns None).
    """
    t0 = time.perf_counter()
    counts = WalkCounts()
    records = list(walk(store.root, counts))
    report = _run(store, spaces, records, None, batch_size, progress, after_space, describe)
    for rel, reason in counts.unreadable:
        report.skipped.append(Skipped(rel, reason))
    report.hidden, report.links, report.other = counts.hidden, counts.links, counts.other
    report.seconds = time.perf_counter() - t0
    report.write(store.folder)
    return report


def index_paths(
    store: SearchStore,
    spaces: Sequence[Space],
    records: Sequence[FileRecord],
    gone: Iterable[str] = (),
    *,
    batch_size: int = DEFAULT_BATCH,
    progress: bool = False,
    after_space: Callable[[Space], None] | None = None,
    describe: Describe | None = None,
) -> IndexReport:
    """Index only ``records`` (and drop the ids in ``gone``); the rest of the store is untouched."""
    t0 = time.perf_counter()
    report = _run(
        store, spaces, list(records), set(gone), batch_size, progress, after_space, describe
    )
    report.seconds = time.perf_counter() - t0
    return report


def _run(
    store: SearchStore,
    spaces: Sequence[Space],
    records: list[FileRecord],
    gone: set[str] | None,
    batch_size: int,
    progress: bool,
    after_space: Callable[[Space], None] | None,
    describe: Describe | None,
) -> IndexReport:
    tally = _Tally(describe=describe)
    for space in spaces:
        store.set_space(space.name, SpaceMeta(space.source, space.space_id, space.dim))
        if _index_space(store, space, records, gone, tally, batch_size, progress):
            store.compact(space.name)
        if after_space is not None:
            after_space(space)
    report = IndexReport(root=str(store.root), files=len(records))
    report.added = len(tally.added)
    report.updated = len(tally.updated - tally.added)
    report.removed = len(tally.removed)
    ok = {r.id for r in records} - set(tally.skipped)
    report.unchanged = len(ok - tally.added - tally.updated)
    by_id = {r.id: r.rel_path for r in records}
    report.skipped = sorted(Skipped(by_id[i], reason) for i, reason in tally.skipped.items())
    report.per_space = {s.name: store.count(s.name) for s in spaces}
    return report


def _index_space(
    store: SearchStore,
    space: Space,
    records: list[FileRecord],
    gone: set[str] | None,
    tally: _Tally,
    batch_size: int,
    progress: bool,
) -> bool:
    """Index one space; True when anything was written."""
    state = store.state(space.name)
    wanted = [r for r in records if r.modality in space.modalities]
    if gone is None:  # a full scan: whatever the folder no longer has leaves the index
        wanted_ids = {r.id for r in wanted}
        gone_here = [i for i in state if i not in wanted_ids]
    else:
        gone_here = [i for i in gone if i in state]
    tally.removed.update(gone_here)
    store.delete(space.name, gone_here)
    todo = [r for r in wanted if _changed(r, state.get(r.id))]
    desc = f"index {space.name}"
    with tqdm(total=len(todo), desc=desc, unit="file", disable=not progress or not todo) as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            _index_batch(store, space, batch, state, tally)
            bar.update(len(batch))
            if (start // batch_size + 1) % COMPACT_EVERY == 0:
                store.compact(space.name)  # thousands of small fragments slow writes, grow memory
    return bool(todo or gone_here)


def _changed(record: FileRecord, old: tuple[str, int, int, str] | None) -> bool:
    return old is None or (old[0], old[1], old[2]) != (
        record.rel_path,
        record.size,
        record.mtime_ns,
    )


def _index_batch(
    store: SearchStore,
    space: Space,
    batch: list[FileRecord],
    state: dict[str, tuple[str, int, int, str]],
    tally: _Tally,
) -> None:
    from polymodal.cache.store import EmbeddingCache

    cache = space.cache if space.cache is not None else EmbeddingCache()
    by_modality: dict[Modality, list[FileRecord]] = {}
    for r in batch:
        by_modality.setdefault(r.modality, []).append(r)
    for modality, group in by_modality.items():
        paths = [store.root / r.rel_path for r in group]
        out = space.embed_files(paths, modality)
        quiet = modality == Modality.VIDEO and space.media == Modality.AUDIO
        stale = []
        for i, reason in out.failed:
            # A silent video has no place in the sound space; its frames are indexed elsewhere.
            if not quiet:
                tally.skipped.setdefault(group[i].id, reason)
            if group[i].id in state:  # it changed and no longer reads: its old vector must go
                stale.append(group[i].id)
        store.delete(space.name, stale)
        tally.removed.update(stale)  # it left the index: say so, not only that it was skipped
        kept, shas = [], []
        for i in out.ok:
            try:
                shas.append(cache.file_key(paths[i]))
            except OSError as err:
                tally.skipped.setdefault(group[i].id, f"cannot read: {err.strerror}")
                continue
            kept.append(i)
        if not kept:
            continue
        records = [group[i] for i in kept]
        index = {i: n for n, i in enumerate(out.ok)}
        vectors = out.vectors[[index[i] for i in kept]]
        for r in records:
            if r.id not in tally.texts:
                tally.texts[r.id] = _text_of(store.root / r.rel_path, r.modality, tally.describe)
        texts = [tally.texts[r.id] for r in records]
        rows = make_rows(space.name, space.dim, records, shas, vectors, texts)
        store.upsert(space.name, rows)
        for r, sha in zip(records, shas, strict=True):
            old = state.get(r.id)
            if old is None:
                tally.added.add(r.id)
            elif old[3] != sha:
                tally.updated.add(r.id)


def _text_of(path: Path, modality: Modality, describe: Describe | None) -> str | None:
    """The text column of a file: what ``describe`` says, else a text file's start."""
    if describe is not None:
        try:
            text = describe(path, modality)
        except Exception:  # a describer failing on one file must not stop indexing
            text = None
        if text:
            return text
    if modality == Modality.TEXT:
        try:
            return read_text_file(path)[:TEXT_SNIPPET]
        except InputError:
            return None
    return None

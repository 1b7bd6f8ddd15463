"""The public search API: open a store, index a folder into it, search it.

A text query searches every space; a photo query the image-text space; a sound query the
audio-text space; a photo (or sound) with a text is composed in its space. Results are ranked
within each group of one space and one modality by cosine similarity; when several groups
answer (photos and text files, or two spaces), each hit is placed by how far its similarity
stands above its own group's typical similarity to the query (a z-score against a fixed sample
of that group), because cosines of different kinds of item are not comparable: text files sit
much closer to a text query than any photo does. ``Hit.score`` is always the cosine.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from polymodal.errors import ConfigError, InputError
from polymodal.modality import Modality
from polymodal.search.files import FileRecord, item_id, modality_of
from polymodal.search.hybrid import reciprocal_rank_fusion
from polymodal.search.indexer import (
    DEFAULT_BATCH,
    Describe,
    IndexReport,
    index_folder,
    index_paths,
)
from polymodal.search.query import Query, make_query, query_vector
from polymodal.search.space import DEFAULT_SPACES, Space, load_space
from polymodal.search.store import SearchStore, sql_str

ANN_THRESHOLD = 50_000
T = TypeVar("T")
_SAMPLE = 1024  # vectors per group used to calibrate scores across groups
_SD_FLOOR = 0.02
_PRIOR = 20  # pseudo-items of the whole space's statistics added to each group's


@dataclass(frozen=True)
class Item:
    """One indexed file."""

    id: str
    path: str  # relative to the collection root, with forward slashes
    modality: str
    space: str
    size: int
    mtime: datetime
    text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["mtime"] = self.mtime.isoformat()
        return out


@dataclass(frozen=True, kw_only=True)
class Hit(Item):
    """A search result: the item and its cosine similarity to the query in ``space``."""

    score: float


def _guarded(method: Callable[..., T]) -> Callable[..., T]:
    """Run a public method with the store's damaged-files guard."""

    @functools.wraps(method)
    def wrapper(self: SearchEngine, *args: Any, **kwargs: Any) -> T:
        with self.store.guard():
            return method(self, *args, **kwargs)

    return wrapper


class SearchEngine:
    """A persistent cross-modal index of one folder (see the module docstring)."""

    def __init__(
        self,
        store: SearchStore,
        *,
        alignments: Mapping[str, str | Path] | None = None,
        cache: Any = None,
        ann_threshold: int = ANN_THRESHOLD,
        batch_size: int = DEFAULT_BATCH,
    ) -> None:
        self.store = store
        self._alignments = {k: str(v) for k, v in (alignments or {}).items()}
        unknown = set(self._alignments) - set(DEFAULT_SPACES) - set(store.spaces)
        if unknown:
            raise ConfigError(
                f"unknown space {sorted(unknown)[0]!r}: spaces are {', '.join(DEFAULT_SPACES)}"
            )
        self._cache = cache
        self.ann_threshold = ann_threshold
        self.batch_size = batch_size
        self._spaces: dict[str, Space] = {}
        self._lock = threading.RLock()  # lazy loading and the score caches
        self._index_lock = threading.Lock()  # one indexing run at a time; searches go on
        self._stats: dict[tuple[str, str, int], np.ndarray] = {}
        self._groups_cache: dict[tuple[str, str, int], list[str]] = {}

    # ------------------------------------------------------------------ open
    @classmethod
    def open(
        cls,
        db: str | Path,
        *,
        create: bool = False,
        root: str | Path | None = None,
        alignments: Mapping[str, str | Path] | None = None,
        cache: Any = None,
        batch_size: int = DEFAULT_BATCH,
    ) -> SearchEngine:
        """Open the store in ``db``; with ``create``, make it (indexing ``root``) if absent.

        ``alignments`` maps a space to a saved alignment folder; ``cache`` is the
        :class:`~polymodal.cache.store.EmbeddingCache` to embed through (default: the user's).
        """
        if SearchStore.exists(db):
            store = SearchStore.open(db)
            if root is not None and Path(root).expanduser().resolve() != store.root:
                raise ConfigError(
                    f"search store {store.folder} indexes {store.root}, not "
                    f"{Path(root).expanduser().resolve()}; use another --db for another folder"
                )
        elif create:
            if root is None:
                raise ConfigError(f"no search store at {db}: say which folder to index")
            folder = Path(root).expanduser().resolve()
            if not folder.is_dir():
                raise ConfigError(f"cannot index {folder}: not a folder")
            store = SearchStore.create(db, folder)
        else:
            store = SearchStore.open(db)  # raises the clear "no store" error
        return cls(store, alignments=alignments, cache=cache, batch_size=batch_size)

    @property
    def root(self) -> Path:
        return self.store.root

    # ------------------------------------------------------------------ spaces
    def space(self, name: str) -> Space:
        """The space ``name``, loaded on first use."""
        with self._lock:
            if name not in self._spaces:
                given = self._alignments.get(name)
                stored = self.store.spaces.get(name)
                source = given or (stored.alignment if stored else None)
                self._spaces[name] = load_space(name, source, cache=self._embedding_cache())
            return self._spaces[name]

    def _embedding_cache(self) -> Any:
        if self._cache is None:
            from polymodal.cache.store import EmbeddingCache

            self._cache = EmbeddingCache()
        return self._cache

    def _space_names(self) -> list[str]:
        names = list(DEFAULT_SPACES)
        names += [n for n in self.store.spaces if n not in names]
        return names

    # ------------------------------------------------------------------ indexing
    @_guarded
    def index(
        self,
        root: str | Path | None = None,
        *,
        progress: bool = True,
        describe: Describe | None = None,
    ) -> IndexReport:
        """Bring the store up to date with its folder (new, changed and deleted files).

        ``describe(path, modality)`` may give each new or changed file a caption, transcript or
        OCR text for the ``text`` column.
        """
        self._check_root(root)
        if not self.root.is_dir():
            raise ConfigError(f"the indexed folder {self.root} is gone (or not a folder)")
        spaces = [self.space(n) for n in self._space_names()]
        with self._index_lock:
            report = index_folder(
                self.store,
                spaces,
                batch_size=self.batch_size,
                progress=progress,
                after_space=self._after_space,
                describe=describe,
            )
            self._refresh_text_indexes(report)
        with self._lock:
            self._stats.clear()
        return report

    @_guarded
    def add(
        self,
        paths: Sequence[str | Path],
        *,
        progress: bool = False,
        describe: Describe | None = None,
    ) -> IndexReport:
        """Index (or re-index) the given files, which must lie inside the root folder."""
        records: list[FileRecord] = []
        gone: list[str] = []
        problems: list[tuple[str, str]] = []
        for p in paths:
            rel = self._relative(p)
            full = self.root / rel
            modality = modality_of(rel)
            if modality is None:
                problems.append((rel, "not a searchable file type"))
                continue
            try:
                st = full.lstat()
            except FileNotFoundError:
                gone.append(item_id(rel))
                continue
            except OSError as err:
                problems.append((rel, f"cannot stat: {err.strerror}"))
                continue
            if not full.is_file() or full.is_symlink():
                problems.append((rel, "not a regular file"))
                continue
            records.append(FileRecord(rel, modality, st.st_size, st.st_mtime_ns))
        spaces = [self.space(n) for n in self._space_names()]
        with self._index_lock:
            report = index_paths(
                self.store,
                spaces,
                records,
                gone,
                batch_size=self.batch_size,
                progress=progress,
                after_space=self._after_space,
                describe=describe,
            )
            self._refresh_text_indexes(report)
        with self._lock:
            self._stats.clear()
        from polymodal.search.indexer import Skipped

        report.skipped += [Skipped(p, r) for p, r in problems]
        return report

    def _refresh_text_indexes(self, report: IndexReport) -> None:
        if report.added + report.updated + report.removed == 0:
            return
        for name in self._space_names():
            self.store.refresh_text_index(name)

    def _relative(self, path: str | Path) -> str:
        p = Path(path).expanduser()
        full = p if p.is_absolute() else self.root / p
        # Resolve the folder part only: the file itself may be gone (then it leaves the index).
        parent = full.parent.resolve()
        if not parent.is_relative_to(self.root):
            raise InputError(f"not inside the indexed folder {self.root}", path=path)
        rel = (parent / full.name).relative_to(self.root).as_posix()
        if rel in ("", ".") or any(part.startswith(".") for part in rel.split("/")):
            raise InputError("hidden files and folders are not indexed", path=path)
        return rel

    def _check_root(self, root: str | Path | None) -> None:
        if root is not None and Path(root).expanduser().resolve() != self.root:
            raise ConfigError(
                f"search store {self.store.folder} indexes {self.root}, not {root}; "
                "use another --db for another folder"
            )

    def _after_space(self, space: Space) -> None:
        ann = _ann_module()
        table = self.store.table(space.name)
        if ann is None or table is None:
            return
        ann.maybe_rebuild(table, self._ann_folder(space.name), threshold=self.ann_threshold)

    def _ann_folder(self, space: str) -> Path:
        return self.store.folder / "ann" / space

    # ------------------------------------------------------------------ search
    @_guarded
    def search(
        self,
        *,
        text: str | None = None,
        image: str | Path | bytes | None = None,
        audio: str | Path | bytes | None = None,
        k: int = 10,
        weight: float | None = None,
        modality: str | Sequence[str] | None = None,
        folder: str | None = None,
        after: datetime | None = None,
        before: datetime | None = None,
    ) -> list[Hit]:
        """The ``k`` best items for a text, a photo, a sound, or a file and a text together."""
        query = make_query(text=text, image=image, audio=audio, weight=weight)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1000:
            raise InputError(f"k must be a whole number between 1 and 1000, got {k!r}")
        modalities = _modalities(modality)
        where = _where(folder, after, before)
        candidates: list[tuple[float, Hit]] = []
        groups = 0
        # A text query's vector ranking is fused with full-text matches of its words: look
        # deeper so a text match also has its vector rank to add. (With a photo or sound the
        # words only steer the vector: "this dress, but in blue" is not a caption to match.)
        hybrid = query.file is None
        depth = max(k, _HYBRID_DEPTH) if hybrid else k
        for name in self._query_spaces(query):
            space = self._checked_space(name)
            vector = query_vector(space, query)
            for group in self._groups(name, modalities):
                hits = self._nearest(name, group, vector, depth, where)
                if not hits:
                    continue
                groups += 1
                mu, sd = self._calibration(name, group, vector)
                candidates += [((h.score - mu) / sd, h) for h in hits]
        if groups <= 1:  # one kind of item: plain cosine order
            candidates = [(h.score, h) for _, h in candidates]
        best: dict[str, tuple[float, Hit]] = {}
        for key, hit in candidates:
            if hit.id not in best or key > best[hit.id][0]:
                best[hit.id] = (key, hit)
        ranked = [h for _, h in sorted(best.values(), key=lambda kh: (-kh[0], kh[1].path))]
        if hybrid:
            ranked = self._with_text_matches(ranked, query, depth, modalities, where)
        return ranked[:k]

    def _with_text_matches(
        self,
        ranked: list[Hit],
        query: Query,
        depth: int,
        modalities: set[str] | None,
        where: str,
    ) -> list[Hit]:
        """Hybrid search: merge the vector ranking with full-text matches of the query's words
        in the stored captions, transcripts and OCR text."""
        kinds = ", ".join(sql_str(m) for m in sorted(modalities or ()))
        allowed = f"modality IN ({kinds})" if modalities is not None else ""
        clause = " AND ".join(c for c in (allowed, where) if c)
        matched: list[Hit] = []
        for name in self._query_spaces(query):
            space = self._checked_space(name)
            vector = query_vector(space, query)
            for row in self.store.text_search(name, str(query.text), depth, clause or None):
                v = np.asarray(row["vector"], dtype=np.float32)
                matched.append(_hit(row, float(v @ vector), name))
        if not matched:
            return ranked
        matched.sort(key=lambda h: -h.score)
        return reciprocal_rank_fusion([ranked, matched])

    def _query_spaces(self, query: Query) -> list[str]:
        names = [n for n in self._space_names() if self.store.count(n) > 0]
        if query.file_modality is None:
            return names
        return [n for n in names if self.space(n).media == query.file_modality]

    def _checked_space(self, name: str) -> Space:
        space = self.space(name)
        stored = self.store.spaces.get(name)
        if stored is not None and stored.space_id != space.space_id:
            raise ConfigError(
                f"search store {self.store.folder}: space {name} was indexed with another "
                f"alignment ({stored.alignment}); run `polymodal index` again to re-embed it"
            )
        return space

    def _groups(self, space: str, modalities: set[str] | None) -> list[str]:
        """The modalities ``space`` holds rows of (and the filter allows)."""
        table = self.store.table(space)
        key = (space, "#groups", int(table.version))
        with self._lock:
            if key not in self._groups_cache:
                self._groups_cache[key] = [
                    str(m)
                    for m in (Modality.IMAGE, Modality.AUDIO, Modality.VIDEO, Modality.TEXT)
                    if m in self.space(space).modalities
                    and table.count_rows(f"modality = {sql_str(str(m))}") > 0
                ]
            present = self._groups_cache[key]
        return [m for m in present if modalities is None or m in modalities]

    def _nearest(self, space: str, group: str, vector: np.ndarray, k: int, where: str) -> list[Hit]:
        table = self.store.table(space)
        if table is None:
            return []
        clause = f"modality = {sql_str(group)}" + (f" AND {where}" if where else "")
        hits = self._nearest_ann(space, table, vector, k, group, where)
        if hits is not None:
            return hits
        rows = (
            table.search(vector.astype(np.float32), vector_column_name="vector")
            .metric("dot")
            .where(clause, prefilter=True)
            .select([*_HIT_COLUMNS, "_distance"])
            .limit(k)
            .to_list()
        )
        return [_hit(r, 1.0 - float(r["_distance"]), space) for r in rows]

    def _nearest_ann(
        self, space: str, table: Any, vector: np.ndarray, k: int, group: str, where: str
    ) -> list[Hit] | None:
        """The ANN index's answer; None when there is none (small or stale): search exactly.

        The index picks the group itself; other filters are applied to 20x the candidates, and
        when too few survive the search is exact.
        """
        ann = _ann_module()
        if ann is None or self.store.count(space) < self.ann_threshold:
            return None
        want = k * 20 if where else k
        found = ann.nearest(table, self._ann_folder(space), vector, want, group=group)
        if not found:
            return None
        scores = dict(found)
        ids = ", ".join(sql_str(i) for i in scores)
        rows = (
            table.search()
            .where(f"id IN ({ids})" + (f" AND {where}" if where else ""))
            .select(_HIT_COLUMNS)
            .limit(len(scores))
            .to_list()
        )
        if where and len(rows) < k and len(found) >= want:
            return None  # the filters kept too few: search exactly
        hits = [_hit(r, float(scores[r["id"]]), space) for r in rows]
        return sorted(hits, key=lambda h: -h.score)[:k]

    def _calibration(self, space: str, group: str, vector: np.ndarray) -> tuple[float, float]:
        """Mean and spread of the query's cosine to a fixed sample of the group.

        A small group's own estimate is shrunk towards the whole space's (``_PRIOR`` pseudo-
        items), so that three text files do not get a spread of nearly zero.
        """
        sample = self._sample(space, group, vector.shape[0])
        pooled = self._sample(space, None, vector.shape[0])
        if pooled.shape[0] < 2:
            return 0.0, 1.0
        sims_all = pooled @ vector
        mu0, var0 = float(sims_all.mean()), float(sims_all.var())
        n = sample.shape[0]
        sims = sample @ vector if n else np.zeros(0, np.float32)
        mu = (float(sims.sum()) + _PRIOR * mu0) / (n + _PRIOR)
        var = (float(((sims - mu) ** 2).sum()) + _PRIOR * (var0 + (mu0 - mu) ** 2)) / (n + _PRIOR)
        return mu, max(float(np.sqrt(var)), _SD_FLOOR)

    def _sample(self, space: str, group: str | None, dim: int) -> np.ndarray:
        """Up to ``_SAMPLE`` stored vectors of a group (or of the whole space), cached."""
        table = self.store.table(space)
        key = (space, group or "", int(table.version))
        with self._lock:
            if key not in self._stats:
                query = table.search()
                if group is not None:
                    query = query.where(f"modality = {sql_str(group)}")
                rows = query.select(["vector"]).limit(_SAMPLE).to_arrow()
                flat = rows.column("vector").combine_chunks().flatten().to_numpy()
                self._stats[key] = np.asarray(flat, dtype=np.float32).reshape(-1, dim)
            return self._stats[key]

    # ------------------------------------------------------------------ items
    @_guarded
    def item(self, item_id: str) -> Item:
        """The indexed file ``item_id``; InputError when there is none."""
        for name in self._space_names():
            rows = self.store.rows(name, [str(item_id)])
            if rows:
                return Item(**_item_fields(rows[0], rows[0]["space"]))
        raise InputError(f"no item {item_id!r} in this index")

    @_guarded
    def path_of(self, item_id: str) -> Path:
        """The absolute path of an item's file, checked to lie inside the root folder."""
        item = self.item(item_id)
        path = (self.root / item.path).resolve()
        if not path.is_relative_to(self.root):
            raise InputError(f"item {item_id} leads outside the indexed folder")
        if not path.is_file():
            raise InputError(f"item {item_id}: its file is gone ({item.path})")
        return path

    @_guarded
    def __len__(self) -> int:
        ids: set[str] = set()
        for name in self._space_names():
            table = self.store.table(name)
            if table is not None:
                data = table.search().select(["id"]).limit(None).to_arrow()
                ids.update(data.column("id").to_pylist())
        return len(ids)


_HIT_COLUMNS = ["id", "path", "modality", "space", "size", "mtime", "text"]
_HYBRID_DEPTH = 50  # candidates per ranking fused in hybrid search


def _item_fields(row: Mapping[str, Any], space: str) -> dict[str, Any]:
    return {
        "id": row["id"],
        "path": row["path"],
        "modality": row["modality"],
        "space": space,
        "size": int(row["size"]),
        "mtime": _utc(row["mtime"]),
        "text": row.get("text"),
    }


def _hit(row: Mapping[str, Any], score: float, space: str) -> Hit:
    return Hit(**_item_fields(row, space), score=score)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _modalities(modality: str | Sequence[str] | None) -> set[str] | None:
    if modality is None:
        return None
    values = [modality] if isinstance(modality, str) else list(modality)
    out = set()
    allowed = {str(m) for m in (Modality.IMAGE, Modality.AUDIO, Modality.VIDEO, Modality.TEXT)}
    for v in values:
        for part in str(v).split(","):
            part = part.strip().lower()
            if part not in allowed:
                raise InputError(
                    f"unknown modality filter {part!r}: use {', '.join(sorted(allowed))}"
                )
            out.add(part)
    return out or None


def _where(folder: str | None, after: datetime | None, before: datetime | None) -> str:
    parts = []
    if folder is not None:
        clean = folder.strip().strip("/")
        if not clean or ".." in clean.split("/"):
            raise InputError(f"bad folder filter {folder!r}")
        parts.append(f"starts_with(path, {sql_str(clean + '/')})")
    if after is not None:
        parts.append(f"mtime_ns >= {_ns(after)}")
    if before is not None:
        parts.append(f"mtime_ns < {_ns(before)}")
    if after is not None and before is not None and after >= before:
        raise InputError(f"after ({after.isoformat()}) is not before before ({before.isoformat()})")
    return " AND ".join(parts)


def _ns(when: datetime) -> int:
    """Nanoseconds since the epoch; a naive datetime is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return math.floor(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


def _ann_module() -> Any:
    try:
        from polymodal.search import ann
    except ImportError:
        return None
    if not hasattr(ann, "nearest") or not hasattr(ann, "maybe_rebuild"):
        return None
    return ann

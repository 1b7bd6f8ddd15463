"""A derived approximate-nearest-neighbour index (FAISS HNSW) over one space's LanceDB vectors.

LanceDB stays the source of truth: this index is rebuilt (or updated) from a table and records the
table version it mirrors. It is saved as data files named by a fresh token, then a small
``manifest.json`` naming them is renamed into place — the rename is the commit, so a kill at any
moment leaves the old index or the new one, never a mix. When the table moved on since the index was
saved, queries run HNSW on the unchanged rows and exact search on the rows added or changed since
(the "delta"); a delta too large to scan quickly makes :func:`nearest` return None so the caller
searches exactly until the next :func:`maybe_rebuild`.

Why FAISS HNSW: on 100k 384-d vectors here it answered ~8x faster per query than usearch (both
M=32, ef=64) and built ~20x faster; LanceDB's own IVF_HNSW_SQ index answered ~10x slower per query
(mostly per-query overhead; see BENCHMARKS.md, "Search at scale").
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from polymodal.atomic import atomic_output, atomic_write_bytes
from polymodal.errors import ConfigError

FORMAT = "polymodal-ann"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DEFAULT_THRESHOLD = 50_000
# Measured on 1M clustered 384-d vectors (benchmarks/search_scale.py, BENCHMARKS.md "Search at
# scale"): efConstruction 80 instead of FAISS's 40 lifts recall@10 at efSearch 64 from 0.76 to
# 0.93 for 1.5x the build time; efSearch 128 then gives 0.97 at ~0.5 ms a query.
DEFAULT_M = 32
DEFAULT_EF_CONSTRUCTION = 80
DEFAULT_EF_SEARCH = 128
# Rows added/changed since the saved index that queries still scan exactly (numpy, ~ms).
MAX_DELTA = 20_000
# Past this share of dead (deleted or replaced) rows, rebuild instead of updating in place.
MAX_DEAD_FRACTION = 0.2
# A LanceDB table reports its version in ~0.1 ms, as long as an HNSW query: ask at most this often.
# Within that window a query may miss rows just written (never return deleted ones: the engine
# reads each hit's row from the table).
VERSION_TTL_S = 1.0
_READ_BATCH = 8192
_TOKEN = re.compile(r"^[0-9]+-[0-9a-f]{8}$")


class DerivedIndex:
    """FAISS HNSW over vectors with string ids; positions of removed rows are masked out."""

    def __init__(
        self,
        index: Any,
        ids: np.ndarray,
        keys: np.ndarray,
        alive: np.ndarray,
        *,
        groups: np.ndarray | None = None,
        metric: str,
        version: int | None,
        ef_search: int,
    ) -> None:
        self.index = index
        self._dim = int(index.d)
        self.ids = ids
        self.keys = keys
        # A label per row (the item's modality) that a query may keep to: see search(group=).
        self.groups = groups if groups is not None else np.full(len(ids), "", dtype="<U1")
        self.alive = alive
        self.metric = metric
        self.version = version
        self.ef_search = ef_search
        self.token: str | None = None
        # Checked on every query: a flag, not a scan of a million booleans.
        self._all_alive = bool(alive.all())
        self._bitmaps: dict[str | None, np.ndarray] = {}
        self._ids_ext = np.append(ids, "")

    # ------------------------------------------------------------------ build / update
    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        ids: Sequence[str] | np.ndarray,
        *,
        metric: str = "ip",
        keys: Sequence[str] | np.ndarray | None = None,
        groups: Sequence[str] | np.ndarray | None = None,
        version: int | None = None,
        m: int = DEFAULT_M,
        ef_construction: int = DEFAULT_EF_CONSTRUCTION,
        ef_search: int = DEFAULT_EF_SEARCH,
    ) -> DerivedIndex:
        """Index ``vectors`` (n, d) named by ``ids``; ``keys`` tell changed rows from unchanged."""
        import faiss

        if metric not in ("ip", "l2"):
            raise ConfigError(f"ANN metric must be 'ip' or 'l2', got {metric!r}")
        vectors = _as_matrix(vectors)
        faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
        index = faiss.IndexHNSWFlat(vectors.shape[1], m, faiss_metric)
        index.hnsw.efConstruction = ef_construction
        out = cls(
            index,
            np.empty(0, dtype="<U1"),
            np.empty(0, dtype="<U1"),
            np.empty(0, dtype=bool),
            groups=np.empty(0, dtype="<U1"),
            metric=metric,
            version=version,
            ef_search=ef_search,
        )
        out.add(vectors, ids, keys, groups)
        return out

    def add(
        self,
        vectors: np.ndarray,
        ids: Sequence[str] | np.ndarray,
        keys: Sequence[str] | np.ndarray | None = None,
        groups: Sequence[str] | np.ndarray | None = None,
    ) -> None:
        """Append rows; an id already present is replaced (its old position is masked out)."""
        vectors = _as_matrix(vectors)
        ids = np.asarray(ids, dtype=str)
        keys = np.asarray(keys if keys is not None else [""] * len(ids), dtype=str)
        groups = np.asarray(groups if groups is not None else [""] * len(ids), dtype=str)
        if not len(ids) == len(keys) == len(groups) == len(vectors):
            raise ConfigError(
                f"ANN index: {len(vectors)} vectors but {len(ids)} ids, {len(keys)} keys "
                f"and {len(groups)} groups"
            )
        if len(vectors) == 0:
            return
        self.remove(ids)
        self.index.add(vectors)
        self.ids = np.concatenate([self.ids, ids])
        self._ids_ext = np.append(self.ids, "")
        self.keys = np.concatenate([self.keys, keys])
        self.groups = np.concatenate([self.groups, groups])
        self.alive = np.concatenate([self.alive, np.ones(len(ids), dtype=bool)])
        self._all_alive = bool(self.alive.all())
        self._bitmaps = {}

    def remove(self, ids: Sequence[str] | np.ndarray) -> int:
        """Mask out the rows with these ids; return how many were alive."""
        if len(ids) == 0 or len(self.ids) == 0:
            return 0
        hit = np.isin(self.ids, np.asarray(ids, dtype=str)) & self.alive
        self.alive[hit] = False
        self._all_alive = bool(self.alive.all())
        self._bitmaps = {}
        return int(hit.sum())

    def _bitmap(self, group: str | None) -> np.ndarray:
        # Packed once per group and change of the mask, not per query.
        bitmap = self._bitmaps.get(group)
        if bitmap is None:
            keep = self.alive if group is None else self.alive & (self.groups == group)
            bitmap = np.packbits(keep, bitorder="little")
            self._bitmaps[group] = bitmap
        return bitmap

    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        return int(self.alive.sum())

    @property
    def dead_fraction(self) -> float:
        return 0.0 if len(self.alive) == 0 else 1.0 - len(self) / len(self.alive)

    def live(self) -> dict[str, str]:
        """id -> key of every alive row."""
        return dict(zip(self.ids[self.alive].tolist(), self.keys[self.alive].tolist(), strict=True))

    # ------------------------------------------------------------------ search
    def search(
        self, queries: np.ndarray, k: int, *, group: str | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest alive rows of each query (only rows of ``group`` if given):
        (scores, ids), best first.

        Scores are inner products ("ip") or squared distances ("l2"); missing slots (fewer alive
        rows than ``k``) have id "" and FAISS's extreme score (-FLT_MAX for "ip").
        """
        import faiss

        queries = _as_matrix(queries)
        if queries.shape[1] != self.dim:
            raise ConfigError(
                f"ANN index holds {self.dim}-d vectors, the query is {queries.shape[1]}-d"
            )
        k = max(1, min(int(k), len(self.alive)))
        ef = max(self.ef_search, k)
        if self._all_alive and group is None and ef == self.ef_search:
            # The common case, kept lean (it runs per query): the beam width lives on the index.
            if self.index.hnsw.efSearch != ef:
                self.index.hnsw.efSearch = ef
            scores, pos = self.index.search(queries, k)
        else:
            params = faiss.SearchParametersHNSW()
            params.efSearch = ef
            if not self._all_alive or group is not None:
                bitmap = self._bitmap(group)
                selector = faiss.IDSelectorBitmap(len(self.alive), faiss.swig_ptr(bitmap))
                params.sel = selector  # `bitmap` and `selector` stay referenced through the call
            scores, pos = self.index.search(queries, k, params=params)
        # Position -1 (fewer than k alive rows) picks the trailing "" of the extended list.
        ids = self._ids_ext[pos]
        return scores, ids

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | Path) -> None:
        """Write the index into ``folder``: data files first, the manifest last (the commit)."""
        import faiss

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        token = f"{self.version or 0}-{uuid.uuid4().hex[:8]}"
        with atomic_output(folder / f"hnsw-{token}.faiss") as tmp:
            faiss.write_index(self.index, str(tmp))
        arrays = {"ids": self.ids, "keys": self.keys, "groups": self.groups, "alive": self.alive}
        for name, array in arrays.items():
            with atomic_output(folder / f"hnsw-{token}.{name}.npy") as tmp, open(tmp, "wb") as f:
                np.save(f, array, allow_pickle=False)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "token": token,
            "table_version": self.version,
            "metric": self.metric,
            "dim": self.dim,
            "rows": len(self),
            "ef_search": self.ef_search,
        }
        atomic_write_bytes(folder / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
        self.token = token
        _remove_other_files(folder, token)

    @classmethod
    def load(cls, folder: str | Path) -> DerivedIndex:
        """Read the index the manifest in ``folder`` names; ConfigError when absent or damaged."""
        import faiss

        folder = Path(folder)
        try:
            manifest = json.loads((folder / MANIFEST).read_text("utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"no ANN index in {folder}") from None
        except (OSError, ValueError) as err:
            raise ConfigError(f"ANN index {folder} is damaged: {err}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ConfigError(f"ANN index {folder} is damaged: {MANIFEST} is not {FORMAT}")
        if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
            raise ConfigError(f"ANN index {folder} was made by a newer polymodal; rebuild it")
        token = str(manifest.get("token", ""))
        if not _TOKEN.match(token):
            raise ConfigError(f"ANN index {folder} is damaged: bad token {token!r}")
        try:
            index = faiss.read_index(str(folder / f"hnsw-{token}.faiss"))
            arrays = [
                np.load(folder / f"hnsw-{token}.{name}.npy", allow_pickle=False)
                for name in ("ids", "keys", "groups", "alive")
            ]
            metric = str(manifest["metric"])
            version = manifest.get("table_version")
            ef_search = int(manifest["ef_search"])
        except (OSError, RuntimeError, ValueError, KeyError) as err:
            raise ConfigError(f"ANN index {folder} is damaged: {err}") from None
        ids, keys, groups, alive = arrays
        if not index.ntotal == len(ids) == len(keys) == len(groups) == len(alive):
            raise ConfigError(f"ANN index {folder} is damaged: its files disagree on the row count")
        out = cls(
            index,
            ids,
            keys,
            alive.astype(bool),
            groups=groups,
            metric=metric,
            version=None if version is None else int(version),
            ef_search=ef_search,
        )
        out.token = token
        return out


# ---------------------------------------------------------------------- LanceDB side
@dataclass(frozen=True)
class Delta:
    """How a table differs from the index built from an older version of it."""

    stale: frozenset[str]  # ids in the index whose row changed or is gone
    fresh: Rows  # rows new or changed since, searched exactly


class Rows(NamedTuple):
    """Rows read from a table: ids, content keys, groups (modality) and vectors."""

    ids: np.ndarray
    keys: np.ndarray
    groups: np.ndarray
    vectors: np.ndarray


def maybe_rebuild(
    table: Any,
    folder: str | Path,
    *,
    threshold: int = DEFAULT_THRESHOLD,
    key_column: str = "sha256",
    group_column: str = "modality",
) -> bool:
    """Bring the index in ``folder`` up to date with ``table``; True when it wrote one.

    Below ``threshold`` rows no index is kept (exact search is fast enough). An index a few
    versions behind is updated in place (new rows added, gone ones masked); one with too many
    dead rows, a different dimension or damaged files is rebuilt from the whole table. Large
    tables also get a BTREE index on ``id``, which the engine's lookups of hit rows need (a
    200-id lookup in a 1M-row table: 350 ms without, 40 ms with, measured here).
    """
    folder = Path(folder)
    count = int(table.count_rows())
    if count < threshold:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
            _CACHE.forget(folder)
        return False
    _ensure_id_index(table)
    version = int(table.version)
    try:
        index = DerivedIndex.load(folder)
    except ConfigError:
        index = None
    if index is not None and index.version == version:
        return False
    cols = _columns(table, key_column, group_column)
    if index is not None and index.dim == _table_dim(table):
        live = index.live()
        current = _read_keys(table, cols.key)
        stale = {i for i, kv in live.items() if current.get(i) != kv}
        fresh = [i for i, kv in current.items() if live.get(i) != kv]
        dead_after = (len(index.alive) - len(live) + len(stale) + len(fresh)) / max(
            1, len(index.alive) + len(fresh)
        )
        if dead_after <= MAX_DEAD_FRACTION:
            index.remove(sorted(stale))
            for rows in _read_rows(table, cols, only=set(fresh)):
                index.add(rows.vectors, rows.ids, rows.keys, rows.groups)
            index.version = version
            index.save(folder)
            _CACHE.forget(folder)
            return True
    rows = _read_all(table, cols, count)
    index = DerivedIndex.build(
        rows.vectors, rows.ids, keys=rows.keys, groups=rows.groups, version=version
    )
    del rows
    index.save(folder)
    _CACHE.forget(folder)
    return True


def nearest(
    table: Any,
    folder: str | Path,
    query: np.ndarray,
    k: int,
    *,
    group: str | None = None,
    key_column: str = "sha256",
    group_column: str = "modality",
) -> list[tuple[str, float]] | None:
    """The ``k`` rows nearest ``query`` as (id, inner product), best first; with ``group``,
    only rows whose ``group_column`` (modality) equals it.

    None when there is no usable index in ``folder`` or the table changed too much since it was
    saved: the caller then searches the table exactly.
    """
    folder = folder if isinstance(folder, Path) else Path(folder)
    index = _CACHE.index(folder)
    if index is None or index.metric != "ip":
        return None
    query = _as_matrix(query)
    if query.shape[1] != index.dim:
        return None
    version = _CACHE.version(table)
    delta = None
    if index.version != version:
        cols = _columns(table, key_column, group_column)
        delta = _CACHE.delta(folder, index, table, version, cols)
        if delta is None:
            return None
    extra = 0 if delta is None else min(len(delta.stale), k)
    scores, ids = index.search(query, k + extra, group=group)
    found = [
        (i, s)
        for i, s in zip(ids[0].tolist(), scores[0].tolist(), strict=True)
        if i and (delta is None or i not in delta.stale)
    ]
    if delta is not None and len(delta.fresh.ids):
        fresh = delta.fresh
        sims = fresh.vectors @ query[0]
        if group is not None:
            sims = np.where(fresh.groups == group, sims, -np.inf)
        top = [j for j in np.argsort(-sims)[:k] if np.isfinite(sims[j])]
        found += [(str(fresh.ids[j]), float(sims[j])) for j in top]
    found.sort(key=lambda pair: -pair[1])
    return found[:k]


class _IndexCache:
    """Loaded indexes and computed deltas, shared by a process's threads (a server's workers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._indexes: dict[Path, tuple[float, DerivedIndex | None]] = {}
        self._deltas: dict[tuple[Path, str | None, int], Delta | None] = {}
        # id(table) -> (table, when asked, version); holding the table keeps its id unique.
        self._versions: dict[int, tuple[Any, float, int]] = {}

    def version(self, table: Any) -> int:
        now = time.monotonic()
        seen = self._versions.get(id(table))
        if seen is not None and now - seen[1] < VERSION_TTL_S:
            return seen[2]
        version = int(table.version)
        with self._lock:
            if len(self._versions) > 64:
                self._versions.clear()
            self._versions[id(table)] = (table, now, version)
        return version

    def index(self, folder: Path) -> DerivedIndex | None:
        try:  # os.path, not pathlib: this runs on every query
            stamp = os.stat(os.path.join(folder, MANIFEST)).st_mtime_ns
        except OSError:
            self.forget(folder)
            return None
        with self._lock:
            cached = self._indexes.get(folder)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            try:
                index: DerivedIndex | None = DerivedIndex.load(folder)
            except ConfigError:
                index = None  # damaged: exact search until the next rebuild
            self._indexes[folder] = (stamp, index)
            self._deltas = {key: d for key, d in self._deltas.items() if key[0] != folder}
            return index

    def delta(
        self, folder: Path, index: DerivedIndex, table: Any, version: int, cols: _Cols
    ) -> Delta | None:
        cache_key = (folder, index.token, version)
        with self._lock:
            if cache_key in self._deltas:
                return self._deltas[cache_key]
            delta = _delta(index, table, cols)
            self._deltas[cache_key] = delta
            return delta

    def forget(self, folder: Path) -> None:
        with self._lock:
            self._versions.clear()
            self._indexes.pop(folder, None)
            self._deltas = {key: d for key, d in self._deltas.items() if key[0] != folder}


_CACHE = _IndexCache()


class _Cols(NamedTuple):
    key: str | None
    group: str | None


def _columns(table: Any, key_column: str, group_column: str) -> _Cols:
    names = set(table.schema.names)
    return _Cols(
        key_column if key_column in names else None,
        group_column if group_column in names else None,
    )


def _ensure_id_index(table: Any) -> None:
    if "id" not in table.schema.names:
        return
    try:
        if any("id" in list(ix.columns) for ix in table.list_indices()):
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table.create_scalar_index("id", index_type="BTREE")
    except Exception:  # an optimisation: lookups still work (slower) without it
        pass


def _delta(index: DerivedIndex, table: Any, cols: _Cols) -> Delta | None:
    live = index.live()
    current = _read_keys(table, cols.key)
    stale = frozenset(i for i, kv in live.items() if current.get(i) != kv)
    fresh = {i for i, kv in current.items() if live.get(i) != kv}
    if len(fresh) > MAX_DELTA:
        return None
    return Delta(stale=stale, fresh=_concat(list(_read_rows(table, cols, only=fresh)), index.dim))


def _read_keys(table: Any, key: str | None) -> dict[str, str]:
    """id -> content key of every row, without reading vectors."""
    columns = ["id"] if key is None else ["id", key]
    data = table.search().select(columns).limit(None).to_arrow()
    ids = data.column("id").to_pylist()
    keys = data.column(key).to_pylist() if key is not None else [""] * len(ids)
    return dict(zip(ids, keys, strict=True))


def _read_rows(table: Any, cols: _Cols, *, only: set[str]) -> Iterator[Rows]:
    """The rows whose id is in ``only``, in batches."""
    chosen = sorted(only)
    names = ["id", *(c for c in cols if c is not None), "vector"]
    for start in range(0, len(chosen), 1000):
        chunk = chosen[start : start + 1000]
        where = "id IN (" + ", ".join("'" + i.replace("'", "''") + "'" for i in chunk) + ")"
        data = table.search().where(where).select(names).limit(len(chunk)).to_arrow()
        yield _unpack(data, cols)


def _read_all(table: Any, cols: _Cols, count: int) -> Rows:
    """Every row, streamed batch by batch into one preallocated matrix."""
    dim = _table_dim(table)
    vectors = np.empty((count, dim), dtype=np.float32)
    parts: list[Rows] = []
    filled = 0
    names = ["id", *(c for c in cols if c is not None), "vector"]
    for batch in table.search().select(names).limit(None).to_batches(_READ_BATCH):
        rows = _unpack(batch, cols)
        n = len(rows.ids)
        if filled + n > len(vectors):  # rows added while reading: grow rather than fail
            vectors = np.concatenate([vectors, np.empty((filled + n - len(vectors), dim), "f4")])
        vectors[filled : filled + n] = rows.vectors
        parts.append(rows._replace(vectors=np.empty((0, dim), np.float32)))
        filled += n
    return _concat(parts, dim)._replace(vectors=vectors[:filled])


def _concat(parts: list[Rows], dim: int) -> Rows:
    if not parts:
        empty = np.empty(0, dtype=str)
        return Rows(empty, empty, empty, np.empty((0, dim), np.float32))
    return Rows(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def _unpack(data: Any, cols: _Cols) -> Rows:
    ids = np.asarray(data.column("id").to_pylist(), dtype=str)

    def strings(name: str | None) -> np.ndarray:
        if name is None:
            return np.full(len(ids), "", dtype=str)
        return np.asarray([v or "" for v in data.column(name).to_pylist()], dtype=str)

    column = data.column("vector")
    if hasattr(column, "combine_chunks"):  # a Table's column; a RecordBatch's is one array
        column = column.combine_chunks()
    flat = column.flatten().to_numpy(zero_copy_only=False)
    vectors = np.asarray(flat, dtype=np.float32).reshape(-1, column.type.list_size)
    return Rows(ids, strings(cols.key), strings(cols.group), vectors)


def _table_dim(table: Any) -> int:
    return int(table.schema.field("vector").type.list_size)


def _as_matrix(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    if vectors.ndim != 2:
        raise ConfigError(f"ANN index takes a (n, d) matrix, got shape {vectors.shape}")
    return np.ascontiguousarray(vectors)


def _remove_other_files(folder: Path, token: str) -> None:
    # Files of earlier saves, and temporaries a killed save left behind.
    for path in folder.iterdir():
        name = path.name
        stale_data = name.startswith("hnsw-") and not name.startswith(f"hnsw-{token}.")
        stale_tmp = name.startswith((".hnsw-", f".{MANIFEST}.")) and name.endswith(".tmp")
        if stale_data or stale_tmp:
            path.unlink(missing_ok=True)

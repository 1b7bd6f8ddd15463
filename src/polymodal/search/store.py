"""The search store: a folder holding one LanceDB table per space and a small JSON description.

``polymodal-search.json`` names the format and its version, the collection root, and each space's
alignment and identity. Rows are keyed by ``id`` (the hashed relative path); every batch is written
with ``merge_insert("id")``, one LanceDB commit, so a kill leaves each batch wholly in or wholly
out, and a re-run never duplicates a row. LanceDB is the source of truth; derived indexes (ANN)
are rebuilt from it.
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from polymodal.atomic import atomic_write_bytes
from polymodal.errors import ConfigError

FORMAT = "polymodal-search"
FORMAT_VERSION = 1
META_FILE = "polymodal-search.json"
REPORT_FILE = "last-index-report.json"
_REFRESH = timedelta(seconds=1)
_ID = re.compile(r"^[0-9a-f]{16}$")
# Columns read to diff a folder against the store: never the vectors.
STATE_COLUMNS = ["id", "path", "size", "mtime_ns", "sha256"]
META_COLUMNS = ["id", "path", "modality", "folder", "size", "mtime", "sha256", "space", "text"]


@dataclass(frozen=True)
class SpaceMeta:
    """How a space's vectors were made: its alignment (``"default"`` or a folder) and identity."""

    alignment: str
    space_id: str
    dim: int

    def to_dict(self) -> dict[str, Any]:
        return {"alignment": self.alignment, "space_id": self.space_id, "dim": self.dim}


def schema(dim: int) -> pa.Schema:
    """The columns of a space's table."""
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("path", pa.string(), nullable=False),
            pa.field("modality", pa.string(), nullable=False),
            pa.field("folder", pa.string(), nullable=False),
            pa.field("size", pa.int64(), nullable=False),
            pa.field("mtime", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("mtime_ns", pa.int64(), nullable=False),
            pa.field("sha256", pa.string(), nullable=False),
            pa.field("space", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
            pa.field("text", pa.string(), nullable=True),
        ]
    )


def table_name(space: str) -> str:
    return space.replace("-", "_")


def sql_str(value: str) -> str:
    """A SQL string literal (quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


class SearchStore:
    """The store folder: its description and its per-space LanceDB tables."""

    def __init__(self, folder: Path, root: Path, spaces: Mapping[str, SpaceMeta]) -> None:
        self.folder = folder
        self.root = root
        self.spaces: dict[str, SpaceMeta] = dict(spaces)
        self._db: Any = None
        self._tables: dict[str, Any] = {}

    # ------------------------------------------------------------------ open / create
    @staticmethod
    def exists(folder: str | Path) -> bool:
        return (Path(folder).expanduser() / META_FILE).is_file()

    @classmethod
    def open(cls, folder: str | Path) -> SearchStore:
        """Open an existing store; ConfigError when it is missing, newer or damaged."""
        path = Path(folder).expanduser().resolve()
        meta_path = path / META_FILE
        if not meta_path.is_file():
            if path.is_dir() and any(path.iterdir()):
                raise ConfigError(
                    f"{path} is not a polymodal search store (it has no {META_FILE}); "
                    "pick an empty or new folder for --db"
                )
            raise ConfigError(
                f"no search store at {path}: create one with `polymodal index DIR --db {path}`"
            )
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
        except (OSError, ValueError) as err:
            raise ConfigError(
                f"search store {path} is damaged: {META_FILE} unreadable ({err})"
            ) from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ConfigError(f"search store {path} is damaged: {META_FILE} is not {FORMAT}")
        try:
            version = int(meta.get("format_version", 0))
        except (TypeError, ValueError):
            version = -1
        if version > FORMAT_VERSION:
            raise ConfigError(
                f"search store {path} was made by a newer polymodal (store format {version}, "
                f"this one reads up to {FORMAT_VERSION}); upgrade polymodal or index afresh"
            )
        try:
            root = Path(meta["root"])
            spaces = {
                name: SpaceMeta(str(s["alignment"]), str(s["space_id"]), int(s["dim"]))
                for name, s in dict(meta.get("spaces", {})).items()
            }
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"search store {path} is damaged: {META_FILE} lacks {err}") from None
        if version < 1:
            raise ConfigError(f"search store {path} is damaged: bad format_version")
        store = cls(path, root, spaces)
        store._connect()
        return store

    @classmethod
    def create(cls, folder: str | Path, root: str | Path) -> SearchStore:
        """Create an empty store indexing ``root``."""
        path = Path(folder).expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise ConfigError(f"--db {path} is a file, not a folder")
        if path.is_dir() and any(path.iterdir()):
            raise ConfigError(
                f"{path} is not empty and holds no search store; pick an empty or new folder"
            )
        path.mkdir(parents=True, exist_ok=True)
        store = cls(path, Path(root).expanduser().resolve(), {})
        store.write_meta()
        store._connect()
        return store

    def write_meta(self) -> None:
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "root": str(self.root),
            "spaces": {name: s.to_dict() for name, s in sorted(self.spaces.items())},
        }
        atomic_write_bytes(self.folder / META_FILE, (json.dumps(meta, indent=2) + "\n").encode())

    def _connect(self) -> None:
        import lancedb

        try:
            # Another process may be indexing: see its commits within _REFRESH.
            self._db = lancedb.connect(str(self.folder), read_consistency_interval=_REFRESH)
        except Exception as err:  # lancedb raises several unrelated types on a damaged folder
            raise ConfigError(f"search store {self.folder} is damaged: {err}") from None

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Turn LanceDB's errors on damaged table files into one clear ConfigError."""
        try:
            yield
        except (RuntimeError, OSError, ValueError) as err:
            if "lance" not in str(err).lower():
                raise
            first = str(err).strip().splitlines()[0][:300]
            raise ConfigError(
                f"search store {self.folder} is damaged ({first}); delete it and index again"
            ) from None

    # ------------------------------------------------------------------ tables
    def table(self, space: str, *, create: bool = False) -> Any:
        """The LanceDB table of ``space``; None when it has never been written (and not create)."""
        if space in self._tables:
            return self._tables[space]
        name = table_name(space)
        try:
            names = set(self._db.list_tables().tables)
        except AttributeError:  # older lancedb
            names = set(self._db.table_names())
        except Exception as err:
            raise ConfigError(f"search store {self.folder} is damaged: {err}") from None
        try:
            if name in names:
                table = self._db.open_table(name)
            elif create:
                table = self._db.create_table(name, schema=schema(self.spaces[space].dim))
            else:
                return None
        except Exception as err:
            raise ConfigError(
                f"search store {self.folder} is damaged: table {name!r}: {err}"
            ) from None
        self._tables[space] = table
        return table

    def set_space(self, name: str, meta: SpaceMeta) -> None:
        """Record (or replace) a space; a different identity drops the old vectors."""
        old = self.spaces.get(name)
        if old is not None and old != meta:
            self.drop(name)
        self.spaces[name] = meta
        self.write_meta()

    def drop(self, space: str) -> None:
        self._tables.pop(space, None)
        with contextlib.suppress(Exception):  # absent already
            self._db.drop_table(table_name(space))

    def count(self, space: str, where: str | None = None) -> int:
        table = self.table(space)
        if table is None:
            return 0
        return int(table.count_rows(where) if where else table.count_rows())

    def state(self, space: str) -> dict[str, tuple[str, int, int, str]]:
        """id -> (path, size, mtime_ns, sha256) of every row (no vectors read)."""
        table = self.table(space)
        if table is None:
            return {}
        data = table.search().select(STATE_COLUMNS).limit(None).to_arrow()
        cols = [data.column(c).to_pylist() for c in STATE_COLUMNS]
        return {i: (p, s, m, h) for i, p, s, m, h in zip(*cols, strict=True)}

    def upsert(self, space: str, rows: pa.Table) -> None:
        """Insert or replace rows by id, in one commit."""
        if rows.num_rows == 0:
            return
        table = self.table(space, create=True)
        (
            table.merge_insert("id")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute(rows)
        )

    def delete(self, space: str, ids: Iterable[str]) -> int:
        table = self.table(space)
        ids = [i for i in ids if _ID.match(i)]
        if table is None or not ids:
            return 0
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            table.delete(f"id IN ({', '.join(sql_str(i) for i in chunk)})")
        return len(ids)

    def rows(self, space: str, ids: Iterable[str], *, vectors: bool = False) -> list[dict]:
        """Metadata rows for ``ids`` that exist in ``space``."""
        table = self.table(space)
        ids = [i for i in ids if _ID.match(i)]
        if table is None or not ids:
            return []
        cols = [*META_COLUMNS, "vector"] if vectors else META_COLUMNS
        where = f"id IN ({', '.join(sql_str(i) for i in ids)})"
        return table.search().where(where).select(cols).limit(len(ids)).to_list()

    def refresh_text_index(self, space: str) -> None:
        """(Re)build the full-text index over the ``text`` column (captions, transcripts, OCR,
        text files). Rows written after it are still found, by a flat scan, until the next."""
        table = self.table(space)
        if table is None or table.count_rows("text IS NOT NULL") == 0:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # create_fts_index is marked deprecated in 0.25+
            table.create_fts_index("text", replace=True)

    def text_search(self, space: str, text: str, k: int, where: str | None) -> list[dict[str, Any]]:
        """Rows whose ``text`` matches ``text`` (BM25), best first, with their vectors."""
        table = self.table(space)
        if table is None or not self._has_text_index(table):
            return []
        query = table.search(text, query_type="fts")
        if where:
            query = query.where(where, prefilter=True)
        return query.select([*META_COLUMNS, "vector", "_score"]).limit(k).to_list()

    @staticmethod
    def _has_text_index(table: Any) -> bool:
        return any(list(ix.columns) == ["text"] for ix in table.list_indices())

    def compact(self, space: str) -> None:
        """Merge the small per-batch fragments and drop old versions (keeps search fast)."""
        table = self.table(space)
        if table is None:
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # Versions younger than an hour stay: a server may still be reading one.
                table.optimize(cleanup_older_than=timedelta(hours=1))
        except Exception:  # compaction is an optimisation; a failure must not fail indexing
            pass


def make_rows(
    space: str,
    dim: int,
    records: list[Any],
    shas: list[str],
    vectors: np.ndarray,
    texts: list[str | None] | None = None,
) -> pa.Table:
    """An Arrow batch of rows for ``records`` (FileRecord) with their vectors."""
    n = len(records)
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    return pa.table(
        {
            "id": [r.id for r in records],
            "path": [r.rel_path for r in records],
            "modality": [str(r.modality) for r in records],
            "folder": [r.folder for r in records],
            "size": pa.array([r.size for r in records], pa.int64()),
            "mtime": pa.array([r.mtime_ns // 1000 for r in records], pa.timestamp("us", tz="UTC")),
            "mtime_ns": pa.array([r.mtime_ns for r in records], pa.int64()),
            "sha256": shas,
            "space": [space] * n,
            "vector": pa.FixedSizeListArray.from_arrays(flat, dim),
            "text": pa.array(texts if texts is not None else [None] * n, pa.string()),
        },
        schema=schema(dim),
    )

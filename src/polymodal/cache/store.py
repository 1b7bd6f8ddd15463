"""A content-addressed embedding cache on disk that survives a kill at any moment.

Keys are ``(encoder cache_id, content hash)``: the same photo under two names is encoded once,
and a changed encoder or preprocessing version never serves stale vectors. The store is one
SQLite file in WAL mode: every batch is a transaction, so a killed process leaves all committed
batches readable and the interrupted one simply absent.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from polymodal.encoders.base import Embedding
from polymodal.errors import ConfigError, PolymodalError
from polymodal.home import polymodal_home

SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS embeddings (
    encoder TEXT NOT NULL, key TEXT NOT NULL,
    pooled BLOB NOT NULL, tokens BLOB, n_tokens INTEGER,
    PRIMARY KEY (encoder, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL
) WITHOUT ROWID;
"""


def text_key(text: str) -> str:
    """Content key of a text cell."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


class EmbeddingCache:
    """Embeddings by (encoder, content hash), plus a memo of file hashes by (path, size, mtime)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else polymodal_home() / "embeddings.sqlite3"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:  # the cache folder is a file, or cannot be made
            raise ConfigError(
                f"cannot use {self.path.parent} for the embedding cache: {err.strerror}"
            ) from None
        self._local = threading.local()
        self._check_version()

    def _conn(self) -> sqlite3.Connection:
        # One connection per thread: hashing runs in a thread pool.
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=60)
                conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode survives a process kill (not a power cut) and is much faster.
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_DDL)
            except sqlite3.DatabaseError as err:
                raise PolymodalError(
                    f"embedding cache {self.path} is unreadable ({err}); delete it to start afresh"
                ) from None
            self._local.conn = conn
        return conn

    def _check_version(self) -> None:
        conn = self._conn()
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            with conn:
                conn.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
        elif int(row[0]) > SCHEMA_VERSION:
            raise PolymodalError(
                f"embedding cache {self.path} was written by a newer polymodal "
                f"(schema {row[0]} > {SCHEMA_VERSION}); upgrade polymodal or use another cache"
            )

    # -- content keys -------------------------------------------------------------------------
    def file_key(self, path: Path) -> str:
        """sha256 of a file's bytes, memoised by (path, size, mtime) to skip rereading."""
        st = path.stat()
        conn = self._conn()
        row = conn.execute(
            "SELECT size, mtime_ns, sha256 FROM file_hashes WHERE path=?", (_path_key(path),)
        ).fetchone()
        if row is not None and row[0] == st.st_size and row[1] == st.st_mtime_ns:
            return str(row[2])
        digest = _hash_file(path)
        with conn:
            conn.execute(
                "INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?)",
                (_path_key(path), st.st_size, st.st_mtime_ns, digest),
            )
        return digest

    def known_file_keys(self, paths: Sequence[Path]) -> dict[Path, str]:
        """Memoised hashes of the files whose size and mtime have not changed (one query)."""
        out: dict[Path, str] = {}
        conn = self._conn()
        for chunk in _chunks(list(paths), 500):
            rows = conn.execute(
                f"SELECT path, size, mtime_ns, sha256 FROM file_hashes WHERE path IN "
                f"({','.join('?' * len(chunk))})",
                [_path_key(p) for p in chunk],
            ).fetchall()
            memo = {r[0]: r for r in rows}
            for p in chunk:
                r = memo.get(_path_key(p))
                if r is None:
                    continue
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                if r[1] == st.st_size and r[2] == st.st_mtime_ns:
                    out[p] = str(r[3])
        return out

    # -- embeddings ---------------------------------------------------------------------------
    def get_many(
        self, encoder: str, keys: Iterable[str], *, tokens: bool = False
    ) -> dict[str, Embedding]:
        """Cached embeddings for ``keys``; with ``tokens`` only entries that kept their tokens."""
        out: dict[str, Embedding] = {}
        conn = self._conn()
        cols = "key, pooled, tokens, n_tokens" if tokens else "key, pooled, NULL, NULL"
        for chunk in _chunks(list(dict.fromkeys(keys)), 500):
            rows = conn.execute(
                f"SELECT {cols} FROM embeddings WHERE encoder=? AND key IN "
                f"({','.join('?' * len(chunk))})",
                [encoder, *chunk],
            ).fetchall()
            for key, pooled, tok, n_tok in rows:
                if tokens and tok is None:
                    continue
                emb = Embedding(np.frombuffer(pooled, dtype=np.float32).copy())
                if tok is not None:
                    emb.tokens = np.frombuffer(tok, dtype=np.float16).reshape(n_tok, -1).copy()
                out[key] = emb
        return out

    def put_many(self, encoder: str, items: dict[str, Embedding]) -> None:
        """Store a batch of embeddings in one transaction."""
        rows = []
        for key, emb in items.items():
            pooled = np.ascontiguousarray(emb.pooled, dtype=np.float32).tobytes()
            tok = None if emb.tokens is None else np.ascontiguousarray(emb.tokens, dtype=np.float16)
            rows.append(
                (
                    encoder,
                    key,
                    pooled,
                    None if tok is None else tok.tobytes(),
                    None if tok is None else tok.shape[0],
                )
            )
        conn = self._conn()
        with conn:
            conn.executemany(
                "INSERT INTO embeddings VALUES (?, ?, ?, ?, ?) ON CONFLICT(encoder, key) DO UPDATE "
                "SET pooled=excluded.pooled, tokens=COALESCE(excluded.tokens, embeddings.tokens), "
                "n_tokens=COALESCE(excluded.n_tokens, embeddings.n_tokens)",
                rows,
            )

    def count(self, encoder: str | None = None) -> int:
        q = "SELECT COUNT(*) FROM embeddings" + (" WHERE encoder=?" if encoder else "")
        return int(self._conn().execute(q, (encoder,) if encoder else ()).fetchone()[0])

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _chunks(items: list, n: int) -> Iterable[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _path_key(path: str | Path) -> str:
    """A path as SQLite text. A file name that is not UTF-8 (bytes Python keeps as surrogates)
    cannot be bound as text; its bytes are written as escapes instead, one key per name."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")

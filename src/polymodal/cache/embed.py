"""Embed every media and text column of a table, reusing cached embeddings.

Per column: resolve and hash each cell's content, fetch what the cache has, decode the rest in a
thread pool (bounded prefetch, so memory stays flat on any collection size) while the encoder works
on the previous batch, and store new embeddings batch by batch. A bad cell never stops the job: it
becomes a :class:`~polymodal.errors.SkippedRow` with its reason, and its row is kept with the
column marked absent.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from polymodal.cache.store import EmbeddingCache, text_key
from polymodal.data.paths import resolve_path
from polymodal.data.schema import Schema
from polymodal.encoders.base import Embedding, Encoder
from polymodal.errors import InputError, SkippedRow
from polymodal.modality import Modality

EncoderChoice = Encoder | str


@dataclass
class ColumnEmbeddings:
    """One column's embeddings. ``present`` is authoritative: absent rows hold zeros, never data."""

    column: str
    modality: Modality
    encoder: str  # cache id of the encoder that produced the vectors
    pooled: np.ndarray  # (N, width) float32
    present: np.ndarray  # (N,) bool
    tokens: list[np.ndarray | None] | None = None  # per row (n_tokens, token_width), if kept

    @property
    def width(self) -> int:
        return int(self.pooled.shape[1])


@dataclass
class EmbedReport:
    """What an embedding run did: counts per column, cells skipped with reasons, notes."""

    rows: int = 0
    encoded: dict[str, int] = field(default_factory=dict)
    cached: dict[str, int] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    skipped: list[SkippedRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{self.rows} rows"]
        for col in self.encoded:
            lines.append(
                f"  {col}: {self.encoded[col]} encoded, {self.cached[col]} from cache, "
                f"{self.missing[col]} empty, "
                f"{sum(1 for s in self.skipped if s.column == col)} skipped"
            )
        return "\n".join(lines)


@dataclass
class EmbeddedTable:
    """A table with its media and text columns embedded; tabular columns stay in ``frame``."""

    frame: pd.DataFrame
    schema: Schema
    columns: dict[str, ColumnEmbeddings]
    report: EmbedReport


@dataclass
class _Job:
    key: str
    value: str  # what encoder.decode receives: a resolved path or the text
    rows: list[int]


def embed_table(
    frame: pd.DataFrame,
    schema: Schema,
    *,
    base: Path | None = None,
    encoders: Mapping[Modality, EncoderChoice] | None = None,
    cache: EmbeddingCache | None = None,
    tokens: bool = False,
    batch_size: int = 32,
    workers: int | None = None,
    allow_outside: bool = False,
    progress: bool = True,
) -> EmbeddedTable:
    """Embed the text and media columns of ``frame`` described by ``schema``.

    ``encoders`` maps a modality to an encoder (or its name); the registered default is used for any
    modality not given. ``tokens`` also keeps token states (needed by cross-attention fusion).
    """
    from polymodal.encoders.registry import build_encoder, default_encoder_name

    frame = frame.reset_index(drop=True)
    cache = cache if cache is not None else EmbeddingCache()
    workers = workers or max(2, os.cpu_count() or 2)
    chosen: dict[Modality, EncoderChoice] = dict(encoders or {})
    built: dict[Modality, Encoder] = {}
    report = EmbedReport(rows=len(frame))
    out: dict[str, ColumnEmbeddings] = {}
    with ThreadPoolExecutor(workers, thread_name_prefix="polymodal-decode") as pool:
        for spec in schema.columns:
            if spec.modality.is_tabular:
                continue
            if spec.modality not in built:
                choice = chosen.get(spec.modality) or default_encoder_name(spec.modality)
                built[spec.modality] = (
                    build_encoder(choice, modality=spec.modality)
                    if isinstance(choice, str)
                    else choice
                )
            out[spec.name] = _embed_column(
                frame[spec.name],
                spec.name,
                spec.modality,
                built[spec.modality],
                base=base,
                cache=cache,
                tokens=tokens,
                batch_size=batch_size,
                pool=pool,
                allow_outside=allow_outside,
                progress=progress,
                report=report,
            )
    return EmbeddedTable(frame, schema, out, report)


def _embed_column(
    series: pd.Series,
    column: str,
    modality: Modality,
    encoder: Encoder,
    *,
    base: Path | None,
    cache: EmbeddingCache,
    tokens: bool,
    batch_size: int,
    pool: ThreadPoolExecutor,
    allow_outside: bool,
    progress: bool,
    report: EmbedReport,
) -> ColumnEmbeddings:
    n = len(series)
    cache_id = encoder.info.cache_id
    jobs, missing, skipped = _make_jobs(
        series, column, modality, base=base, cache=cache, pool=pool, allow_outside=allow_outside
    )
    found = cache.get_many(cache_id, jobs.keys(), tokens=tokens)
    todo = [job for key, job in jobs.items() if key not in found]
    results: dict[str, Embedding] = dict(found)
    n_new = 0
    desc = f"embed {column} ({modality})"
    with tqdm(total=len(todo), desc=desc, unit="item", disable=not progress or not todo) as bar:
        for batch in _decoded_batches(todo, encoder.decode, batch_size, pool):
            good: list[tuple[_Job, Any]] = []
            for job, decoded, err in batch:
                if err is not None:
                    skipped.extend(_skip(err, job.rows, column))
                else:
                    good.append((job, decoded))
                    notes = getattr(encoder, "notes", None)
                    for note in notes(decoded) if notes else []:
                        report.notes.append(f"row {job.rows[0]}, column {column!r}: {note}")
            new = _encode_isolating_failures(encoder, good, tokens, column, skipped)
            if new:
                cache.put_many(cache_id, new)
                results.update(new)
                n_new += len(new)
            bar.update(len(batch))
    width = encoder.info.width
    pooled = np.zeros((n, width), dtype=np.float32)
    present = np.zeros(n, dtype=bool)
    toks: list[np.ndarray | None] | None = [None] * n if tokens else None
    for key, job in jobs.items():
        emb = results.get(key)
        if emb is None:
            continue
        for r in job.rows:
            pooled[r] = emb.pooled
            present[r] = True
            if toks is not None:
                toks[r] = emb.tokens
    report.encoded[column] = n_new
    report.cached[column] = len(found)
    report.missing[column] = missing
    report.skipped.extend(sorted(skipped, key=lambda s: s.row))
    return ColumnEmbeddings(column, modality, cache_id, pooled, present, toks)


def _make_jobs(
    series: pd.Series,
    column: str,
    modality: Modality,
    *,
    base: Path | None,
    cache: EmbeddingCache,
    pool: ThreadPoolExecutor,
    allow_outside: bool,
) -> tuple[dict[str, _Job], int, list[SkippedRow]]:
    """Group rows by content key. Returns jobs by key, the count of empty cells, skipped cells."""
    jobs: dict[str, _Job] = {}
    skipped: list[SkippedRow] = []
    missing = 0
    located: list[tuple[int, str]] = []
    for row, value in enumerate(series.tolist()):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            missing += 1
            continue
        text = str(value)
        if not text.strip():
            missing += 1
            continue
        located.append((row, text))
    if modality == Modality.TEXT:
        for row, text in located:
            key = text_key(text)
            jobs.setdefault(key, _Job(key, text, [])).rows.append(row)
        return jobs, missing, skipped

    resolved: list[tuple[int, Path]] = []
    folders: dict[str, str] = {}
    for row, text in located:
        try:
            path = resolve_path(text, base, allow_outside=allow_outside, folders=folders)
            resolved.append((row, path))
        except InputError as err:
            skipped.append(SkippedRow.from_error(err.at(row=row, column=column)))
    known = cache.known_file_keys([p for _, p in resolved])
    unknown = sorted({p for _, p in resolved if p not in known})
    futures = {p: pool.submit(cache.file_key, p) for p in unknown}
    for row, path in resolved:
        try:
            key = known[path] if path in known else futures[path].result()
        except OSError as err:
            skipped.append(SkippedRow(row, column, f"cannot read file: {err.strerror}", str(path)))
            continue
        jobs.setdefault(key, _Job(key, str(path), [])).rows.append(row)
    return jobs, missing, skipped


def _decoded_batches(
    jobs: Sequence[_Job], decode: Callable[[str], Any], batch_size: int, pool: ThreadPoolExecutor
) -> Iterator[list[tuple[_Job, Any, InputError | None]]]:
    """Yield decoded batches, keeping two batches of decoding in flight ahead of the encoder."""
    it = iter(jobs)
    pending: deque[list[tuple[_Job, Future]]] = deque()

    def submit() -> None:
        batch = list(islice(it, batch_size))
        if batch:
            pending.append([(job, pool.submit(decode, job.value)) for job in batch])

    for _ in range(2):
        submit()
    while pending:
        batch = pending.popleft()
        submit()
        out = []
        unexpected: list[Exception] = []
        for job, fut in batch:
            try:
                out.append((job, fut.result(), None))
            except InputError as err:
                out.append((job, None, err))
            except Exception as err:  # a reader bug on one odd file must not kill a batch job
                unexpected.append(err)
                problem = f"cannot decode: {type(err).__name__}: {err}"
                out.append((job, None, InputError(problem, path=job.value)))
        if len(unexpected) == len(batch) > 1:
            # Every item failing the same unexpected way is a broken install, not bad data.
            raise unexpected[0]
        yield out


def _encode_isolating_failures(
    encoder: Encoder,
    good: list[tuple[_Job, Any]],
    tokens: bool,
    column: str,
    skipped: list[SkippedRow],
) -> dict[str, Embedding]:
    """Encode a batch; if the batch fails, retry items one by one so only the culprit is skipped."""
    if not good:
        return {}
    try:
        embs = encoder.encode([d for _, d in good], tokens=tokens)
        return {job.key: e for (job, _), e in zip(good, embs, strict=True)}
    except InputError:
        pass
    out: dict[str, Embedding] = {}
    for job, decoded in good:
        try:
            out[job.key] = encoder.encode([decoded], tokens=tokens)[0]
        except InputError as err:
            skipped.extend(_skip(err, job.rows, column))
    return out


def _skip(err: InputError, rows: list[int], column: str) -> list[SkippedRow]:
    return [SkippedRow.from_error(err.at(row=r, column=column)) for r in rows]

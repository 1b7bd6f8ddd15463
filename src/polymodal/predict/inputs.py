"""From a user's table to the network's inputs: load it, embed (or decode) its text and media
columns, transform its tabular columns, and assemble a :class:`FeatureSet`.

Used the same way at fit and at predict time; every function takes the fitted pieces it needs
as plain arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from polymodal.cache.embed import ColumnEmbeddings, EmbedReport, embed_table
from polymodal.cache.store import EmbeddingCache
from polymodal.data.schema import ColumnSpec, Schema
from polymodal.data.table import load_table
from polymodal.encoders.base import Encoder
from polymodal.encoders.tabular import TabularBatch, TabularPreprocessor
from polymodal.errors import ConfigError, InputError, SkippedRow
from polymodal.fusion.base import SlotSpec
from polymodal.modality import Modality
from polymodal.predict.features import FeatureSet, build_features, decode_column

# A text/media column's model input: cached embeddings, or decoded inputs and presence when the
# encoder is fine-tuned.
MediaInput = ColumnEmbeddings | tuple[list[Any], np.ndarray]


def load_frame(
    data: str | Path | pd.DataFrame, base: str | Path | None
) -> tuple[pd.DataFrame, Path | None]:
    """A table and the folder its relative paths start from (as :func:`load_dataset` decides)."""
    frame = load_table(data)
    if base is None and not isinstance(data, pd.DataFrame):
        src = Path(data).expanduser()
        base = src if src.is_dir() else src.parent
    from polymodal.data.paths import base_folder

    return frame, base_folder(base)


def media_inputs(
    frame: pd.DataFrame,
    base: Path | None,
    specs: Sequence[ColumnSpec],
    *,
    encoders: Mapping[Modality, Encoder],
    cache: EmbeddingCache,
    fine_tune: bool = False,
    tokens: bool = False,
    progress: bool = True,
    rows: np.ndarray | None = None,
) -> tuple[dict[str, MediaInput], EmbedReport]:
    """Embeddings (frozen encoders) or decoded inputs (``fine_tune``) of the text/media ``specs``.

    Cells that cannot be used are absent in the features and listed in the report's ``skipped``,
    with their row in the user's table (``rows`` maps frame positions back). ``tokens`` keeps
    encoder token states besides the pooled vectors.
    """
    specs = [c for c in specs if not c.modality.is_tabular]
    report = EmbedReport(rows=len(frame))
    if not specs:
        return {}, report
    original = rows if rows is not None else np.arange(len(frame))
    out: dict[str, MediaInput] = {}
    if fine_tune:
        for spec in specs:
            items, present, skipped = decode_column(
                frame[spec.name], spec.name, encoders[spec.modality], base=base
            )
            out[spec.name] = (items, present)
            report.skipped += skipped
            report.missing[spec.name] = int((~present).sum()) - len(skipped)
    else:
        embedded = embed_table(
            frame,
            Schema(tuple(specs)),
            base=base,
            encoders=encoders,
            cache=cache,
            tokens=tokens,
            progress=progress,
        )
        report = embedded.report
        out.update(embedded.columns)
    report.skipped = [_remap(s, original) for s in report.skipped]
    return out, report


def media_present(item: MediaInput) -> np.ndarray:
    """(N,) bool: the rows where a media input has a value."""
    return item.present if isinstance(item, ColumnEmbeddings) else item[1]


def tabular_batch(
    pre: TabularPreprocessor | None, frame: pd.DataFrame, rows: np.ndarray | None = None
) -> TabularBatch | None:
    """The fitted preprocessor's arrays for ``frame``; a column the frame lacks is missing in
    every row (the tabular module's learned missing tokens stand in for it)."""
    if pre is None:
        return None
    wanted = [*pre.numeric, *pre.categorical]
    absent = [c for c in wanted if c not in frame.columns]
    if absent:
        frame = frame.assign(**{c: np.nan for c in absent})
    try:
        return pre.transform(frame[wanted])
    except InputError as err:
        if rows is None or err.row is None:
            raise
        raise err.at(row=int(rows[err.row])) from None


def assemble_features(
    slots: Sequence[SlotSpec],
    frame: pd.DataFrame,
    media: Mapping[str, MediaInput],
    y: np.ndarray | None,
    *,
    columns: Mapping[str, str],
    tabular: TabularPreprocessor | None,
    tabular_slot: str | None,
    rows: np.ndarray | None = None,
) -> FeatureSet:
    """Features of ``frame``; ``rows`` maps its positions to the user's table for errors."""
    embedded = {c: m for c, m in media.items() if isinstance(m, ColumnEmbeddings)}
    decoded = {c: m for c, m in media.items() if not isinstance(m, ColumnEmbeddings)}
    return build_features(
        slots,
        len(frame),
        columns=columns,
        embedded=embedded,
        decoded=decoded,
        tabular=tabular_batch(tabular, frame, rows) if tabular_slot is not None else None,
        tabular_slot=tabular_slot,
        y=y,
    )


def check_some_inputs(frame: pd.DataFrame, needed: Sequence[str], label: str) -> None:
    """A ConfigError when ``frame`` has none of the model's input columns: every prediction
    would be the same constant, which is never what the user meant (a wrong file or header)."""
    if not needed or any(c in frame.columns for c in needed):
        return
    has = [c for c in frame.columns if c != label]
    raise ConfigError(
        "the table has none of the model's input columns, so every prediction would be the "
        f"same: the model reads {', '.join(map(repr, needed))}; the table has "
        + (", ".join(map(repr, has[:30])) if has else "no other columns")
        + (f" (and {len(has) - 30} more)" if len(has) > 30 else "")
    )


def column_notes(frame: pd.DataFrame, needed: Sequence[str], label: str) -> list[str]:
    """What prediction data lacks or carries beyond what the model reads."""
    notes = []
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        notes.append(
            "columns not in the data, treated as missing in every row: "
            + ", ".join(map(repr, absent))
        )
    unused = [c for c in frame.columns if c not in needed and c != label]
    if unused:
        notes.append("columns the model does not use: " + ", ".join(map(repr, unused)))
    return notes


def merge_reports(into: EmbedReport, other: EmbedReport) -> None:
    """Add ``other``'s row and cell counts to ``into``."""
    into.rows += other.rows
    for name in ("encoded", "cached", "missing"):
        mine, theirs = getattr(into, name), getattr(other, name)
        for column, n in theirs.items():
            mine[column] = mine.get(column, 0) + n


def _remap(skipped: SkippedRow, original: np.ndarray) -> SkippedRow:
    """A skipped cell with its row number in the user's table."""
    row = int(original[skipped.row]) if 0 <= skipped.row < len(original) else skipped.row
    return SkippedRow(row, skipped.column, skipped.problem, skipped.path)

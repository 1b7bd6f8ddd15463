"""What the predictor network reads: one slot per media/text column plus one tabular slot.

A :class:`FeatureSet` holds NumPy arrays for N rows: per slot a presence mask and either cached
embeddings (pooled vectors, optionally capped and padded token states) or, when encoders are
fine-tuned, the decoded inputs themselves; the tabular slot holds the fitted preprocessor's
output. :meth:`FeatureSet.tensors` converts it once to :class:`FeatureTensors`, which training
slices batch by batch without further copies from NumPy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from polymodal.cache.embed import ColumnEmbeddings
from polymodal.data.paths import resolve_path
from polymodal.encoders.base import Encoder
from polymodal.encoders.tabular import TabularBatch
from polymodal.errors import InputError, SkippedRow
from polymodal.fusion.base import SlotSpec
from polymodal.fusion.hybrid import pool_tokens
from polymodal.modality import Modality

TABULAR_GROUP = "tabular"


def modality_group(modality: Modality) -> str:
    """The modality group a slot belongs to: numeric and categorical columns form "tabular"."""
    return TABULAR_GROUP if modality.is_tabular else str(modality)


def slot_groups(slots: Sequence[SlotSpec]) -> dict[str, list[str]]:
    """Group name -> slot names, groups in the order their first slot appears."""
    groups: dict[str, list[str]] = {}
    for spec in slots:
        groups.setdefault(modality_group(spec.modality), []).append(spec.name)
    return groups


@dataclass
class SlotData:
    """One slot's inputs for N rows. Absent rows hold zeros (never data) and ``present=False``."""

    present: np.ndarray  # (N,) bool
    pooled: np.ndarray | None = None  # (N, width) float32
    tokens: np.ndarray | None = None  # (N, T, token_width) float16
    token_mask: np.ndarray | None = None  # (N, T) bool
    decoded: list[Any] | None = None  # fine-tuning: decoded inputs, None where absent

    def take(self, idx: np.ndarray) -> SlotData:
        return SlotData(
            self.present[idx],
            None if self.pooled is None else self.pooled[idx],
            None if self.tokens is None else self.tokens[idx],
            None if self.token_mask is None else self.token_mask[idx],
            None if self.decoded is None else [self.decoded[i] for i in idx],
        )


@dataclass
class FeatureSet:
    """Every slot's arrays for N rows, the tabular arrays, and the encoded targets if known."""

    n_rows: int
    slots: dict[str, SlotData] = field(default_factory=dict)
    tabular: TabularBatch | None = None
    y: np.ndarray | None = None

    def __len__(self) -> int:
        return self.n_rows

    def take(self, idx: np.ndarray | Sequence[int]) -> FeatureSet:
        """The rows at positions ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        tab = None
        if self.tabular is not None:
            t = self.tabular
            tab = TabularBatch(t.numeric[idx], t.numeric_present[idx], t.categories[idx])
        return FeatureSet(
            len(idx),
            {name: data.take(idx) for name, data in self.slots.items()},
            tab,
            None if self.y is None else self.y[idx],
        )

    def present(self, slot: str) -> np.ndarray:
        """(N,) bool: rows where ``slot`` has a value (the tabular slot: any of its columns)."""
        if slot in self.slots:
            return self.slots[slot].present.copy()
        if self.tabular is None:
            return np.zeros(self.n_rows, bool)
        numeric = self.tabular.numeric_present.any(axis=1)
        return numeric | (self.tabular.categories != 0).any(axis=1)

    def tensors(self) -> FeatureTensors:
        """Torch views of the arrays (shared memory where dtypes allow)."""
        slots = {}
        decoded = {}
        for name, data in self.slots.items():
            if data.decoded is not None:
                decoded[name] = data.decoded
            t: dict[str, torch.Tensor] = {"present": torch.from_numpy(data.present)}
            if data.pooled is not None:
                t["pooled"] = torch.from_numpy(data.pooled)
            if data.tokens is not None and data.token_mask is not None:
                t["tokens"] = torch.from_numpy(data.tokens)
                t["token_mask"] = torch.from_numpy(data.token_mask)
            slots[name] = t
        tab = None if self.tabular is None else self.tabular.to_tensors()
        y = None if self.y is None else torch.from_numpy(self.y)
        return FeatureTensors(self.n_rows, slots, tab, decoded, y)


def concat_features(a: FeatureSet, b: FeatureSet) -> FeatureSet:
    """The rows of ``a`` followed by those of ``b`` (same slots; targets kept when both have)."""
    if set(a.slots) != set(b.slots) or (a.tabular is None) != (b.tabular is None):
        raise ValueError("feature sets with different slots cannot be joined")

    def cat(x: np.ndarray | None, y: np.ndarray | None) -> np.ndarray | None:
        return None if x is None or y is None else np.concatenate([x, y])

    slots = {}
    for name, s in a.slots.items():
        t = b.slots[name]
        decoded = None if s.decoded is None or t.decoded is None else [*s.decoded, *t.decoded]
        shapes = {x.shape[1:] for x in (s.tokens, t.tokens) if x is not None}
        if len(shapes) > 1:
            raise ValueError(f"slot {name!r}: token arrays of different shapes")
        slots[name] = SlotData(
            np.concatenate([s.present, t.present]),
            cat(s.pooled, t.pooled),
            cat(s.tokens, t.tokens),
            cat(s.token_mask, t.token_mask),
            decoded,
        )
    tab = None
    if a.tabular is not None and b.tabular is not None:
        ta, tb = a.tabular, b.tabular
        tab = TabularBatch(
            np.concatenate([ta.numeric, tb.numeric]),
            np.concatenate([ta.numeric_present, tb.numeric_present]),
            np.concatenate([ta.categories, tb.categories]),
        )
    return FeatureSet(a.n_rows + b.n_rows, slots, tab, cat(a.y, b.y))


@dataclass
class FeatureTensors:
    """:class:`FeatureSet` as tensors; :meth:`take` slices rows for a batch."""

    n_rows: int
    slots: dict[str, dict[str, torch.Tensor]]
    tabular: dict[str, torch.Tensor] | None
    decoded: dict[str, list[Any]]
    y: torch.Tensor | None

    def __len__(self) -> int:
        return self.n_rows

    def take(self, idx: torch.Tensor) -> FeatureTensors:
        rows = idx.tolist() if self.decoded else []
        return FeatureTensors(
            int(idx.shape[0]),
            {name: {k: v[idx] for k, v in t.items()} for name, t in self.slots.items()},
            None if self.tabular is None else {k: v[idx] for k, v in self.tabular.items()},
            {name: [items[i] for i in rows] for name, items in self.decoded.items()},
            None if self.y is None else self.y[idx],
        )


def build_features(
    slots: Sequence[SlotSpec],
    n_rows: int,
    *,
    columns: Mapping[str, str],
    embedded: Mapping[str, ColumnEmbeddings] | None = None,
    decoded: Mapping[str, tuple[list[Any], np.ndarray]] | None = None,
    tabular: TabularBatch | None = None,
    tabular_slot: str | None = None,
    y: np.ndarray | None = None,
) -> FeatureSet:
    """Arrays for every slot in ``slots``.

    ``columns`` maps a media/text slot to its column. A slot whose column is in neither
    ``embedded`` nor ``decoded`` (the column is not in the data) is absent in every row.
    """
    embedded = embedded or {}
    decoded = decoded or {}
    out = FeatureSet(n_rows, tabular=tabular, y=y)
    for spec in slots:
        if spec.name == tabular_slot:
            continue
        column = columns[spec.name]
        if column in decoded:
            items, present = decoded[column]
            out.slots[spec.name] = SlotData(present, decoded=items)
        elif column in embedded:
            out.slots[spec.name] = _embedded_slot(spec, embedded[column])
        else:
            out.slots[spec.name] = _absent_slot(spec, n_rows)
    return out


def _embedded_slot(spec: SlotSpec, emb: ColumnEmbeddings) -> SlotData:
    if emb.width != spec.width:
        raise InputError(
            f"embeddings are {emb.width}-wide but the model expects {spec.width}",
            column=emb.column,
        )
    data = SlotData(emb.present.copy(), pooled=np.ascontiguousarray(emb.pooled, np.float32))
    if spec.max_tokens > 1:
        data.tokens, data.token_mask = pad_tokens(
            emb.tokens,
            emb.present,
            emb.pooled,
            spec.max_tokens,
            spec.token_width,
            grid=spec.modality == Modality.IMAGE,
        )
    return data


def _absent_slot(spec: SlotSpec, n_rows: int) -> SlotData:
    data = SlotData(np.zeros(n_rows, bool), pooled=np.zeros((n_rows, spec.width), np.float32))
    if spec.max_tokens > 1:
        data.tokens = np.zeros((n_rows, spec.max_tokens, spec.token_width), np.float16)
        data.token_mask = np.zeros((n_rows, spec.max_tokens), bool)
    return data


def pad_tokens(
    tokens: Sequence[np.ndarray | None] | None,
    present: np.ndarray,
    pooled: np.ndarray,
    max_tokens: int,
    token_width: int,
    *,
    grid: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row token states -> (N, max_tokens, token_width) float16 and a (N, max_tokens) mask.

    Longer sequences are average-pooled as hybrid fusion pools them (runs in time; square image
    grids in space when ``grid``); a present row without kept tokens uses its pooled vector as
    its one token when the widths agree.
    """
    n = len(present)
    out = np.zeros((n, max_tokens, token_width), np.float16)
    mask = np.zeros((n, max_tokens), bool)
    for i in np.flatnonzero(present):
        t = tokens[i] if tokens is not None else None
        if t is None or len(t) == 0:
            if pooled.shape[1] != token_width:
                continue
            t = pooled[i][None, :]
        t = cap_tokens(np.asarray(t, np.float32), max_tokens, grid=grid)
        out[i, : len(t)] = t
        mask[i, : len(t)] = True
    return out, mask


def cap_tokens(states: np.ndarray, max_tokens: int, *, grid: bool = False) -> np.ndarray:
    """(T, D) states pooled to at most ``max_tokens`` with hybrid fusion's own pooling."""
    if states.shape[0] <= max_tokens:
        return states
    x = torch.from_numpy(states)[None]
    keep = torch.ones(x.shape[:2], dtype=torch.bool)
    pooled, kept = pool_tokens(x, keep, max_tokens, grid=grid)
    return pooled[0][kept[0]].numpy()


def longest_tokens(embedded: ColumnEmbeddings) -> int:
    """The most token states any present row of ``embedded`` has (1 when none kept)."""
    lengths = [len(t) for t in embedded.tokens or [] if t is not None]
    return max(lengths, default=1)


def decode_column(
    series: pd.Series,
    column: str,
    encoder: Encoder,
    *,
    base: Path | None,
    workers: int = 2,
) -> tuple[list[Any], np.ndarray, list[SkippedRow]]:
    """Decode every cell of a column for fine-tuning: items (None where absent), presence, and
    the cells that could not be used, with their reason.
    """
    modality = encoder.info.modality
    values = series.tolist()

    def one(row: int) -> Any:
        value = values[row]
        if (
            value is None
            or (isinstance(value, float) and np.isnan(value))
            or not str(value).strip()
        ):
            return None
        text = str(value)
        if modality.is_media:
            text = str(resolve_path(text, base))
        return encoder.decode(text)

    items: list[Any] = [None] * len(values)
    skipped: list[SkippedRow] = []
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(one, r) for r in range(len(values))]
        for row, fut in enumerate(futures):
            try:
                items[row] = fut.result()
            except InputError as err:
                skipped.append(SkippedRow.from_error(err.at(row=row, column=column)))
    present = np.array([item is not None for item in items], dtype=bool)
    return items, present, skipped

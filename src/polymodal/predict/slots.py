"""Fit-time decisions about the input columns: which are usable, which slot each becomes, and
the tabular preprocessor fitted on the training rows.

One slot per text/media column (its encoder's widths) and one slot for all numeric and
categorical columns together, whose tokens come from a trainable tabular module.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from polymodal.cache.embed import ColumnEmbeddings
from polymodal.data.schema import ColumnSpec, Schema
from polymodal.encoders.base import Encoder
from polymodal.encoders.tabular import TabularPreprocessor
from polymodal.errors import ConfigError, InputError
from polymodal.fusion.base import SlotSpec
from polymodal.modality import Modality
from polymodal.predict.features import longest_tokens
from polymodal.predict.inputs import MediaInput, media_present

TABULAR_SLOT = "tabular"
TABULAR_WIDTH = 64  # FT-Transformer token width; the tabular slot rarely needs more


def usable_schema(
    schema: Schema,
    train_frame: pd.DataFrame,
    media: Mapping[str, MediaInput],
    train_rows: np.ndarray,
) -> tuple[Schema, list[str]]:
    """``schema`` without the columns that have no usable value in any training row, and a
    note for each column left out. A ConfigError when nothing is left."""
    kept: list[ColumnSpec] = []
    notes: list[str] = []
    for spec in schema.columns:
        if spec.modality.is_tabular:
            usable = _tabular_has_values(train_frame[spec.name], spec.modality)
        else:
            usable = bool(media_present(media[spec.name])[train_rows].any())
        if usable:
            kept.append(spec)
        else:
            notes.append(f"column {spec.name!r} not used: no usable value in any training row")
    if not kept:
        raise ConfigError(
            "no input column has a usable value in the training rows; see the notes: "
            + "; ".join(notes[-5:])
        )
    return Schema(tuple(kept), schema.excluded), notes


def make_slots(
    schema: Schema,
    media: Mapping[str, MediaInput],
    encoders: Mapping[Modality, Encoder],
    *,
    sequence: bool,
    max_tokens: int,
    hidden: int,
) -> tuple[list[SlotSpec], dict[str, str], str | None]:
    """Slot specs, slot -> column for text/media slots, and the tabular slot's name (or None).

    ``sequence``: slots carry up to ``max_tokens`` token states (hybrid fusion reads them).
    """
    slots: list[SlotSpec] = []
    columns: dict[str, str] = {}
    for spec in schema.columns:
        if spec.modality.is_tabular:
            continue
        info = encoders[spec.modality].info
        n_tokens = 1
        if sequence:
            item = media[spec.name]
            longest = longest_tokens(item) if isinstance(item, ColumnEmbeddings) else 10**9
            n_tokens = min(max_tokens, longest)
        slots.append(SlotSpec(spec.name, spec.modality, info.width, info.token_width, n_tokens))
        columns[spec.name] = spec.name
    tabular = [c for c in schema.columns if c.modality.is_tabular]
    tabular_slot = None
    if tabular:
        tabular_slot = TABULAR_SLOT
        while tabular_slot in columns:
            tabular_slot += "_"
        n_tokens = len(tabular) if sequence and len(tabular) > 1 else 1
        width = min(hidden, TABULAR_WIDTH)
        slots.append(SlotSpec(tabular_slot, tabular[0].modality, width, width, n_tokens))
    return slots, columns, tabular_slot


def fit_tabular(
    schema: Schema, train_frame: pd.DataFrame, rows: np.ndarray
) -> TabularPreprocessor | None:
    """The tabular preprocessor fitted on the training rows (None without tabular columns);
    ``rows`` maps training positions to the user's table for errors."""
    numeric = schema.names(Modality.NUMERIC)
    categorical = schema.names(Modality.CATEGORICAL)
    if not numeric and not categorical:
        return None
    try:
        return TabularPreprocessor(numeric, categorical).fit(train_frame.reset_index(drop=True))
    except InputError as err:
        raise err if err.row is None else err.at(row=int(rows[err.row])) from None


def _tabular_has_values(series: pd.Series, modality: Modality) -> bool:
    if modality == Modality.NUMERIC:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        return bool(np.isfinite(values).any())
    return bool((series.notna() & (series.astype(str).str.strip() != "")).any())

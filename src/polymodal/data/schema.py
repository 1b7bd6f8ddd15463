"""Decide each column's modality: file paths by extension and existence, numbers, categories, text.

Detection is a guess with a stated reason; any column can be overridden.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from polymodal.errors import ConfigError
from polymodal.modality import Modality, modality_of_path

# Integer columns with these names are codes, not quantities.
_CODE_NAME = re.compile(r"(^|_)(id|zip|zipcode|postcode|postal|code)($|_)|zip", re.IGNORECASE)
_SAMPLE = 500


@dataclass(frozen=True)
class ColumnSpec:
    """A column used as input, its modality and why that modality was chosen."""

    name: str
    modality: Modality
    reason: str = ""


@dataclass(frozen=True)
class Schema:
    """The input columns of a dataset (never the label) and the columns left out, with reasons."""

    columns: tuple[ColumnSpec, ...]
    excluded: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def names(self, modality: Modality | None = None) -> list[str]:
        return [c.name for c in self.columns if modality is None or c.modality == modality]

    def modality(self, name: str) -> Modality:
        for c in self.columns:
            if c.name == name:
                return c.modality
        raise ConfigError(f"column {name!r} is not an input column")

    @property
    def modalities(self) -> list[Modality]:
        """Modalities present, in a stable order."""
        seen = {c.modality for c in self.columns}
        return [m for m in Modality if m in seen]

    def to_dict(self) -> dict[str, str]:
        return {c.name: str(c.modality) for c in self.columns}

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> Schema:
        return cls(tuple(ColumnSpec(n, Modality(m), "saved") for n, m in data.items()))


def detect_schema(
    frame: pd.DataFrame,
    *,
    base: Path | None = None,
    overrides: Mapping[str, Modality | str] | None = None,
    exclude: Iterable[str] = (),
    columns: Iterable[str] | None = None,
) -> Schema:
    """Detect the modality of each column of ``frame``.

    ``overrides`` forces a modality per column; ``exclude`` leaves columns out (the label);
    ``columns`` restricts the inputs to those named. Names that are not in the table raise a
    ConfigError that lists the columns that are.
    """
    overrides = {k: Modality(v) for k, v in (overrides or {}).items()}
    exclude = list(exclude)
    wanted = list(columns) if columns is not None else None
    for name in [*overrides, *exclude, *(wanted or [])]:
        if name not in frame.columns:
            raise ConfigError(
                f"column {name!r} is not in the table; its columns are: "
                + ", ".join(map(repr, frame.columns))
            )
    specs: list[ColumnSpec] = []
    left_out: list[tuple[str, str]] = []
    for name in frame.columns:
        if name in exclude:
            left_out.append((name, "excluded"))
            continue
        if wanted is not None and name not in wanted:
            left_out.append((name, "not selected"))
            continue
        series = frame[name]
        if name in overrides:
            specs.append(ColumnSpec(name, overrides[name], "set by the user"))
            continue
        if series.isna().all() or (series.astype(str).str.strip() == "").all():
            left_out.append((name, "empty in every row"))
            continue
        modality, reason = _detect_column(str(name), series, base)
        if modality is None:
            left_out.append((name, reason))
        else:
            specs.append(ColumnSpec(name, modality, reason))
    if not specs:
        raise ConfigError("no usable input column: " + "; ".join(f"{n}: {r}" for n, r in left_out))
    return Schema(tuple(specs), tuple(left_out))


def _detect_column(name: str, series: pd.Series, base: Path | None) -> tuple[Modality | None, str]:
    values = series.dropna()
    if (
        series.dtype == object
        and values.map(lambda v: isinstance(v, list | tuple | np.ndarray)).any()
    ):
        # e.g. the <column>.embedding vectors `polymodal embed` writes: read as text they
        # would be embedded as strings of numbers
        return None, "vectors (lists of numbers), not a modality polymodal reads"
    if pd.api.types.is_bool_dtype(series):
        return Modality.CATEGORICAL, "boolean"
    if pd.api.types.is_numeric_dtype(series):
        if pd.api.types.is_integer_dtype(values) and _CODE_NAME.search(name):
            return Modality.CATEGORICAL, "integer code (by its name)"
        return Modality.NUMERIC, "numbers"
    texts = values.astype(str).str.strip()
    texts = texts[texts != ""]
    sample = (
        texts.sample(min(len(texts), _SAMPLE), random_state=0) if len(texts) > _SAMPLE else texts
    )
    media = [modality_of_path(v) for v in sample if len(v) < 4096 and "\n" not in v]
    counts = Counter(m for m in media if m is not None)
    if counts and sum(counts.values()) >= 0.8 * len(sample):
        modality, n = counts.most_common(1)[0]
        found = _fraction_existing(sample, base)
        reason = f"file paths ({n}/{len(sample)} sampled have {modality} extensions"
        reason += f", {found:.0%} exist)" if found is not None else ")"
        return modality, reason
    numeric = pd.to_numeric(sample, errors="coerce")
    if numeric.notna().mean() >= 0.95:
        return Modality.NUMERIC, "numbers written as text"
    n_unique = texts.nunique()
    mean_len = float(sample.str.len().mean()) if len(sample) else 0.0
    words = float(sample.str.count(r"\s+").mean() + 1) if len(sample) else 0.0
    if n_unique <= max(2, min(50, int(0.2 * len(texts)))) and words <= 4:
        return Modality.CATEGORICAL, f"{n_unique} distinct short values"
    if n_unique == len(texts) and words <= 1 and mean_len <= 40:
        return None, "unique identifiers (one distinct short value per row)"
    return Modality.TEXT, f"free text (mean {mean_len:.0f} characters)"


def _fraction_existing(sample: pd.Series, base: Path | None) -> float | None:
    if base is None and not any(Path(v).is_absolute() for v in sample[:20]):
        base = Path.cwd()
    checks = sample[:50]
    exists = [
        (Path(v) if Path(v).is_absolute() else (base or Path.cwd()) / v).exists() for v in checks
    ]
    return float(np.mean(exists)) if exists else None

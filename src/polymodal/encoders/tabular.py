"""Numeric and categorical columns -> tensors -> one token per column.

Unlike the other encoders nothing here is pre-trained: :class:`TabularPreprocessor` is fitted on
the user's table (scikit-learn style, learned state ends in ``_``) and
:class:`TabularEncoderModule` is an FT-Transformer-style feature tokenizer (Gorishniy et al.
2021) trained with the rest of the model.

Missing values are never zero-filled silently: NaN, +-inf and empty cells become
``numeric_present=False`` / category id 0, the module replaces them with a learned per-column
"missing" token and marks them in ``token_mask``, and :attr:`TabularBatch.notes` says how many
there were.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from polymodal.encoders.base import EncoderModule
from polymodal.errors import ConfigError, InputError

MISSING_ID = 0
UNSEEN_ID = 1
FIRST_KNOWN_ID = 2
_FORMAT_VERSION = 1
# Strings that mean "no value" in hand-made tables; pandas' CSV reader catches most of them
# already, but frames built in code or read as strings do not go through it.
_MISSING_STRINGS = frozenset({"", "nan", "na", "n/a", "null", "none", "-"})
# Normal-consistent IQR: IQR / 1.349 equals the standard deviation of a Gaussian, so the IQR
# scale and its std fallback put values on the same footing and `clip` means "sigmas" for both.
_IQR_TO_STD = 1.349


@dataclass
class TabularBatch:
    """A transformed table: what :class:`TabularEncoderModule` takes, plus what was noticed."""

    numeric: np.ndarray  # (N, n_numeric) float32, normalised, NaN where missing
    numeric_present: np.ndarray  # (N, n_numeric) bool
    categories: np.ndarray  # (N, n_categorical) int64: 0 missing, 1 unseen/rare, 2.. known
    notes: list[str] = field(default_factory=list)
    unseen_counts: dict[str, int] = field(default_factory=dict)
    missing_counts: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.numeric.shape[0])

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """The batch dict :meth:`TabularEncoderModule.forward` takes."""
        return {
            "numeric": torch.from_numpy(self.numeric),
            "numeric_present": torch.from_numpy(self.numeric_present),
            "categories": torch.from_numpy(self.categories),
        }


class TabularPreprocessor:
    """Learns robust numeric scaling and categorical vocabularies from a table.

    Numeric columns: optional ``log1p`` (strictly positive columns whose skewness exceeds
    ``skew_threshold`` and drops under the log), then ``(x - median) / scale`` where scale is the
    normal-consistent IQR, else the standard deviation, else 1; then clipping to ``[-clip, clip]``.
    Categorical columns: values as strings, ids by descending frequency; values seen fewer than
    ``min_count`` times, beyond ``max_categories``, or new at transform time share the unseen id.
    """

    def __init__(
        self,
        numeric: list[str],
        categorical: list[str],
        max_categories: int = 1000,
        *,
        min_count: int = 1,
        clip: float = 5.0,
        skew_threshold: float = 1.0,
    ) -> None:
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        self.max_categories = max_categories
        self.min_count = min_count
        self.clip = clip
        self.skew_threshold = skew_threshold

    # ----------------------------------------------------------------- fitting
    def fit(self, frame: pd.DataFrame) -> TabularPreprocessor:
        """Learn scaling and vocabularies from ``frame``; returns self."""
        self._check_columns(frame)
        overlap = set(self.numeric) & set(self.categorical)
        if overlap:
            raise ConfigError(f"columns both numeric and categorical: {sorted(overlap)}")
        if self.max_categories < 1 or self.min_count < 1:
            raise ConfigError("max_categories and min_count must be at least 1")
        self.log_: list[bool] = []
        self.center_: list[float] = []
        self.scale_: list[float] = []
        self.fit_notes_: list[str] = []
        for column in self.numeric:
            values = _numeric_values(frame[column], column)
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                raise ConfigError(
                    f"numeric column {column!r} has no usable values at fit time (all missing)"
                )
            use_log = _wants_log(finite, self.skew_threshold)
            if use_log:
                finite = np.log1p(finite)
                self.fit_notes_.append(f"column {column!r}: log1p applied (right-skewed)")
            center, scale = _robust_center_scale(finite)
            self.log_.append(use_log)
            self.center_.append(center)
            self.scale_.append(scale)
        self.vocab_: dict[str, list[str]] = {}
        for column in self.categorical:
            self.vocab_[column] = self._fit_vocab(frame[column], column)
        return self

    def _fit_vocab(self, series: pd.Series, column: str) -> list[str]:
        counts = _category_strings(series).value_counts(dropna=True)
        # Deterministic order: by count, then by value, so refits give identical ids.
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        kept = [value for value, n in ordered if n >= self.min_count][: self.max_categories]
        folded = len(ordered) - len(kept)
        if folded:
            self.fit_notes_.append(
                f"column {column!r}: {folded:,} rare categories share the unseen id"
            )
        return kept

    @property
    def cardinalities_(self) -> list[int]:
        """Number of ids per categorical column, including the missing and unseen ids."""
        return [len(self.vocab_[c]) + FIRST_KNOWN_ID for c in self.categorical]

    # ------------------------------------------------------------- transforming
    def transform(self, frame: pd.DataFrame) -> TabularBatch:
        """Normalise numeric columns and map categories to ids."""
        if not hasattr(self, "vocab_"):
            raise ConfigError("TabularPreprocessor.transform called before fit")
        self._check_columns(frame)
        n = len(frame)
        numeric = np.full((n, len(self.numeric)), np.nan, dtype=np.float32)
        present = np.zeros((n, len(self.numeric)), dtype=bool)
        notes: list[str] = []
        missing_counts: dict[str, int] = {}
        for j, column in enumerate(self.numeric):
            values = _numeric_values(frame[column], column)
            ok = np.isfinite(values)
            n_inf = int(np.isinf(values).sum())
            if self.log_[j]:
                # A non-positive value in a log column is still a real value: clamp it to the
                # smallest loggable one rather than calling it missing.
                values = np.log1p(np.where(ok, np.maximum(values, 0.0), 0.0))
            with np.errstate(over="ignore", invalid="ignore"):
                z = (values - self.center_[j]) / self.scale_[j]
            clipped = int(np.count_nonzero(ok & (np.abs(z) > self.clip)))
            numeric[ok, j] = np.clip(z[ok], -self.clip, self.clip)
            present[:, j] = ok
            n_missing = n - int(ok.sum())
            missing_counts[column] = n_missing
            if n_missing:
                detail = f" ({n_inf:,} infinite)" if n_inf else ""
                notes.append(f"column {column!r}: {n_missing:,} missing values masked{detail}")
            if clipped:
                notes.append(f"column {column!r}: {clipped:,} outliers clipped to ±{self.clip:g}")
        categories = np.zeros((n, len(self.categorical)), dtype=np.int64)
        unseen_counts: dict[str, int] = {}
        for j, column in enumerate(self.categorical):
            ids, n_unseen = self._category_ids(frame[column], column)
            categories[:, j] = ids
            unseen_counts[column] = n_unseen
            missing_counts[column] = int((ids == MISSING_ID).sum())
            if n_unseen:
                notes.append(f"column {column!r}: {n_unseen:,} unseen or rare categories")
            if missing_counts[column]:
                notes.append(f"column {column!r}: {missing_counts[column]:,} missing values")
        return TabularBatch(numeric, present, categories, notes, unseen_counts, missing_counts)

    def fit_transform(self, frame: pd.DataFrame) -> TabularBatch:
        return self.fit(frame).transform(frame)

    def _category_ids(self, series: pd.Series, column: str) -> tuple[np.ndarray, int]:
        lookup = {value: i + FIRST_KNOWN_ID for i, value in enumerate(self.vocab_[column])}
        strings = _category_strings(series)
        ids = strings.map(lookup)
        missing = strings.isna().to_numpy()
        unseen = ids.isna().to_numpy() & ~missing
        out = np.where(missing, MISSING_ID, UNSEEN_ID).astype(np.int64)
        known = ~missing & ~unseen
        out[known] = ids.to_numpy()[known].astype(np.int64)
        return out, int(unseen.sum())

    def _check_columns(self, frame: pd.DataFrame) -> None:
        absent = [c for c in [*self.numeric, *self.categorical] if c not in frame.columns]
        if absent:
            raise ConfigError(f"columns not in the table: {absent}")

    # ---------------------------------------------------------------- persisting
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable parameters and learned state."""
        state: dict[str, Any] = {
            "format_version": _FORMAT_VERSION,
            "numeric": self.numeric,
            "categorical": self.categorical,
            "max_categories": self.max_categories,
            "min_count": self.min_count,
            "clip": self.clip,
            "skew_threshold": self.skew_threshold,
        }
        if hasattr(self, "vocab_"):
            state["fitted"] = {
                "log_": [bool(v) for v in self.log_],
                "center_": [float(v) for v in self.center_],
                "scale_": [float(v) for v in self.scale_],
                "vocab_": {c: list(v) for c, v in self.vocab_.items()},
                "fit_notes_": list(self.fit_notes_),
            }
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TabularPreprocessor:
        """Rebuild a preprocessor saved with :meth:`to_dict`."""
        if state.get("format_version") != _FORMAT_VERSION:
            raise ConfigError(
                f"tabular preprocessor format {state.get('format_version')!r} is not supported"
            )
        pre = cls(
            state["numeric"],
            state["categorical"],
            state["max_categories"],
            min_count=state["min_count"],
            clip=state["clip"],
            skew_threshold=state["skew_threshold"],
        )
        fitted = state.get("fitted")
        if fitted is not None:
            pre.log_ = list(fitted["log_"])
            pre.center_ = list(fitted["center_"])
            pre.scale_ = list(fitted["scale_"])
            pre.vocab_ = {c: list(v) for c, v in fitted["vocab_"].items()}
            pre.fit_notes_ = list(fitted["fit_notes_"])
        return pre

    def __repr__(self) -> str:
        return (
            f"TabularPreprocessor(numeric={self.numeric!r}, categorical={self.categorical!r}, "
            f"max_categories={self.max_categories})"
        )


def _numeric_values(series: pd.Series, column: str) -> np.ndarray:
    """float64 values of a column, NaN where empty; a non-number raises InputError."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    text = series.astype("string").str.strip()
    blank = text.isna() | text.str.lower().isin(_MISSING_STRINGS)
    values = pd.to_numeric(text.mask(blank), errors="coerce")
    bad = values.isna() & ~blank
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"not a number: {text.iloc[row]!r} in a numeric column "
            f"({int(bad.sum()):,} such values)",
            row=row,
            column=column,
        )
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _category_strings(series: pd.Series) -> pd.Series:
    """Category values as stripped strings, <NA> where missing.

    Whole floats become integer strings: a column of ints read with a NaN comes back as floats,
    and "3.0" must meet "3" from a table without NaN.
    """

    def as_string(value: Any) -> Any:
        if value is None or value is pd.NA or value is pd.NaT:
            return pd.NA
        if isinstance(value, float | np.floating) and np.isnan(value):
            return pd.NA
        if isinstance(value, float | np.floating) and float(value).is_integer():
            value = int(value)
        text = str(value).strip()
        return pd.NA if text == "" else text

    return series.map(as_string).astype("string")


def _wants_log(finite: np.ndarray, threshold: float) -> bool:
    """log1p for strictly positive, strongly right-skewed columns (prices, areas, counts)."""
    if finite.min() <= 0 or np.unique(finite).size <= 2:
        return False
    before = _skewness(finite)
    return before > threshold and abs(_skewness(np.log1p(finite))) < before


def _skewness(x: np.ndarray) -> float:
    std = x.std()
    if std == 0 or not np.isfinite(std):
        return 0.0
    return float(np.mean(((x - x.mean()) / std) ** 3))


def _robust_center_scale(finite: np.ndarray) -> tuple[float, float]:
    center = float(np.median(finite))
    q25, q75 = np.percentile(finite, [25, 75])
    for scale in ((q75 - q25) / _IQR_TO_STD, finite.std()):
        if np.isfinite(scale) and scale > 0:
            return center, float(scale)
    return center, 1.0


class TabularEncoderModule(EncoderModule):
    """FT-Transformer feature tokenizer: one ``dim``-wide token per column.

    Numeric column j: ``x * w_j + b_j``, or a learned missing token ``m_j`` when absent.
    Categorical column j: an embedding row (id 0, the missing id, has its own learned row).
    Every token gets a learned per-column type embedding. ``pooled`` is the mean of the present
    tokens; a row with nothing present pools its missing tokens instead, so it is never NaN.
    """

    def __init__(self, n_numeric: int, cardinalities: list[int], dim: int) -> None:
        super().__init__()
        if n_numeric + len(cardinalities) == 0:
            raise ConfigError("a tabular encoder needs at least one column")
        if any(c < FIRST_KNOWN_ID for c in cardinalities):
            raise ConfigError("each cardinality counts the missing and unseen ids, so is >= 2")
        self.n_numeric = n_numeric
        self.cardinalities = list(cardinalities)
        self.dim = dim
        n_cols = n_numeric + len(cardinalities)
        scale = dim**-0.5
        self.numeric_weight = nn.Parameter(torch.randn(n_numeric, dim) * scale)
        self.numeric_bias = nn.Parameter(torch.randn(n_numeric, dim) * scale)
        self.numeric_missing = nn.Parameter(torch.randn(n_numeric, dim) * scale)
        # One table for all categorical columns, indexed with per-column offsets (as in
        # FT-Transformer): a single lookup instead of a Python loop over columns.
        self.category_embedding = nn.Embedding(max(sum(cardinalities), 1), dim)
        nn.init.normal_(self.category_embedding.weight, std=scale)
        offsets = torch.tensor([0, *np.cumsum(cardinalities)[:-1].tolist()], dtype=torch.long)
        self.register_buffer("category_offsets", offsets[: len(cardinalities)], persistent=False)
        self.column_embedding = nn.Parameter(torch.randn(n_cols, dim) * scale)

    @property
    def width(self) -> int:
        return self.dim

    def forward(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        parts: list[torch.Tensor] = []
        masks: list[torch.Tensor] = []
        if self.n_numeric:
            x = batch["numeric"].to(self.numeric_weight.dtype)
            present = batch["numeric_present"].bool() & torch.isfinite(x)
            # Zero the absent values *before* multiplying: NaN * w would put NaN into the
            # gradient of w even though torch.where discards that branch in the forward pass.
            x = torch.where(present, x, torch.zeros_like(x)).unsqueeze(-1)
            value = x * self.numeric_weight + self.numeric_bias
            parts.append(torch.where(present.unsqueeze(-1), value, self.numeric_missing))
            masks.append(present)
        if self.cardinalities:
            ids = batch["categories"].long()
            parts.append(self.category_embedding(ids + self.category_offsets))
            masks.append(ids != MISSING_ID)
        tokens = torch.cat(parts, dim=1) + self.column_embedding
        mask = torch.cat(masks, dim=1)
        weights = mask.to(tokens.dtype)
        count = weights.sum(dim=1, keepdim=True)
        # Rows with nothing present fall back to the mean of all (missing) tokens.
        weights = torch.where(count > 0, weights, torch.ones_like(weights))
        pooled = (tokens * weights.unsqueeze(-1)).sum(1) / weights.sum(1, keepdim=True)
        return tokens, mask, pooled


def tabular_module_for(preprocessor: TabularPreprocessor, dim: int) -> TabularEncoderModule:
    """A :class:`TabularEncoderModule` sized for a fitted preprocessor."""
    return TabularEncoderModule(len(preprocessor.numeric), preprocessor.cardinalities_, dim)

"""The label: which problem it poses, how it is encoded, and what is wrong with it.

* :func:`infer_problem` guesses binary / multiclass / regression from the label's values.
* :func:`prepare_target` validates the label column (present, not constant, every class
  splittable), drops rows whose label is missing and says so, and fits a :class:`Target`.
* :class:`Target` maps labels to what the network learns (class ids; standardised, optionally
  log-transformed regression targets) and back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from polymodal.errors import ConfigError, InputError, SkippedRow

PROBLEMS = ("binary", "multiclass", "regression")
# An integer-valued label with at most this many distinct values is a class label.
MAX_INTEGER_CLASSES = 20
MISSING_LABEL = "label is missing"


def infer_problem(y: pd.Series) -> str:
    """``binary`` for two distinct values, ``multiclass`` for a few distinct non-numbers or
    integers (at most 20), ``regression`` for other numbers. Missing values are ignored.
    """
    values = y.dropna()
    n_unique = values.nunique()
    if n_unique == 2:
        return "binary"
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.notna().all() and n_unique > MAX_INTEGER_CLASSES:
            return "regression"  # numbers written as text
        return "multiclass"
    as_float = values.to_numpy(dtype=np.float64)
    integral = bool(np.all(np.isfinite(as_float)) and np.all(as_float == np.round(as_float)))
    if integral and n_unique <= MAX_INTEGER_CLASSES:
        return "multiclass"
    return "regression"


@dataclass
class Target:
    """How labels become network targets and predictions become labels again.

    Classification: ``classes`` in a fixed order (sorted), targets are their indices.
    Regression: ``z = (f(y) - center) / scale`` with ``f = log`` when ``log`` else identity.
    """

    problem: str
    classes: list[Any] = field(default_factory=list)
    center: float = 0.0
    scale: float = 1.0
    log: bool = False

    @property
    def is_classification(self) -> bool:
        return self.problem != "regression"

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.is_classification else 1

    def encode(self, y: pd.Series) -> np.ndarray:
        """Class indices (int64) or standardised targets (float32); every value must be known."""
        if self.is_classification:
            lookup = {_key(c): i for i, c in enumerate(self.classes)}
            keys = [_key(v) for v in _clean_labels(y).tolist()]
            unknown = sorted({str(k) for k in keys if k not in lookup})
            if unknown:
                raise ConfigError(
                    f"label values not seen in training: {', '.join(unknown[:10])}; "
                    f"the model knows {', '.join(map(str, self.classes))}"
                )
            return np.asarray([lookup[k] for k in keys], dtype=np.int64)
        values = _numeric_labels(y, str(y.name))
        if self.log:
            values = np.log(values)
        return ((values - self.center) / self.scale).astype(np.float32)

    def decode_regression(self, z: np.ndarray) -> np.ndarray:
        """Network outputs (standardised) -> values on the label's own scale."""
        values = np.asarray(z, dtype=np.float64) * self.scale + self.center
        return np.exp(values) if self.log else values

    def labels(self, indices: np.ndarray) -> np.ndarray:
        """Class indices -> the original class values."""
        return np.asarray(self.classes, dtype=object)[indices].astype(_common_type(self.classes))

    def to_dict(self) -> dict[str, Any]:
        return {
            "problem": self.problem,
            "classes": [_jsonable(c) for c in self.classes],
            "center": self.center,
            "scale": self.scale,
            "log": self.log,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Target:
        return cls(
            data["problem"], list(data["classes"]), data["center"], data["scale"], data["log"]
        )


@dataclass
class PreparedLabel:
    """A validated label: the fitted target, the rows that have a label, what was dropped."""

    target: Target
    rows: np.ndarray  # indices (into the frame) of rows with a label
    y: np.ndarray  # encoded targets of those rows
    skipped: list[SkippedRow]
    notes: list[str]


def prepare_target(
    frame: pd.DataFrame,
    label: str,
    *,
    problem: str | None = None,
    log_target: bool | None = None,
    stratify: bool = True,
) -> PreparedLabel:
    """Validate ``frame[label]`` and fit a :class:`Target` on the rows that have a label.

    Rows whose label is missing are reported as skipped with the reason ``"label is missing"``.
    With ``stratify`` (a validation split will be drawn from these rows) a class with a single
    row is an error that names the class and the row. ``log_target=None`` chooses a log target
    for strictly positive, right-skewed regression labels (prices).
    """
    check_label_column(frame, label)
    if problem is not None and problem not in PROBLEMS:
        raise ConfigError(f"problem {problem!r} is not one of {', '.join(PROBLEMS)}")
    check_finite_labels(frame[label])
    y_all = _clean_labels(frame[label])
    has_label = y_all.notna().to_numpy()
    skipped = [SkippedRow(int(r), label, MISSING_LABEL) for r in np.flatnonzero(~has_label)]
    notes = []
    if skipped:
        notes.append(f"{len(skipped):,} rows dropped from training: {MISSING_LABEL}")
    rows = np.flatnonzero(has_label)
    y = y_all.iloc[rows].reset_index(drop=True).rename(label)
    if len(y) == 0:
        raise ConfigError(f"label column {label!r} is empty in every row")
    if y.nunique() < 2:
        raise ConfigError(
            f"label column {label!r} has the same value ({y.iloc[0]!r}) in every row that has a "
            "label: there is nothing to learn"
        )
    problem = problem or infer_problem(y)
    if problem == "regression":
        target = _fit_regression(y, label, log_target)
        if target.log:
            notes.append(f"label {label!r}: predicting log({label}) (positive and right-skewed)")
    else:
        classes = sorted(pd.unique(y).tolist(), key=_sort_key)
        if problem == "binary" and len(classes) != 2:
            raise ConfigError(
                f"problem 'binary' needs two classes; label {label!r} has {len(classes)}: "
                + ", ".join(map(repr, classes[:10]))
            )
        target = Target(problem, classes)
        if stratify:
            _check_class_sizes(y, rows, label)
    return PreparedLabel(target, rows, target.encode(y), skipped, notes)


def check_finite_labels(labels: pd.Series) -> None:
    """An InputError naming the first row whose label is an infinite number.

    A missing label (NaN, blank) is skipped and reported; an infinity is not missing but a
    broken value (a division by zero upstream), so it stops the run rather than being guessed at.
    """
    if pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels):
        values = labels.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isinf(values)
    else:
        bad = np.array([isinstance(v, float | np.floating) and np.isinf(v) for v in labels])
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"label is not a finite number ({labels.iloc[row]})", row=row, column=str(labels.name)
        )


def check_label_column(frame: pd.DataFrame, label: str) -> None:
    """A ConfigError listing the table's columns when ``label`` is not one of them."""
    if label not in frame.columns:
        raise ConfigError(
            f"label column {label!r} is not in the table; its columns are: "
            + ", ".join(map(repr, frame.columns))
        )


def stratified_split(
    y: np.ndarray, fraction: float, seed: int, *, classification: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (train, val) into ``y``; per class when ``classification``, every class in both.

    Classes need at least two rows (see :func:`prepare_target`).
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"val_fraction must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    n = len(y)
    if not classification:
        order = rng.permutation(n)
        n_val = min(max(1, round(fraction * n)), n - 1)
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    val_parts = []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        n_val = min(max(1, round(fraction * len(members))), len(members) - 1)
        val_parts.append(members[:n_val])
    val = np.sort(np.concatenate(val_parts))
    train = np.setdiff1d(np.arange(n), val)
    return train, val


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Balanced weights ``n / (K * count_k)``: each class carries the same total weight."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
    return weights.astype(np.float32)


def _fit_regression(y: pd.Series, label: str, log_target: bool | None) -> Target:
    values = _numeric_labels(y, label)
    if log_target is None:
        log_target = _wants_log(values)
    elif log_target and values.min() <= 0:
        raise ConfigError(f"log_target needs a positive label; {label!r} has {values.min():g}")
    if log_target:
        values = np.log(values)
    center = float(np.mean(values))
    scale = float(np.std(values)) or 1.0
    return Target("regression", [], center, scale, bool(log_target))


def _wants_log(values: np.ndarray) -> bool:
    """Strictly positive and right-skewed (skewness > 1), with the log less skewed."""
    if values.min() <= 0:
        return False
    before = _skewness(values)
    return before > 1.0 and abs(_skewness(np.log(values))) < before


def _skewness(x: np.ndarray) -> float:
    std = x.std()
    return float(np.mean(((x - x.mean()) / std) ** 3)) if std > 0 else 0.0


def _check_class_sizes(y: pd.Series, rows: np.ndarray, label: str) -> None:
    counts = y.value_counts()
    lonely = [c for c, n in counts.items() if n < 2]
    if lonely:
        where = ", ".join(
            f"class {c!r} (row {int(rows[np.flatnonzero((y == c).to_numpy())[0]])})"
            for c in lonely[:10]
        )
        raise ConfigError(
            f"label {label!r}: {where} has only one row, so it cannot be in both the training "
            "and the validation split; remove the row, add examples, or pass a validation table"
        )


def _clean_labels(y: pd.Series) -> pd.Series:
    """Labels with blanks as missing and whole floats as ints (a NaN turns int columns float)."""
    if pd.api.types.is_float_dtype(y):
        finite = y[np.isfinite(y.to_numpy(dtype=np.float64, na_value=np.nan))]
        if len(finite) and np.all(finite.to_numpy() == np.round(finite.to_numpy())):
            return y.astype("Int64").astype(object).where(y.notna(), None)
        return y.where(np.isfinite(y.to_numpy(dtype=np.float64, na_value=np.nan)), None)
    if pd.api.types.is_object_dtype(y) or pd.api.types.is_string_dtype(y):
        stripped = y.map(lambda v: v.strip() if isinstance(v, str) else v)
        blank = stripped.isna() | (stripped.astype(str) == "")
        return stripped.astype(object).where(~blank, None)
    return y


def _numeric_labels(y: pd.Series, label: str) -> np.ndarray:
    values = pd.to_numeric(y, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ConfigError(
            f"regression label {label!r} has a value that is not a finite number: "
            f"{y.iloc[first]!r} (position {first})"
        )
    return values


def _key(value: Any) -> Any:
    """A hashable key under which 1, 1.0 and numpy's 1 meet."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _sort_key(value: Any) -> tuple[int, Any]:
    value = _key(value)
    if isinstance(value, bool | int | float):
        return (0, value)
    return (1, str(value))


def _jsonable(value: Any) -> Any:
    value = _key(value)
    return value if isinstance(value, str | int | float | bool) else str(value)


def _common_type(classes: Sequence[Any]) -> type:
    keys = [_key(c) for c in classes]
    if all(isinstance(k, bool) for k in keys):
        return bool
    if all(isinstance(k, int) and not isinstance(k, bool) for k in keys):
        return np.int64
    if all(isinstance(k, int | float) and not isinstance(k, bool) for k in keys):
        return np.float64
    return object

"""How a model's score falls as a growing share of rows loses one modality group."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

ScoreFn = Callable[[dict[str, np.ndarray]], float]


class UndefinedScoreError(ValueError):
    """``score_fn`` returned NaN or an infinity: the metric is undefined on these rows."""


ROBUSTNESS_COLUMNS = ["group", "fraction", "n_dropped", "missing", "score"]


def robustness_curve(
    score_fn: ScoreFn,
    groups: Iterable[str],
    n_rows: int,
    fractions: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    seed: int = 0,
    *,
    present: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Score with each group forced absent from each fraction of the rows, one group at a time.

    ``score_fn(drop)`` gets one (n_rows,) bool mask per group (True: force that group absent in
    that row; every other group's mask is all False) and returns the score. The dropped rows come
    from one seeded shuffle shared by every group and nested across fractions (the rows dropped
    at 25% are among those dropped at 50%), so the curves differ only by the group dropped.

    Columns: ``group``, ``fraction`` (asked), ``n_dropped``, ``missing`` (share of rows where the
    group is absent after the drop, counting rows where ``present`` says it was already absent;
    without ``present`` the group is taken as present everywhere), ``score``. The all-present
    score is computed once and reused for fraction 0.
    """
    names = list(groups)
    if not names:
        raise ValueError("robustness_curve needs at least one group")
    if n_rows < 1:
        raise ValueError(f"n_rows must be >= 1, got {n_rows}")
    bad = [f for f in fractions if not 0.0 <= f <= 1.0]
    if bad:
        raise ValueError(f"fractions must lie in [0, 1], got {bad}")
    already_absent = {g: _absent(present, g, n_rows) for g in names}

    order = np.random.default_rng(seed).permutation(n_rows)
    nothing = {g: np.zeros(n_rows, dtype=bool) for g in names}
    scores: dict[int, float] = {}  # by n_dropped, for the shared n_dropped == 0 case
    rows = []
    for group in names:
        for fraction in fractions:
            k = math.floor(fraction * n_rows + 0.5)
            mask = np.zeros(n_rows, dtype=bool)
            mask[order[:k]] = True
            if k == 0:
                if 0 not in scores:
                    scores[0] = _score(score_fn, nothing)
                score = scores[0]
            else:
                score = _score(score_fn, nothing | {group: mask})
            missing = float((mask | already_absent[group]).mean())
            rows.append((group, float(fraction), k, missing, score))
    return pd.DataFrame(rows, columns=ROBUSTNESS_COLUMNS)


def _absent(present: Mapping[str, np.ndarray] | None, group: str, n_rows: int) -> np.ndarray:
    if present is None or group not in present:
        return np.zeros(n_rows, dtype=bool)
    mask = np.asarray(present[group], dtype=bool)
    if mask.shape != (n_rows,):
        raise ValueError(f"present[{group!r}] must have shape ({n_rows},), got {mask.shape}")
    return ~mask


def _score(score_fn: ScoreFn, drop: dict[str, np.ndarray]) -> float:
    # Each call gets its own copies so a score_fn that edits masks cannot leak into other runs.
    score = float(score_fn({g: m.copy() for g, m in drop.items()}))
    if not math.isfinite(score):
        raise UndefinedScoreError(f"score_fn returned {score} for drop counts {_counts(drop)}")
    return score


def _counts(drop: dict[str, np.ndarray]) -> dict[str, int]:
    return {g: int(m.sum()) for g, m in drop.items()}

"""Cross-modal retrieval metrics (Recall@K both ways) with 95% confidence intervals.

Row i of ``a`` and row i of ``b`` are a pair. With ``groups``, every row sharing row i's group id
is a correct match too (a caption repeated for several images, several captions per image).
Ties count against the query: a positive is ranked behind every negative scoring at least as
high, so a model that maps everything to one point scores R@1 = 0, not 100%.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054
_CHUNK = 1024  # queries scored at once: bounds memory at CHUNK x N floats


@dataclass(frozen=True)
class Estimate:
    """A proportion with its 95% Wilson interval."""

    value: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{100 * self.value:.1f}% [{100 * self.low:.1f}, {100 * self.high:.1f}]"

    def to_dict(self) -> dict[str, float | int]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def wilson_interval(successes: int, n: int, *, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when ``n`` is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion(successes: int, n: int) -> Estimate:
    """``successes / n`` with its 95% Wilson interval."""
    low, high = wilson_interval(successes, n)
    return Estimate(successes / n if n else float("nan"), low, high, n)


def duplicate_groups(*keys: Sequence[Hashable] | np.ndarray) -> np.ndarray:
    """Group ids joining rows that share a key on any side (union-find over duplicates).

    Each argument gives one key per row (a string, or an array whose rows are compared
    exactly). Two rows with the same image or the same caption end in one group.
    """
    n = len(keys[0])
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for side in keys:
        if len(side) != n:
            raise ValueError("every side needs one key per row")
        first: dict[Hashable, int] = {}
        for i, key in enumerate(_hashable_rows(side)):
            j = first.setdefault(key, i)
            if j != i:
                parent[find(i)] = find(j)
    roots = np.array([find(i) for i in range(n)])
    return np.unique(roots, return_inverse=True)[1].astype(np.int64)


def _hashable_rows(side: Sequence[Hashable] | np.ndarray) -> Iterable[Hashable]:
    if isinstance(side, np.ndarray) and side.ndim == 2:
        contiguous = np.ascontiguousarray(side)
        return (row.tobytes() for row in contiguous)
    return iter(side)


def ranks(
    queries: np.ndarray,
    gallery: np.ndarray,
    *,
    query_groups: np.ndarray | None = None,
    gallery_groups: np.ndarray | None = None,
) -> np.ndarray:
    """1-based rank of the best-scoring positive for each query (dot-product similarity).

    Without groups, query i's only positive is gallery item i.
    """
    n_q, n_g = len(queries), len(gallery)
    if query_groups is None or gallery_groups is None:
        if n_q != n_g:
            raise ValueError("without groups, queries and gallery must pair row by row")
        query_groups = gallery_groups = np.arange(n_q)
    out = np.empty(n_q, dtype=np.int64)
    q = np.asarray(queries, dtype=np.float32)
    g = np.asarray(gallery, dtype=np.float32)
    for start in range(0, n_q, _CHUNK):
        scores = q[start : start + _CHUNK] @ g.T
        pos = query_groups[start : start + _CHUNK, None] == gallery_groups[None, :]
        if not pos.any(axis=1).all():
            raise ValueError("a query has no positive in the gallery")
        best = np.where(pos, scores, -np.inf).max(axis=1, keepdims=True)
        ahead = (~pos) & (scores >= best)
        out[start : start + len(scores)] = 1 + ahead.sum(axis=1)
    return out


def recall_at(rank: np.ndarray, ks: Sequence[int]) -> dict[str, Estimate | float]:
    """R@K for each K with CIs, plus the median rank and mean reciprocal rank."""
    n = len(rank)
    out: dict[str, Estimate | float] = {f"R@{k}": proportion(int((rank <= k).sum()), n) for k in ks}
    out["median_rank"] = float(np.median(rank)) if n else float("nan")
    out["mrr"] = float(np.mean(1.0 / rank)) if n else float("nan")
    return out


def retrieval_metrics(
    a: np.ndarray,
    b: np.ndarray,
    *,
    ks: Sequence[int] = (1, 5, 10),
    groups: np.ndarray | None = None,
) -> dict[str, object]:
    """Recall@K from ``a`` to ``b`` and back, on unit vectors (row i of each is a pair).

    Returns ``{"n", "a_to_b": {...}, "b_to_a": {...}, "mean_R@1"}``, each direction holding
    :class:`Estimate` values ``R@K`` and the floats ``median_rank`` and ``mrr``.
    """
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{a.shape[0]} rows on one side and {b.shape[0]} on the other")
    if a.shape[0] == 0:
        raise ValueError("no pairs to evaluate")
    g = np.arange(len(a)) if groups is None else np.asarray(groups)
    r_ab = ranks(a, b, query_groups=g, gallery_groups=g)
    r_ba = ranks(b, a, query_groups=g, gallery_groups=g)
    mean_r1 = 0.5 * float(np.mean(r_ab == 1) + np.mean(r_ba == 1))
    return {
        "n": len(a),
        "gallery": len(np.unique(g)),  # distinct answers: R@K is 100% from here on
        "a_to_b": recall_at(r_ab, ks),
        "b_to_a": recall_at(r_ba, ks),
        "mean_R@1": mean_r1,
    }


def format_metrics(
    metrics: dict[str, object], *, a: str = "a", b: str = "b", what: str = "held-out pairs"
) -> str:
    """Readable lines: how many of ``what`` were scored, then R@K with intervals each way."""
    gallery = int(metrics.get("gallery", metrics["n"]))  # type: ignore[call-overload]
    lines = [f"{metrics['n']} {what}"]
    trivial: list[str] = []
    for key, label in (("a_to_b", f"{a} -> {b}"), ("b_to_a", f"{b} -> {a}")):
        part = metrics[key]
        assert isinstance(part, dict)
        cells = []
        for k, v in part.items():
            if not isinstance(v, Estimate):
                continue
            if int(k.removeprefix("R@")) >= gallery:
                if k not in trivial:
                    trivial.append(k)
                continue
            cells.append(f"{k} {v}")
        cells.append(f"median rank {part['median_rank']:g}")
        lines.append(f"  {label}: " + ", ".join(cells))
    if trivial:
        lines.append(
            f"  ({', '.join(trivial)} left out: with {gallery} distinct answers every "
            "query finds its own within them)"
        )
    return "\n".join(lines)

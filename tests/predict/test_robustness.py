"""Robustness curves: which rows are dropped, for which group, and what gets recorded."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest

from polymodal.predict.robustness import ROBUSTNESS_COLUMNS, robustness_curve

GROUPS = ["image", "tabular", "text"]


def test_each_group_is_dropped_alone_from_the_asked_fraction() -> None:
    seen: list[dict[str, np.ndarray]] = []

    def score(drop: dict[str, np.ndarray]) -> float:
        seen.append(drop)
        # A model that loses 0.4 per fully dropped image, 0.1 per tabular, nothing for text.
        return 0.9 - 0.4 * drop["image"].mean() - 0.1 * drop["tabular"].mean()

    curve = robustness_curve(score, GROUPS, n_rows=100)
    assert list(curve.columns) == ROBUSTNESS_COLUMNS
    assert len(curve) == 3 * 5
    assert len(seen) == 1 + 3 * 4  # the all-present score is shared
    for drop in seen:
        assert set(drop) == set(GROUPS)
        assert sum(m.any() for m in drop.values()) <= 1
    image = curve[curve.group == "image"]
    np.testing.assert_allclose(image.score, [0.9, 0.8, 0.7, 0.6, 0.5])
    np.testing.assert_array_equal(image.n_dropped, [0, 25, 50, 75, 100])
    np.testing.assert_allclose(curve[curve.group == "text"].score, 0.9)
    np.testing.assert_allclose(curve[curve.group == "tabular"].score.iloc[-1], 0.8)


def test_dropped_rows_are_seeded_nested_and_shared_by_groups() -> None:
    def record(store: list[np.ndarray]) -> Callable[[dict[str, np.ndarray]], float]:
        def score(drop: dict[str, np.ndarray]) -> float:
            store.extend(m.copy() for m in drop.values() if m.any())
            return 0.0

        return score

    a: list[np.ndarray] = []
    b: list[np.ndarray] = []
    c: list[np.ndarray] = []
    robustness_curve(record(a), GROUPS, n_rows=40, seed=1)
    robustness_curve(record(b), GROUPS, n_rows=40, seed=1)
    robustness_curve(record(c), GROUPS, n_rows=40, seed=2)
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert not all((x == y).all() for x, y in zip(a, c, strict=True))
    image = a[:4]  # 25%, 50%, 75%, 100% for the first group
    assert all((small <= big).all() for small, big in itertools.pairwise(image))
    assert [int(m.sum()) for m in image] == [10, 20, 30, 40]
    assert (a[4] == a[0]).all()  # the next group loses the same rows
    assert not (image[0] == (np.arange(40) < 10)).all()  # shuffled, not the first rows


def test_missing_counts_rows_already_absent() -> None:
    present = {"image": np.arange(8) % 2 == 0}  # absent in half the rows already
    curve = robustness_curve(
        lambda d: 1.0, ["image", "text"], n_rows=8, fractions=(0.0, 0.5, 1.0), present=present
    )
    image = curve[curve.group == "image"]
    assert image.missing.iloc[0] == 0.5
    assert 0.5 <= image.missing.iloc[1] <= 1.0
    assert image.missing.iloc[2] == 1.0
    np.testing.assert_allclose(curve[curve.group == "text"].missing, [0.0, 0.5, 1.0])


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        robustness_curve(lambda d: 0.0, GROUPS, 10, fractions=(0.0, 1.5))
    with pytest.raises(ValueError, match="at least one group"):
        robustness_curve(lambda d: 0.0, [], 10)
    with pytest.raises(ValueError, match="nan"):
        robustness_curve(lambda d: float("nan"), GROUPS, 10)
    with pytest.raises(ValueError, match="shape"):
        robustness_curve(lambda d: 0.0, GROUPS, 10, present={"image": np.ones(3, bool)})

"""Retrieval metrics against hand-computed rankings: ties, several positives, intervals."""

from __future__ import annotations

import numpy as np
import pytest

from polymodal.align.retrieval import (
    Estimate,
    duplicate_groups,
    format_metrics,
    ranks,
    retrieval_metrics,
    wilson_interval,
)


def test_ranks_by_hand() -> None:
    # Query 0's positive (gallery 0) is beaten by gallery 2; query 1 ranks first; query 2's
    # positive scores 0.5, beaten by 0.9 and 0.7 -> rank 3.
    scores = np.array([[0.5, 0.1, 0.8], [0.2, 0.9, 0.3], [0.9, 0.7, 0.5]], dtype=np.float32)
    # Scores as dot products: queries are the score rows, gallery the identity.
    r = ranks(scores, np.eye(3, dtype=np.float32))
    assert r.tolist() == [2, 1, 3]


def test_ties_count_against_the_query() -> None:
    # All equal: every positive ties with every negative -> ranked last.
    r = ranks(np.ones((4, 2), np.float32), np.ones((4, 2), np.float32))
    assert r.tolist() == [4, 4, 4, 4]
    m = retrieval_metrics(np.ones((4, 2)), np.ones((4, 2)), ks=(1, 4))
    assert m["a_to_b"]["R@1"].value == 0.0
    assert m["a_to_b"]["R@4"].value == 1.0


def test_several_positives_take_the_best_one() -> None:
    # Gallery 0 and 1 are both positives of queries 0 and 1 (a caption repeated).
    q = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    g = np.array([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    groups = np.array([0, 0, 1])
    r = ranks(q, g, query_groups=groups, gallery_groups=groups)
    # Query 0: positives score 0.0 and 1.0 -> best 1.0 is first. Query 2: its positive (0.8)
    # is beaten by gallery 0 (1.0) -> rank 2.
    assert r.tolist() == [1, 1, 2]
    # Without groups query 0's only positive (gallery 0, score 0) is behind 1.0 and 0.6.
    assert ranks(q, g).tolist() == [3, 1, 2]


def test_both_directions_and_intervals() -> None:
    a = np.eye(10, dtype=np.float32)
    b = a.copy()
    b[3] = a[4]  # pair 3 of b now looks like pair 4: a3 and b3 are both lost
    m = retrieval_metrics(a, b, ks=(1, 5))
    assert m["n"] == 10
    fwd, back = m["a_to_b"], m["b_to_a"]
    assert isinstance(fwd["R@1"], Estimate)
    # a -> b: a3 scores 0 with everything, so its positive ties with all 9 negatives (rank
    # 10); a4 scores 1 with b3 and b4 (tie -> rank 2). b -> a: b3 (= e4) prefers a4 (rank 2);
    # b4 finds a4 alone on top.
    assert fwd["R@1"].value == pytest.approx(0.8)
    assert back["R@1"].value == pytest.approx(0.9)
    assert m["mean_R@1"] == pytest.approx(0.85)
    assert fwd["R@5"].value == pytest.approx(0.9)
    assert fwd["median_rank"] == 1.0
    low, high = wilson_interval(8, 10)
    assert (fwd["R@1"].low, fwd["R@1"].high) == pytest.approx((low, high))
    assert "R@1 80.0%" in format_metrics(m)


def test_wilson_interval_known_values() -> None:
    # Reference values (Newcombe 1998, Table I): 81/263 -> 0.2553, 0.3662.
    low, high = wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=5e-4)
    assert high == pytest.approx(0.3662, abs=5e-4)
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_duplicate_groups_join_rows_sharing_either_side() -> None:
    images = ["x", "y", "x", "z", "w"]
    captions = ["cat", "dog", "kitten", "dog", "bird"]
    g = duplicate_groups(images, captions)
    # 0 and 2 share an image, 1 and 3 share a caption; 4 is alone.
    assert g[0] == g[2] and g[1] == g[3]
    assert len({g[0], g[1], g[4]}) == 3
    arrays = duplicate_groups(np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 4.0]]))
    assert arrays.tolist() == [0, 0, 1]


def test_mismatched_sides_are_refused() -> None:
    with pytest.raises(ValueError, match="rows"):
        retrieval_metrics(np.eye(3), np.eye(4)[:, :3][:2])

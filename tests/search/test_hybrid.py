"""Reciprocal rank fusion of rankings with no common score scale."""

from __future__ import annotations

from dataclasses import dataclass

from polymodal.search.hybrid import reciprocal_rank_fusion


@dataclass(frozen=True)
class R:
    id: str
    path: str


def test_an_item_in_both_rankings_beats_the_top_of_one() -> None:
    a, b, c = R("a", "a.png"), R("b", "b.png"), R("c", "c.png")
    fused = reciprocal_rank_fusion([[a, b], [c, b]])
    assert fused[0] == b  # 1/62 + 1/62 > 1/61
    assert fused[1:] == [a, c]  # equal fused scores: by path


def test_the_first_version_of_an_item_is_kept() -> None:
    first, second = R("x", "first"), R("x", "second")
    assert reciprocal_rank_fusion([[first], [second]]) == [first]

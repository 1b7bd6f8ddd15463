"""Merging rankings that share no score scale (cosine similarity, BM25) into one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar


class Ranked(Protocol):
    """What fusion needs of a result: an identity and a path to break ties."""

    @property
    def id(self) -> str: ...

    @property
    def path(self) -> str: ...


RRF_K = 60  # reciprocal rank fusion's constant, as in the paper

T = TypeVar("T", bound=Ranked)


def reciprocal_rank_fusion(rankings: Sequence[Sequence[T]], *, k: int = RRF_K) -> list[T]:
    """Items of every ranking ordered by the sum of 1 / (k + rank) over the rankings that hold
    them (Cormack et al. 2009); an item keeps the first version of itself seen. Ties go by path.
    """
    fused: dict[str, float] = {}
    first: dict[str, T] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking):
            fused[hit.id] = fused.get(hit.id, 0.0) + 1.0 / (k + rank + 1)
            first.setdefault(hit.id, hit)
    return sorted(first.values(), key=lambda h: (-fused[h.id], h.path))

"""The one function that builds a fusion module by kind, with flat parameters."""

from __future__ import annotations

from collections.abc import Sequence

from polymodal.errors import ConfigError
from polymodal.fusion.base import FusionModule, SlotSpec
from polymodal.fusion.early import EarlyFusion
from polymodal.fusion.hybrid import HybridFusion
from polymodal.fusion.late import LateFusion

FUSION_KINDS = ("early", "late", "hybrid", "linear")
# Width of each slot's bottleneck in linear fusion: small, as it is meant for small tables.
LINEAR_SLOT_WIDTH = 32


def build_fusion(
    kind: str,
    slots: Sequence[SlotSpec],
    *,
    n_outputs: int,
    hidden: int = 256,
    dropout: float = 0.1,
    depth: int = 2,
    heads: int = 4,
    tokens: str = "pooled",
    max_tokens: int = 16,
    late_combiner: str = "weights",
) -> FusionModule:
    """Build the ``kind`` fusion over ``slots``.

    ``n_outputs`` is used only by late fusion, which ends in predictions; ``depth`` counts MLP
    layers for early fusion and transformer layers for hybrid fusion; "linear" is early fusion
    with no hidden layer, each slot squeezed to at most 32 dimensions, dropout at least 0.25;
    ``heads``, ``tokens`` and ``max_tokens`` concern hybrid fusion only.
    """
    if kind == "linear":
        width = min(hidden, LINEAR_SLOT_WIDTH)
        return EarlyFusion(slots, hidden=width, dropout=max(dropout, 0.25), depth=0)
    if kind == "early":
        return EarlyFusion(slots, hidden=hidden, dropout=dropout, depth=depth)
    if kind == "late":
        return LateFusion(
            slots, n_outputs=n_outputs, hidden=hidden, dropout=dropout, combiner=late_combiner
        )
    if kind == "hybrid":
        return HybridFusion(
            slots,
            hidden=hidden,
            dropout=dropout,
            depth=depth,
            heads=heads,
            tokens=tokens,
            max_tokens=max_tokens,
        )
    raise ConfigError(f"unknown fusion {kind!r}; choose one of {', '.join(FUSION_KINDS)}")

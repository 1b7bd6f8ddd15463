"""Early fusion: project each slot's pooled vector, concatenate, then an MLP.

Simple and strong when every slot carries a compact summary: the MLP sees all slots at once, so it
can learn interactions between them (which late fusion, a weighted sum of per-slot predictions,
cannot).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from polymodal.errors import ConfigError
from polymodal.fusion.base import (
    FusionModule,
    SlotBatch,
    SlotSpec,
    check_specs,
    gather_slots,
    zero_where_absent,
)
from polymodal.fusion.dropout import Dropout


def slot_projection(width: int, dim: int) -> nn.Sequential:
    """LayerNorm + Linear from a slot's ``width`` to ``dim``.

    A one-wide input skips the LayerNorm, which would map every value to the same constant.
    """
    norm: nn.Module = nn.LayerNorm(width) if width > 1 else nn.Identity()
    return nn.Sequential(norm, nn.Linear(width, dim))


def learned_missing(rows: int, dim: int) -> nn.Parameter:
    """Parameters standing in for absent inputs, initialised small like timm's embeddings."""
    param = nn.Parameter(torch.empty(rows, dim))
    nn.init.trunc_normal_(param, std=0.02)
    return param


class EarlyFusion(FusionModule):
    """Per-slot LayerNorm + Linear to ``hidden``; an absent slot takes its learned missing vector;
    the concatenation goes through ``depth`` layers of Linear, GELU, dropout.

    ``depth=0`` is a linear model: the concatenated projections (after dropout) are the output,
    ``out_dim = hidden * len(slots)``, and the predictor's head is linear in them. Each slot then
    reaches the output through a rank-``hidden`` bottleneck, so a 1280-wide photo slot gets no
    more say than a 4-number tabular slot — what small tables need.
    """

    def __init__(
        self,
        slots: Sequence[SlotSpec],
        *,
        hidden: int = 256,
        dropout: float = 0.1,
        depth: int = 2,
    ) -> None:
        super().__init__()
        if depth < 0:
            raise ConfigError(f"early fusion needs depth >= 0, got {depth}")
        self.slots = check_specs(slots)
        self.project = nn.ModuleList(slot_projection(s.width, hidden) for s in self.slots)
        self.missing = learned_missing(len(self.slots), hidden)
        layers: list[nn.Module] = [Dropout(dropout)]
        width = hidden * len(self.slots)
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.GELU(), Dropout(dropout)]
            width = hidden
        self.out_dim = width
        self.mlp = nn.Sequential(*layers)

    def forward(self, inputs: Mapping[str, SlotBatch]) -> torch.Tensor:
        parts = []
        for i, batch in enumerate(gather_slots(self.slots, inputs)):
            keep = batch.present.unsqueeze(-1)
            projected = self.project[i](zero_where_absent(batch.pooled, batch.present))
            parts.append(torch.where(keep, projected, self.missing[i]))
        return self.mlp(torch.cat(parts, dim=-1))

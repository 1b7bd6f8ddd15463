"""The contract every fusion module follows.

A fusion maps a dict of per-input tensors — one :class:`SlotBatch` per input *slot* (a media or
text column, or all tabular columns together) with a presence mask — to one tensor (B, out_dim).
Absent slots are replaced inside the fusion by learned missing tokens, so an absent slot's values
can never change the output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from polymodal.modality import Modality


@dataclass(frozen=True)
class SlotSpec:
    """What one input slot delivers: pooled width, token width, and its modality."""

    name: str
    modality: Modality
    width: int
    token_width: int
    max_tokens: int = 1  # 1 = pooled only


@dataclass
class SlotBatch:
    """One slot's tensors for a batch of B rows."""

    pooled: torch.Tensor  # (B, width)
    present: torch.Tensor  # (B,) bool: the slot has a value in this row
    tokens: torch.Tensor | None = None  # (B, T, token_width)
    token_mask: torch.Tensor | None = None  # (B, T) bool

    def to(self, device: torch.device | str) -> SlotBatch:
        return SlotBatch(
            self.pooled.to(device),
            self.present.to(device),
            None if self.tokens is None else self.tokens.to(device),
            None if self.token_mask is None else self.token_mask.to(device),
        )


class FusionModule(nn.Module):
    """``forward(inputs: Mapping[slot name, SlotBatch]) -> (B, out_dim)``.

    ``produces_outputs`` is True when the fusion already ends in predictions (late fusion combines
    per-slot predictions); the predictor then adds no head of its own.
    """

    out_dim: int
    produces_outputs: bool = False

    def forward(self, inputs: Mapping[str, SlotBatch]) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

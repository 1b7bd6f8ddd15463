"""Late fusion: one small prediction head per slot, then a learned combination of the predictions.

Two combiners:

- ``"weights"``: a softmax over one learned logit per slot, renormalised in every row over the
  slots present there, so a missing slot neither votes nor dilutes the others. A row with no slot
  present falls back to the learned per-slot missing outputs, weighted over all slots.
- ``"stacking"``: a Linear layer over the concatenated per-slot predictions, where an absent slot's
  prediction is replaced by its learned missing output.

Per-slot predictions are summed, so late fusion cannot model interactions between slots; it is the
robust, interpretable baseline the other fusions must beat.
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
from polymodal.fusion.early import slot_projection

COMBINERS = ("weights", "stacking")


class LateFusion(FusionModule):
    """Per-slot MLP heads to ``n_outputs``, combined by learned weights or stacking."""

    produces_outputs = True

    def __init__(
        self,
        slots: Sequence[SlotSpec],
        *,
        n_outputs: int,
        hidden: int = 256,
        dropout: float = 0.1,
        combiner: str = "weights",
    ) -> None:
        super().__init__()
        if combiner not in COMBINERS:
            raise ConfigError(f"late fusion combiner must be one of {COMBINERS}, got {combiner!r}")
        if n_outputs < 1:
            raise ConfigError(f"late fusion needs n_outputs >= 1, got {n_outputs}")
        self.slots = check_specs(slots)
        self.combiner = combiner
        self.out_dim = n_outputs
        self.heads = nn.ModuleList(
            nn.Sequential(
                slot_projection(s.width, hidden),
                nn.GELU(),
                Dropout(dropout),
                nn.Linear(hidden, n_outputs),
            )
            for s in self.slots
        )
        # Zero: a missing slot starts by predicting nothing in particular.
        self.missing = nn.Parameter(torch.zeros(len(self.slots), n_outputs))
        if combiner == "weights":
            self.slot_logits = nn.Parameter(torch.zeros(len(self.slots)))
        else:
            self.stack = nn.Linear(len(self.slots) * n_outputs, n_outputs)

    def slot_outputs(self, inputs: Mapping[str, SlotBatch]) -> tuple[torch.Tensor, torch.Tensor]:
        """Each slot's prediction (B, S, n_outputs), the learned missing output where absent, and
        the presence mask (B, S)."""
        outs, present = [], []
        for i, batch in enumerate(gather_slots(self.slots, inputs)):
            out = self.heads[i](zero_where_absent(batch.pooled, batch.present))
            outs.append(torch.where(batch.present.unsqueeze(-1), out, self.missing[i]))
            present.append(batch.present)
        return torch.stack(outs, dim=1), torch.stack(present, dim=1)

    def forward(self, inputs: Mapping[str, SlotBatch]) -> torch.Tensor:
        outs, present = self.slot_outputs(inputs)
        if self.combiner == "stacking":
            return self.stack(outs.flatten(1))
        # Rows with no slot present vote with every slot's missing output instead of dividing by 0.
        use = present | ~present.any(dim=1, keepdim=True)
        logits = self.slot_logits.expand_as(use).masked_fill(~use, float("-inf"))
        weights = torch.softmax(logits, dim=1)
        return (weights.unsqueeze(-1) * outs).sum(dim=1)

    @torch.no_grad()
    def slot_weights(self) -> dict[str, float]:
        """Each slot's share of the combination, summing to 1.

        With ``"weights"``: the learned softmax over all slots (a row renormalises it over its
        present slots). With ``"stacking"``: each slot's share of the stacking layer's absolute
        weights — a rough guide only, as it ignores the scale of each slot's predictions.
        """
        if self.combiner == "weights":
            shares = torch.softmax(self.slot_logits, dim=0)
        else:
            n = self.out_dim
            per_slot = self.stack.weight.abs().reshape(n, len(self.slots), n).sum(dim=(0, 2))
            shares = per_slot / per_slot.sum()
        return {s.name: float(w) for s, w in zip(self.slots, shares, strict=True)}

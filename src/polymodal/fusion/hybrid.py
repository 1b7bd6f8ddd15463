"""Hybrid fusion: a small transformer over every slot's tokens, read out through a [CLS] token.

The joint sequence is ``[CLS] + for each slot: [missing_s, tokens_s ...]``:

- a slot contributes its token states (``tokens="sequence"``; long sequences average-pooled down to
  ``max_tokens``: in time for sequences, in space for square image grids) or its pooled vector as
  one token (``tokens="pooled"``), each projected to ``hidden`` by LayerNorm + Linear, plus a
  learned slot-type embedding that tells the attention which slot a token came from;
- ``missing_s`` is one learned token per slot, visible only in rows where the slot is absent (or
  has no unmasked token); there the slot's own tokens are hidden, so its values cannot matter;
- each of the ``depth`` pre-LN layers is multi-head self-attention over the whole joint sequence
  with a key mask hiding padding and absent slots, then a GELU MLP. Every token attends to every
  other slot's tokens, so this is cross-modal attention in its plainest form (as in VisualBERT or
  a single-stream ViLT). We chose it over per-slot bottleneck tokens because with tens of tokens
  the MLPs, not the attention, dominate the cost, and joint attention needs no extra design;
- the last layer updates only [CLS] (the rest would be discarded), whose final LayerNorm is the
  output, ``out_dim = hidden``.

[CLS] is always visible, so no attention row is ever fully masked and no NaN can appear. There is no
positional embedding: encoder token states already carry their positions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
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
from polymodal.fusion.early import learned_missing, slot_projection
from polymodal.modality import Modality

TOKEN_MODES = ("pooled", "sequence")


def pool_tokens(
    tokens: torch.Tensor, mask: torch.Tensor, max_tokens: int, *, grid: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Average ``tokens`` (B, T, D) down to at most ``max_tokens`` per row, ignoring masked ones.

    Sequences are cut into ``max_tokens`` equal runs of each row's *own* unmasked tokens, so a short
    clip padded to a long batch keeps its resolution. With ``grid=True`` and a square T the tokens
    are a row-major image grid, pooled to the largest square grid that fits (7x7 -> 4x4 for 16).
    Returns the pooled tokens and their mask (False where a bin held no unmasked token).
    """
    rows, length, dim = tokens.shape
    if length <= max_tokens:
        return tokens, mask
    tokens = zero_where_absent(tokens, mask)
    side = math.isqrt(length)
    if grid and side * side == length:
        out_side = math.isqrt(max_tokens)
        image = tokens.transpose(1, 2).reshape(rows, dim, side, side)
        weight = mask.to(tokens.dtype).reshape(rows, 1, side, side)
        summed = F.adaptive_avg_pool2d(image, out_side).flatten(2).transpose(1, 2)
        share = F.adaptive_avg_pool2d(weight, out_side).flatten(2).transpose(1, 2)
        pooled = torch.where(share > 0, summed / share.clamp_min(1e-12), 0.0)
        return pooled, share.squeeze(-1) > 0
    count = mask.sum(dim=1, keepdim=True).clamp_min(1)
    rank = mask.cumsum(dim=1) - 1
    bins = torch.where(mask, rank * max_tokens // count, 0)
    summed = tokens.new_zeros(rows, max_tokens, dim)
    summed.scatter_add_(1, bins.unsqueeze(-1).expand(-1, -1, dim), tokens)
    n = tokens.new_zeros(rows, max_tokens).scatter_add_(1, bins, mask.to(tokens.dtype))
    return summed / n.clamp_min(1).unsqueeze(-1), n > 0


class _Block(nn.Module):
    """Pre-LN transformer layer: masked multi-head self-attention, then a GELU MLP."""

    def __init__(self, dim: int, heads: int, dropout: float, mlp_ratio: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.norm1 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        inner = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(dim, inner), nn.GELU(), Dropout(dropout), nn.Linear(inner, dim)
        )
        self.drop = Dropout(dropout)

    def forward(
        self, x: torch.Tensor, keep: torch.Tensor, n_queries: int | None = None
    ) -> torch.Tensor:
        """``keep`` (B, L) marks the keys to attend to; only the first ``n_queries`` positions are
        updated and returned when given."""
        rows, length, dim = x.shape
        h = self.norm1(x)
        if n_queries is not None:
            x = x[:, :n_queries]
        q = self.q(h[:, : x.shape[1]]).reshape(rows, -1, self.heads, dim // self.heads)
        k, v = self.kv(h).reshape(rows, length, 2, self.heads, dim // self.heads).unbind(2)
        attn = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_mask=keep[:, None, None, :],
            dropout_p=self.dropout if self.training else 0.0,
        )
        x = x + self.drop(self.proj(attn.transpose(1, 2).reshape(rows, -1, dim)))
        return x + self.drop(self.mlp(self.norm2(x)))


class HybridFusion(FusionModule):
    """Joint-attention transformer over all slots' tokens with per-slot missing tokens and [CLS]."""

    def __init__(
        self,
        slots: Sequence[SlotSpec],
        *,
        hidden: int = 256,
        dropout: float = 0.1,
        depth: int = 2,
        heads: int = 4,
        tokens: str = "pooled",
        max_tokens: int = 16,
        mlp_ratio: float = 2.0,  # below ViT's 4: the MLPs dominate the cost on CPU
    ) -> None:
        super().__init__()
        if tokens not in TOKEN_MODES:
            raise ConfigError(f"tokens must be one of {TOKEN_MODES}, got {tokens!r}")
        if depth < 1 or heads < 1 or hidden % heads:
            raise ConfigError(
                f"hybrid fusion needs depth >= 1 and hidden divisible by heads, "
                f"got depth={depth}, hidden={hidden}, heads={heads}"
            )
        if max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1, got {max_tokens}")
        self.slots = check_specs(slots)
        self.out_dim = hidden
        self.max_tokens = max_tokens
        self.use_tokens = tuple(tokens == "sequence" and s.max_tokens > 1 for s in self.slots)
        self.project = nn.ModuleList(
            slot_projection(s.token_width if seq else s.width, hidden)
            for s, seq in zip(self.slots, self.use_tokens, strict=True)
        )
        self.slot_type = learned_missing(len(self.slots), hidden)
        self.missing = learned_missing(len(self.slots), hidden)
        self.cls = learned_missing(1, hidden)
        self.blocks = nn.ModuleList(_Block(hidden, heads, dropout, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(hidden)

    def _slot_tokens(self, i: int, batch: SlotBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Slot ``i``'s projected tokens (B, T, hidden) and which of them to attend to."""
        spec = self.slots[i]
        if self.use_tokens[i]:
            if batch.tokens is None or batch.token_mask is None:
                raise ConfigError(
                    f"slot {spec.name!r} has no token states; embed with tokens=True "
                    "or build the hybrid fusion with tokens='pooled'"
                )
            keep = batch.token_mask & batch.present.unsqueeze(-1)
            x = zero_where_absent(batch.tokens, keep).to(self.cls.dtype)
            x, keep = pool_tokens(x, keep, self.max_tokens, grid=spec.modality == Modality.IMAGE)
        else:
            keep = batch.present.unsqueeze(-1)
            x = zero_where_absent(batch.pooled, batch.present).to(self.cls.dtype).unsqueeze(1)
        return self.project[i](x) + self.slot_type[i], keep

    def forward(self, inputs: Mapping[str, SlotBatch]) -> torch.Tensor:
        batches = gather_slots(self.slots, inputs)
        rows = batches[0].present.shape[0]
        seq = [self.cls.expand(rows, 1, -1)]
        keep = [batches[0].present.new_ones(rows, 1)]
        for i, batch in enumerate(batches):
            tokens, visible = self._slot_tokens(i, batch)
            seq += [self.missing[i].expand(rows, 1, -1), tokens]
            keep += [~visible.any(dim=1, keepdim=True), visible]
        x, mask = torch.cat(seq, dim=1), torch.cat(keep, dim=1)
        for block in self.blocks[:-1]:
            x = block(x, mask)
        x = self.blocks[-1](x, mask, n_queries=1)
        return self.norm(x[:, 0])

"""The contract every fusion module follows.

A fusion maps a dict of per-input tensors — one :class:`SlotBatch` per input *slot* (a media or
text column, or all tabular columns together) with a presence mask — to one tensor (B, out_dim).
Absent slots are replaced inside the fusion by learned missing tokens, so an absent slot's values
can never change the output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from polymodal.errors import ConfigError
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


def gather_slots(slots: Sequence[SlotSpec], inputs: Mapping[str, SlotBatch]) -> list[SlotBatch]:
    """Check ``inputs`` against ``slots`` and return one batch per slot, in slot order.

    A slot missing from ``inputs`` is absent in every row: it gets a zero batch with
    ``present`` all False, so "predict with a subset of the training columns" needs no special case.
    """
    unknown = sorted(set(inputs) - {s.name for s in slots})
    if unknown:
        raise ConfigError(f"fusion has no slot named {', '.join(map(repr, unknown))}")
    if not inputs:
        raise ConfigError("fusion needs at least one slot's batch to know the number of rows")
    first = next(iter(inputs.values())).pooled
    rows = first.shape[0]
    out = []
    for spec in slots:
        batch = inputs.get(spec.name)
        if batch is None:
            batch = _absent_batch(spec, rows, first)
        _check(spec, batch, rows)
        out.append(batch)
    return out


def _absent_batch(spec: SlotSpec, rows: int, like: torch.Tensor) -> SlotBatch:
    tokens = mask = None
    if spec.max_tokens > 1:
        tokens = like.new_zeros(rows, 1, spec.token_width)
        mask = torch.zeros(rows, 1, dtype=torch.bool, device=like.device)
    present = torch.zeros(rows, dtype=torch.bool, device=like.device)
    return SlotBatch(like.new_zeros(rows, spec.width), present, tokens, mask)


def _check(spec: SlotSpec, batch: SlotBatch, rows: int) -> None:
    def fail(problem: str) -> ConfigError:
        return ConfigError(f"slot {spec.name!r}: {problem}")

    if batch.pooled.shape != (rows, spec.width):
        raise fail(f"pooled has shape {tuple(batch.pooled.shape)}, expected ({rows}, {spec.width})")
    if batch.present.shape != (rows,) or batch.present.dtype != torch.bool:
        raise fail(f"present must be a bool tensor of shape ({rows},)")
    if batch.tokens is None:
        return
    if batch.tokens.ndim != 3 or batch.tokens.shape[::2] != (rows, spec.token_width):
        expected = f"({rows}, T, {spec.token_width})"
        raise fail(f"tokens have shape {tuple(batch.tokens.shape)}, expected {expected}")
    mask = batch.token_mask
    if mask is None or mask.shape != batch.tokens.shape[:2] or mask.dtype != torch.bool:
        raise fail(f"token_mask must be a bool tensor of shape {tuple(batch.tokens.shape[:2])}")


def zero_where_absent(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``values`` with every row (or token) where ``keep`` is False set to 0.

    Applied before any layer so absent values never enter the network: not even a NaN there can
    reach the output or the gradients (0 * NaN would, in a matmul's backward).
    """
    return torch.where(keep.unsqueeze(-1), values, values.new_zeros(()))


def check_specs(slots: Sequence[SlotSpec]) -> tuple[SlotSpec, ...]:
    """``slots`` as a tuple, checked: at least one, uniquely named, with usable widths."""
    specs = tuple(slots)
    if not specs:
        raise ConfigError("a fusion needs at least one input slot")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"slot names must be unique, got {names}")
    for s in specs:
        if s.width < 1 or s.max_tokens < 1 or (s.max_tokens > 1 and s.token_width < 1):
            raise ConfigError(f"slot {s.name!r} has no usable width: {s}")
    return specs

"""Fusion that sees slots together learns interactions; late fusion, a sum of votes, cannot.

Each slot takes one of 16 values, and every one of the 256 pairs is a row. The label is the XOR of
a sign in slot a and a sign in slot b: either slot alone says nothing. A sum f(a) + g(b) cannot
memorise it either, as every value recurs in 16 rows, and no such sum gets more than 3 of the 4
sign quadrants right: late fusion is held to about 75%.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from polymodal.fusion import SlotBatch, SlotSpec, build_fusion
from polymodal.modality import Modality
from tests.fusion import one_torch_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SLOTS = [
    SlotSpec("a", Modality.TEXT, width=4, token_width=4),
    SlotSpec("b", Modality.IMAGE, width=6, token_width=6),
]
VALUES = 16


def _values(width: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """VALUES random vectors, half with x0 > x1. A difference of two features, so that the
    per-slot LayerNorm keeps the sign."""
    x = torch.randn(VALUES, width, generator=gen)
    sign = torch.arange(VALUES) < VALUES // 2
    gap = (x[:, 0] - x[:, 1]).abs() + 0.1
    x[:, 0] = x[:, 1] + torch.where(sign, gap, -gap)
    return x, sign


def xor_problem() -> tuple[dict[str, SlotBatch], torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    (a, sa), (b, sb) = _values(4, gen), _values(6, gen)
    ia, ib = torch.cartesian_prod(torch.arange(VALUES), torch.arange(VALUES)).unbind(1)
    present = torch.ones(VALUES * VALUES, dtype=torch.bool)
    y = (sa[ia] ^ sb[ib]).float()
    return {"a": SlotBatch(a[ia], present), "b": SlotBatch(b[ib], present)}, y


def train_accuracy(kind: str, steps: int = 150) -> float:
    torch.manual_seed(0)
    fusion = build_fusion(kind, SLOTS, n_outputs=1, hidden=16, heads=2, dropout=0.0)
    head = nn.Identity() if fusion.produces_outputs else nn.Linear(fusion.out_dim, 1)
    model = nn.Sequential(fusion, head)
    inputs, y = xor_problem()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(model(inputs).squeeze(-1), y)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(((model(inputs).squeeze(-1) > 0).float() == y).float().mean())


@pytest.mark.parametrize("kind", ["early", "hybrid"])
def test_joint_fusion_learns_an_interaction(kind: str) -> None:
    assert train_accuracy(kind) > 0.9


def test_late_fusion_cannot_learn_an_interaction() -> None:
    assert train_accuracy("late") < 0.8

"""Late fusion's learned weights: reported, summing to 1, renormalised over present slots."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from polymodal.fusion import LateFusion, SlotBatch
from tests.fusion import (
    SLOTS,
    make_batch,
    one_torch_thread,  # noqa: F401
    tiny_fusion,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("config", ["late-weights", "late-stacking"])
def test_slot_weights_sum_to_one(config: str) -> None:
    fusion = tiny_fusion(config)
    with torch.no_grad():
        if config == "late-weights":
            fusion.slot_logits.copy_(torch.tensor([2.0, 0.0, -1.0]))
    weights = fusion.slot_weights()
    assert list(weights) == [s.name for s in SLOTS]
    assert sum(weights.values()) == pytest.approx(1.0)
    assert all(w > 0 for w in weights.values())
    if config == "late-weights":
        expected = torch.softmax(torch.tensor([2.0, 0.0, -1.0]), 0).tolist()
        assert list(weights.values()) == pytest.approx(expected)


def test_weights_are_renormalised_over_present_slots() -> None:
    fusion = tiny_fusion("late-weights").eval()
    assert isinstance(fusion, LateFusion)
    with torch.no_grad():
        fusion.slot_logits.copy_(torch.tensor([1.0, 0.5, -0.5]))
    batch = make_batch()
    outs, present = fusion.slot_outputs(batch)
    got = fusion(batch)
    for row in range(6):
        if not present[row].any():
            # No slot: every slot's learned missing output, weighted over all slots.
            w = torch.softmax(fusion.slot_logits, 0)
            assert_close(got[row], (w[:, None] * fusion.missing).sum(0))
            continue
        w = torch.softmax(fusion.slot_logits[present[row]], 0)
        assert_close(got[row], (w[:, None] * outs[row, present[row]]).sum(0))


def test_a_single_present_slot_is_not_diluted() -> None:
    fusion = tiny_fusion("late-weights").eval()
    batch = make_batch()
    only_photo = {
        name: SlotBatch(b.pooled, b.present & (name == "photo"), b.tokens, b.token_mask)
        for name, b in batch.items()
    }
    outs, _ = fusion.slot_outputs(only_photo)
    assert_close(fusion(only_photo)[0], outs[0, 0])

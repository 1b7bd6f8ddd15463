"""The fusion networks' dropout: nn.Dropout's distribution from a quarter of the random numbers."""

from __future__ import annotations

import pytest
import torch

from polymodal.fusion.dropout import Dropout


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5])
def test_drops_the_right_share_and_keeps_the_expectation(p: float) -> None:
    torch.manual_seed(0)
    drop = Dropout(p).train()
    x = torch.ones(400, 500)
    y = drop(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - p) < 0.005
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - p)))
    assert abs(y.mean().item() - 1.0) < 0.01
    # Masks are independent across positions: neighbouring lanes of one 64-bit draw agree no
    # more often than chance.
    a, b = (y[:, 0::2] == 0).float(), (y[:, 1::2] == 0).float()
    assert abs((a * b).mean().item() - p * p) < 0.005


def test_is_the_identity_in_eval_and_at_zero() -> None:
    x = torch.randn(7, 9)
    assert torch.equal(Dropout(0.3).eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)


def test_seeded_runs_repeat_and_gradients_flow_through_kept_elements() -> None:
    x = torch.randn(5, 13, requires_grad=True)  # an odd size: the last 64-bit draw is partly used
    torch.manual_seed(3)
    y1 = Dropout(0.4).train()(x)
    torch.manual_seed(3)
    y2 = Dropout(0.4).train()(x)
    assert torch.equal(y1, y2)
    y1.sum().backward()
    assert x.grad is not None
    assert torch.equal(x.grad != 0, y1 != 0)


def test_refuses_a_probability_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.0)

"""Contrastive losses: values on known cases, gradients to the temperature, several positives."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from polymodal.align.losses import ContrastiveLoss, SigLipLoss, build_loss
from polymodal.errors import ConfigError


def _unit(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1)


def _aligned(n: int = 6, d: int = 8) -> torch.Tensor:
    return torch.eye(n, d)  # orthonormal rows: each row matches only itself


def test_infonce_on_perfect_pairs_goes_to_zero_as_temperature_falls() -> None:
    z = _aligned()
    values = [float(ContrastiveLoss(temperature=t)(z, z).detach()) for t in (1.0, 0.1, 0.02)]
    assert values[0] > values[1] > values[2]
    assert values[2] < 1e-10
    # At temperature 1: logits are 1 on the diagonal, 0 elsewhere.
    expected = -math.log(math.e / (math.e + 5))
    assert values[0] == pytest.approx(expected, rel=1e-6)


def test_infonce_matches_a_hand_computed_symmetric_cross_entropy() -> None:
    torch.manual_seed(0)
    a, b = _unit(torch.randn(5, 4)), _unit(torch.randn(5, 4))
    loss = ContrastiveLoss(temperature=0.5)
    logits = (a @ b.T) / 0.5
    target = torch.arange(5)
    expected = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    assert float(loss(a, b)) == pytest.approx(float(expected), rel=1e-6)


def test_gradient_reaches_the_temperature_and_both_sides() -> None:
    torch.manual_seed(0)
    a = _unit(torch.randn(4, 3)).requires_grad_()
    b = _unit(torch.randn(4, 3)).requires_grad_()
    for loss in (ContrastiveLoss(), SigLipLoss()):
        loss(a, b).backward()
        assert loss.logit_scale.grad is not None and float(loss.logit_scale.grad.abs()) > 0
        assert a.grad is not None and float(a.grad.abs().sum()) > 0
        assert b.grad is not None and float(b.grad.abs().sum()) > 0
        a.grad = b.grad = None
    siglip = SigLipLoss()
    siglip(a, b).backward()
    assert siglip.logit_bias.grad is not None and float(siglip.logit_bias.grad.abs()) > 0


def test_temperature_is_clamped_at_100_and_can_be_fixed() -> None:
    loss = ContrastiveLoss(temperature=1e-4)
    assert float(loss.scale) == pytest.approx(100.0)
    fixed = ContrastiveLoss(learn_temperature=False)
    assert not fixed.logit_scale.requires_grad


def test_repeated_captions_are_not_pushed_apart_with_groups() -> None:
    # Rows 0 and 1 share a caption (identical b vectors): without groups InfoNCE cannot go
    # below log 2 on them (each is a negative of the other); with groups it reaches ~0.
    a = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0]])
    b = a.clone()
    loss = ContrastiveLoss(temperature=0.01)
    groups = torch.tensor([0, 0, 1])
    assert float(loss(a, b)) > 0.4
    assert float(loss(a, b, groups)) < 1e-6


def test_siglip_matches_its_definition_and_prefers_aligned_pairs() -> None:
    torch.manual_seed(0)
    a, b = _unit(torch.randn(4, 3)), _unit(torch.randn(4, 3))
    loss = SigLipLoss(temperature=0.1, bias=-10.0)
    logits = 10.0 * a @ b.T - 10.0
    sign = 2 * torch.eye(4) - 1
    expected = -F.logsigmoid(sign * logits).sum() / 4
    assert float(loss(a, b)) == pytest.approx(float(expected), rel=1e-6)
    z = _aligned(4, 4)
    assert float(SigLipLoss(temperature=0.01, bias=-50.0)(z, z)) < 1e-6
    assert float(loss(z, z)) < float(loss(z, z.flip(0)))


def test_build_loss_by_name() -> None:
    assert isinstance(build_loss("infonce"), ContrastiveLoss)
    assert isinstance(build_loss("SigLIP"), SigLipLoss)
    with pytest.raises(ConfigError, match="unknown alignment loss"):
        build_loss("triplet")


def test_siglip_labels_repeated_captions_positive_with_groups() -> None:
    a = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0]])
    loss = SigLipLoss(temperature=0.01, bias=-50.0)  # logits: +50 when equal, -50 otherwise
    groups = torch.tensor([0, 0, 1])
    assert float(loss(a, a, groups).detach()) < 1e-6
    # Without groups rows 0 and 1 are told they are not pairs although they are identical.
    assert float(loss(a, a).detach()) > 10

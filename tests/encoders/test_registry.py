"""Every registered encoder at tiny size: forward, backward, gradients everywhere, no NaNs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polymodal.encoders.base import Encoder
from polymodal.encoders.registry import build_encoder, default_encoder_name, registered_encoders
from polymodal.errors import ConfigError
from polymodal.modality import Modality

NAMES = [r.name for r in registered_encoders()]


def test_one_default_per_pretrained_modality() -> None:
    assert default_encoder_name(Modality.TEXT) == "minilm-l6"
    assert default_encoder_name(Modality.IMAGE) == "efficientnet-lite0"
    assert default_encoder_name(Modality.AUDIO) == "whisper-tiny-en"


@pytest.mark.parametrize("name", NAMES)
def test_tiny_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    enc = build_encoder(name, tiny=True)
    assert isinstance(enc, Encoder)
    module = enc.module()
    module.train()
    for p in module.parameters():
        p.requires_grad_(True)
    batch = enc.collate(enc.example_inputs(3))
    tokens, mask, pooled = module(batch)
    assert pooled.shape == (3, enc.info.width)
    assert tokens.shape[0] == 3 and tokens.shape[2] == enc.info.token_width
    assert mask.shape == tokens.shape[:2] and mask.dtype == torch.bool
    assert torch.isfinite(tokens).all() and torch.isfinite(pooled).all()
    (pooled.square().mean() + tokens.square().mean()).backward()
    missing = [
        n
        for n, p in module.named_parameters()
        if p.grad is None or not torch.isfinite(p.grad).all()
    ]
    assert not missing, f"parameters without a finite gradient: {missing[:5]}"


@pytest.mark.parametrize("name", NAMES)
def test_tiny_encode_matches_declared_widths(name: str) -> None:
    enc = build_encoder(name, tiny=True)
    embs = enc.encode(enc.example_inputs(2), tokens=True)
    assert len(embs) == 2
    for e in embs:
        assert e.pooled.shape == (enc.info.width,) and e.pooled.dtype == np.float32
        assert e.tokens is not None and e.tokens.shape[1] == enc.info.token_width
        assert np.isfinite(e.pooled).all()


@pytest.mark.parametrize("name", NAMES)
def test_set_trainable_unfreezes_only_last_blocks(name: str) -> None:
    module = build_encoder(name, tiny=True).module()
    module.set_trainable(0)
    assert not any(p.requires_grad for p in module.parameters())
    module.set_trainable(1)
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    assert 0 < trainable < sum(p.numel() for p in module.parameters())


def test_unknown_encoder_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="unknown encoder 'nonsense'"):
        build_encoder("nonsense")
    with pytest.raises(ConfigError, match="encodes image, not audio"):
        build_encoder("efficientnet-lite0", modality=Modality.AUDIO, tiny=True)

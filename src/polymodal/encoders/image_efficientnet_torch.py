"""The torch side of the EfficientNet image encoder: the network, its loading and ONNX graph.

Imported only when a network is needed (first encode with no cached ONNX graph, ``module()``,
``collate``, the ImageNet head), so that :mod:`polymodal.encoders.image_efficientnet` and a
fully cached run stay free of torch.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polymodal.encoders.image_efficientnet import PIXEL_MEAN, PIXEL_STD, TINY_IMAGE_SIZE
from polymodal.encoders.module import EncoderModule

Classifier = tuple[np.ndarray, np.ndarray]  # weight (C, 1000), bias (1000,)


class EfficientNetModule(EncoderModule):
    """An EfficientNet as ``forward(batch) -> (tokens, token_mask, pooled)``.

    ``batch["pixels"]`` holds RGB values 0..255, (B, 3, S, S), as the encoder's ``collate`` stacks
    them; normalisation happens here, so the exported graph includes it.
    ``tokens`` are the cells of the last feature map, row by row: (B, H*W, C); ``pooled`` is their
    mean. The ImageNet classifier is not part of it (the encoder's ``imagenet_probs`` has it), so
    every parameter takes part in ``forward``.
    """

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tokens, pooled = self.features(batch["pixels"])
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return tokens, mask, pooled

    def features(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, S, S) RGB values 0..255 (uint8 or float) -> tokens (B, T, C) and pooled (B, C)."""
        x = (pixels.to(torch.float32) - PIXEL_MEAN) / PIXEL_STD
        grid = self.net.extract_features(x)
        tokens = grid.flatten(2).transpose(1, 2)
        return tokens, tokens.mean(dim=1)

    def blocks(self) -> list[Any]:
        """The MBConv blocks, input side first (stem and head stay frozen under set_trainable)."""
        return list(self.net._blocks)


class FeatureGraph(torch.nn.Module):
    """What we export to ONNX: pixels -> (tokens, pooled)."""

    def __init__(self, module: EfficientNetModule) -> None:
        super().__init__()
        self.module = module

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.module.features(pixels)


def split_classifier(net: torch.nn.Module) -> tuple[EfficientNetModule, Classifier | None]:
    """``net`` in eval mode as an :class:`EfficientNetModule`, and its ImageNet classifier.

    The classifier moves out of ``net`` into NumPy: only ``imagenet_probs`` needs it, and left in
    the module its 1.3M parameters would get no gradient in fine-tuning. None when ``net`` has
    none (a network taken from ``module()``).
    """
    fc = getattr(net, "_fc", None)
    classifier = None
    if isinstance(fc, torch.nn.Linear):
        net._fc = torch.nn.Identity()
        classifier = fc.weight.detach().numpy().T.copy(), fc.bias.detach().numpy().copy()
    return EfficientNetModule(net.eval()), classifier


def lite0_net(**override: Any) -> torch.nn.Module:
    """EfficientNet-Lite0's architecture (random weights), with ``override`` applied."""
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name("efficientnet-lite0", **override)


def load_lite0(weights: Path) -> torch.nn.Module:
    """EfficientNet-Lite0 holding the state dict in ``weights``."""
    net = lite0_net()
    state = torch.load(weights, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net


def tiny_lite0_net() -> torch.nn.Module:
    """Lite0's code at width 0.1 and depth 0.5 on 64 px: 10 blocks, a 2x2 grid of 128-d tokens."""
    # Seeded without touching the caller's global RNG, so tiny encoders are reproducible.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return lite0_net(
            width_coefficient=0.1,
            depth_coefficient=0.5,
            image_size=TINY_IMAGE_SIZE,
            fix_head_stem=False,  # else the stem stays 32 and the head 1280 wide
        )


def state_checksum(net: torch.nn.Module) -> str:
    """sha256 of every tensor in the state dict, so random weights still key caches apart."""
    h = hashlib.sha256()
    for key, value in net.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def features(module: EfficientNetModule, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frozen eager-torch features of uint8 pixels (B, 3, S, S): tokens and pooled, float32."""
    with torch.inference_mode():
        t, p = module.features(torch.from_numpy(pixels))
    return t.numpy(), p.numpy()


def onnx_session(
    module: EfficientNetModule, image_size: int, cache_id: str | None, **spec: Any
) -> Any:
    """An ONNX Runtime session on ``module``'s features: cached under ``cache_id``, or in memory."""
    from polymodal.encoders import onnx_export

    graph = FeatureGraph(module)
    example = (torch.zeros(1, 3, image_size, image_size, dtype=torch.uint8),)
    if cache_id is None:
        return onnx_export.in_memory_session(graph, example, **spec)
    return onnx_export.cached_session(cache_id, lambda: graph, example, **spec)

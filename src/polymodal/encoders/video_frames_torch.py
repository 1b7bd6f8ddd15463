"""Torch side of the frame-based video encoder: the image network applied to every frame."""

from __future__ import annotations

from typing import Any

import torch

from polymodal.encoders.module import EncoderModule


class FrameVideoModule(EncoderModule):
    """``forward({"frames": (B, F, ...), "frame_mask": (B, F)})``: per-frame pooled image vectors
    as tokens, and their masked mean as the pooled vector."""

    def __init__(self, image: EncoderModule) -> None:
        super().__init__()
        self.image = image

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        frames, mask = batch["frames"], batch["frame_mask"]
        b, f = mask.shape
        key = batch.get("frame_key", "pixels")
        real = frames[mask]  # only real frames go through the network
        _, _, pooled = self.image({key: real})
        tokens = pooled.new_zeros((b, f, pooled.shape[-1]))
        tokens[mask] = pooled
        weights = mask.to(tokens.dtype).unsqueeze(-1)
        mean = (tokens * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        return tokens, mask, mean

    def blocks(self) -> list[Any]:
        return self.image.blocks()

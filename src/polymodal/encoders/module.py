"""The torch side of the encoder contract: :class:`EncoderModule`.

Kept apart from :mod:`polymodal.encoders.base` so that building an encoder and reading its
``info`` (all a fully cached run needs) never imports torch, which alone costs over a second.
"""

from __future__ import annotations

from typing import Any

import torch


class EncoderModule(torch.nn.Module):
    """Torch side of an encoder: ``forward(batch) -> (tokens, token_mask, pooled)``.

    ``tokens`` is (B, T, token_width); ``token_mask`` (B, T) is True where a token is real;
    ``pooled`` is (B, width).
    """

    def set_trainable(self, last_blocks: int) -> None:
        """Freeze everything, then unfreeze the last ``last_blocks`` blocks (0 = fully frozen)."""
        for p in self.parameters():
            p.requires_grad_(False)
        if last_blocks > 0:
            for block in self.blocks()[-last_blocks:]:
                for p in block.parameters():
                    p.requires_grad_(True)

    def blocks(self) -> list[Any]:
        """The network's blocks in order, for partial unfreezing. Default: top-level children."""
        return list(self.children())

"""Dropout whose masks cost a quarter of the random numbers.

On CPU, ``nn.Dropout`` draws one Bernoulli sample per element from torch's Mersenne Twister; in
the fusion networks' training loop over cached embeddings that was a fifth of every step. Here
each 64-bit random integer gives four 16-bit lanes, each compared with ``p`` scaled to 16 bits:
the same distribution (p rounded to 1/65,536), from the same seeded generator, at about 2.4x
the speed. Evaluation is the identity, as with ``nn.Dropout``.
"""

from __future__ import annotations

import torch
from torch import nn

_LANES = 4  # int16 lanes per int64


class Dropout(nn.Module):
    """Zero each element with probability ``p`` in training; scale the rest by 1 / (1 - p)."""

    def __init__(self, p: float = 0.1) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        # A lane (uniform over int16) below this is dropped: P = p, to 1/65,536.
        self._below = round(p * 65536) - 32768

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        n = x.numel()
        bits = torch.randint(-(2**63), 2**63 - 1, ((n + _LANES - 1) // _LANES,), dtype=torch.int64)
        lanes = bits.view(torch.int16)[:n].view(x.shape)
        return x * (lanes >= self._below) * (1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"

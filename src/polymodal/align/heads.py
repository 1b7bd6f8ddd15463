"""Projection heads: an encoder's pooled vector -> a unit vector in the shared space."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ProjectionHead(nn.Module):
    """Standardise, project (Linear, or a 2-layer MLP with GELU), L2-normalise.

    ``lock=True`` makes the head the identity (plus normalisation): the encoder's own space is
    the target, as the locked text tower of LiT (Zhai et al. 2022), which keeps small-data
    training from collapsing. Input statistics (``shift``, ``scale``) are buffers set once from
    the training data by :meth:`fit_input_stats`, so they are saved with the head.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        hidden: int | None = None,
        dropout: float = 0.0,
        lock: bool = False,
    ) -> None:
        super().__init__()
        if lock and in_dim != out_dim:
            raise ValueError(f"a locked head keeps its input width: in_dim {in_dim} != {out_dim}")
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.hidden = hidden
        self.dropout = dropout
        self.lock = lock
        self.register_buffer("shift", torch.zeros(in_dim))
        self.register_buffer("scale", torch.ones(in_dim))
        self.proj: nn.Module
        if lock:
            self.proj = nn.Identity()
        elif hidden is None:
            self.proj = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, out_dim))
        else:
            self.proj = nn.Sequential(
                nn.Dropout(dropout),
                nn.Linear(in_dim, hidden),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, out_dim),
            )

    def config(self) -> dict[str, int | float | bool | None]:
        """The constructor's arguments, for saving."""
        return {
            "in_dim": self.in_dim,
            "out_dim": self.out_dim,
            "hidden": self.hidden,
            "dropout": self.dropout,
            "lock": self.lock,
        }

    @torch.no_grad()
    def fit_input_stats(self, x: torch.Tensor) -> None:
        """Centre and scale inputs by the training data's mean and std (a locked head keeps its
        input untouched: shifting it would move it out of the target space)."""
        if self.lock:
            return
        self.shift.copy_(x.mean(dim=0))
        # One scale for all features keeps their relative sizes, which carry information.
        self.scale.fill_(float(x.std(dim=0).mean().clamp(min=1e-6)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj((x - self.shift) / self.scale), dim=-1)

"""Contrastive losses over paired embeddings; each owns its learnable temperature.

As in TorchMultimodal and OpenCLIP, the temperature is a parameter of the loss module: the model
maps inputs to unit vectors, the loss decides how sharply to compare them. Both losses take an
optional ``groups`` vector: rows with the same group id are all positives for each other, so a
caption repeated across a batch ("zero", "zero", ...) is never pushed away from itself (InfoNCE
leaves the other positives out of each row's softmax; SigLIP labels them positive).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MAX_LOGIT_SCALE = 100.0  # CLIP's clamp: beyond it training becomes unstable


def positive_mask(n: int, groups: torch.Tensor | None, device: torch.device) -> torch.Tensor:
    """(n, n) bool: True where row i of one side and row j of the other are a positive pair."""
    if groups is None:
        return torch.eye(n, dtype=torch.bool, device=device)
    groups = groups.to(device)
    return groups[:, None] == groups[None, :]


class ContrastiveLoss(nn.Module):
    """Symmetric InfoNCE (CLIP's loss) with a learnable temperature.

    ``logit_scale`` is log(1 / temperature), initialised at log(1 / ``temperature``) and clamped
    so that exp(logit_scale) never exceeds ``max_logit_scale``. With ``learn_temperature=False``
    it stays fixed. With ``groups``, a row's other positives are removed from its softmax: they
    are neither targets nor negatives.
    """

    def __init__(
        self,
        *,
        temperature: float = 0.07,
        learn_temperature: bool = True,
        max_logit_scale: float = MAX_LOGIT_SCALE,
    ) -> None:
        super().__init__()
        self.logit_scale = nn.Parameter(
            torch.tensor(math.log(1.0 / temperature)), requires_grad=learn_temperature
        )
        self.max_logit_scale = max_logit_scale

    @property
    def scale(self) -> torch.Tensor:
        """exp(logit_scale), clamped."""
        return self.logit_scale.exp().clamp(max=self.max_logit_scale)

    def logits(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Scaled similarities (N, N) of unit vectors ``a`` and ``b``."""
        return self.scale * a @ b.T

    def forward(
        self, a: torch.Tensor, b: torch.Tensor, groups: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean of the a->b and b->a cross-entropies; ``a[i]`` and ``b[i]`` are a pair."""
        logits = self.logits(a, b)
        n = a.shape[0]
        if groups is not None:
            eye = torch.eye(n, dtype=torch.bool, device=a.device)
            others = positive_mask(n, groups, a.device) & ~eye  # symmetric, so fine both ways
            logits = logits.masked_fill(others, float("-inf"))
        target = torch.arange(n, device=a.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


class SigLipLoss(nn.Module):
    """SigLIP's pairwise sigmoid loss (Zhai et al. 2023) with learnable temperature and bias.

    Every (i, j) is an independent binary decision "is this a pair?", so no softmax over the
    batch is needed and small batches work. Initialised as in the paper: t = log 10, b = -10.
    """

    def __init__(
        self,
        *,
        temperature: float = 0.1,
        bias: float = -10.0,
        max_logit_scale: float = MAX_LOGIT_SCALE,
    ) -> None:
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        self.logit_bias = nn.Parameter(torch.tensor(float(bias)))
        self.max_logit_scale = max_logit_scale

    @property
    def scale(self) -> torch.Tensor:
        return self.logit_scale.exp().clamp(max=self.max_logit_scale)

    def logits(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.scale * a @ b.T + self.logit_bias

    def forward(
        self, a: torch.Tensor, b: torch.Tensor, groups: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Sum over the (N, N) pair decisions, divided by N as in the paper."""
        logits = self.logits(a, b)
        sign = positive_mask(a.shape[0], groups, a.device).to(logits.dtype) * 2 - 1
        return -F.logsigmoid(sign * logits).sum() / a.shape[0]


def build_loss(name: str, **kwargs: float) -> ContrastiveLoss | SigLipLoss:
    """``"infonce"`` (alias ``"clip"``) or ``"siglip"``."""
    key = name.lower()
    if key in ("infonce", "clip", "contrastive"):
        return ContrastiveLoss(**kwargs)  # type: ignore[arg-type]
    if key in ("siglip", "sigmoid"):
        return SigLipLoss(**kwargs)
    from polymodal.errors import ConfigError

    raise ConfigError(f"unknown alignment loss {name!r}: use 'infonce' or 'siglip'")

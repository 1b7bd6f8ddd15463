"""AdamW and learning-rate halving on plateaus, in a few lines of foreach tensor ops.

``torch.optim`` imports ``torch._dynamo`` the first time an optimizer is built (its methods are
wrapped to keep the compiler out), which costs about 1.3 s of CPU per process: more than a
whole re-fit of a small table over cached embeddings takes. The maths here is
``torch.optim.AdamW``'s (foreach path, no amsgrad), operation for operation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


class AdamW:
    """Decoupled weight decay Adam (Loshchilov & Hutter 2019) over ``params``."""

    def __init__(
        self,
        params: Sequence[torch.nn.Parameter],
        *,
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = list(params)
        self.lr = lr
        self.weight_decay = weight_decay
        self.betas = betas
        self.eps = eps
        self.steps = [0] * len(self.params)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        params = [self.params[i] for i in live]
        grads = [self.params[i].grad for i in live]
        exp_avg = [self.exp_avg[i] for i in live]
        exp_avg_sq = [self.exp_avg_sq[i] for i in live]
        beta1, beta2 = self.betas
        for i in live:
            self.steps[i] += 1
        if self.weight_decay:
            torch._foreach_mul_(params, 1 - self.lr * self.weight_decay)
        torch._foreach_lerp_(exp_avg, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sq, beta2)
        torch._foreach_addcmul_(exp_avg_sq, grads, grads, 1 - beta2)
        step_size = [-(self.lr / (1 - beta1 ** self.steps[i])) for i in live]
        bias2_sqrt = [math.sqrt(1 - beta2 ** self.steps[i]) for i in live]
        denom = torch._foreach_sqrt(exp_avg_sq)
        torch._foreach_div_(denom, bias2_sqrt)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, exp_avg, denom, step_size)


class HalveOnPlateau:
    """``torch.optim.lr_scheduler.ReduceLROnPlateau`` in mode "min" with its defaults: the
    learning rate times ``factor`` after more than ``patience`` epochs without a relative
    improvement of 1e-4 in the watched value."""

    def __init__(self, optimizer: AdamW, *, factor: float = 0.5, patience: int = 10) -> None:
        self.optimizer = optimizer
        self.factor = factor
        self.patience = patience
        self.best = math.inf
        self.bad_epochs = 0

    def step(self, value: float) -> None:
        if value < self.best * (1 - 1e-4):
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            new = self.optimizer.lr * self.factor
            if self.optimizer.lr - new > 1e-8:
                self.optimizer.lr = new
            self.bad_epochs = 0

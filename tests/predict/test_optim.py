"""Our AdamW and plateau halving against torch.optim's, step for step."""

from __future__ import annotations

import torch

from polymodal.predict.optim import AdamW, HalveOnPlateau


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.GELU(), torch.nn.Linear(7, 2))


def test_adamw_matches_torch() -> None:
    ours, theirs = _model(0), _model(0)
    opt = AdamW(list(ours.parameters()), lr=3e-3, weight_decay=0.1)
    ref = torch.optim.AdamW(theirs.parameters(), lr=3e-3, weight_decay=0.1, foreach=True)
    gen = torch.Generator().manual_seed(1)
    for step in range(25):
        x = torch.randn(8, 5, generator=gen)
        lr = 3e-3 if step < 10 else 1e-3  # a changed learning rate applies from the next step
        opt.lr = lr
        for group in ref.param_groups:
            group["lr"] = lr
        for model, o in ((ours, opt), (theirs, ref)):
            o.zero_grad()
            model(x).pow(2).mean().backward()
            o.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_plateau_halving_matches_torch() -> None:
    model = _model(0)
    ours = HalveOnPlateau(AdamW(list(model.parameters()), lr=1.0), patience=2)
    ref_opt = torch.optim.AdamW(model.parameters(), lr=1.0)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(ref_opt, mode="min", factor=0.5, patience=2)
    for value in [5, 4, 4, 4, 4, 3.9999, 3, 3, 3, 3, 3, 3, 2]:
        ours.step(value)
        ref.step(value)
        assert ours.optimizer.lr == ref_opt.param_groups[0]["lr"]

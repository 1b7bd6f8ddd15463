"""The training loop: AdamW, LR halved on plateaus, early stopping on the validation score.

Modality dropout hides whole modality groups of training rows at random (always keeping one the
row has), so the network learns to predict from any subset; class-balanced weights handle
imbalance; everything random draws from generators seeded by ``seed``, so a CPU run repeats bit
for bit.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from polymodal.predict.features import FeatureTensors
from polymodal.predict.metrics import (
    PRIMARY_METRIC,
    accuracy,
    classification_metrics,
    is_better,
    mae,
    regression_metrics,
)
from polymodal.predict.network import Network, PredictorNetwork
from polymodal.predict.optim import AdamW, HalveOnPlateau
from polymodal.predict.problem import Target

EVAL_BATCH = 2048
FINE_TUNE_EVAL_BATCH = 32
_GRAD_CLIP = 5.0
MIN_PATIENCE_STEPS = 100  # early stopping waits at least this many optimiser steps


@dataclass
class TrainResult:
    """How a training run went; the network holds the best epoch's weights afterwards."""

    metric: str  # the primary metric's name
    best_epoch: int
    epochs_run: int
    val_metrics: dict[str, float]
    val_loss: float
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def val_score(self) -> float:
        return self.val_metrics[self.metric]


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global RNG seeded, restoring the caller's RNG state after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def training_threads(network: PredictorNetwork) -> Iterator[None]:
    """Train a network over cached embeddings on one thread, restoring the setting after.

    Its matrices are small: on an idle 2-core machine two threads trained AV-digits no faster
    (1.09 vs 1.01 s), while on a busy one each step waited for a descheduled second thread — a
    3 s fit took 143 s. Fine-tuned encoders do real convolution and attention work and keep
    every thread.
    """
    if len(network.encoders):
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_network(
    network: PredictorNetwork,
    train: FeatureTensors,
    val: FeatureTensors,
    *,
    target: Target,
    groups: Mapping[str, Sequence[str]],
    epochs: int = 200,
    patience: int = 10,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 256,
    modality_dropout: float = 0.2,
    class_weight: np.ndarray | None = None,
    seed: int = 0,
    progress: bool = True,
    desc: str = "fit",
) -> TrainResult:
    """Train ``network`` on ``train``, keep the weights of the best epoch on ``val``.

    Best = the primary metric (AUROC for binary, accuracy for multiclass, MAE for regression),
    ties broken by the validation loss. Training stops after :func:`patience_now` epochs
    without a new best: at most ``patience``.
    """
    if train.y is None or val.y is None:
        raise ValueError("train and val need targets")
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in network.parameters() if p.requires_grad]
    optimizer = AdamW(params, lr=lr, weight_decay=weight_decay)
    scheduler = HalveOnPlateau(optimizer, factor=0.5, patience=max(2, patience // 4))
    weight = None if class_weight is None else torch.as_tensor(class_weight, dtype=torch.float32)
    slot_group = {slot: g for g, slots in groups.items() for slot in slots if slot in network.specs}
    best_key: tuple[float, float] | None = None
    best_state = copy.deepcopy(network.state_dict())
    best_epoch = 0
    name = PRIMARY_METRIC[target.problem][0]
    history: list[dict[str, float]] = []
    steps = math.ceil(len(train) / max(1, min(batch_size, len(train))))
    bar = tqdm(range(1, epochs + 1), desc=desc, unit="epoch", disable=not progress, leave=False)
    epoch = 0
    for epoch in bar:
        lr_now = optimizer.lr
        total = run_epoch(
            network, train, optimizer, target=target, weight=weight, slot_group=slot_group,
            modality_dropout=modality_dropout, batch_size=batch_size, gen=gen, params=params,
        )  # fmt: skip
        outputs = network_outputs(network, val)
        val_loss = float(_loss(torch.from_numpy(outputs), val.y, target, weight))
        # Only the metric that decides, each epoch (AUROC over many classes would cost more
        # than the epoch); every metric once, at the best epoch, below.
        score = primary_score(target, val.y.numpy(), outputs)
        key = (score, val_loss)
        history.append(
            {"epoch": epoch, "lr": lr_now, "train_loss": total, "val_loss": val_loss, name: score}
        )
        scheduler.step(val_loss)
        if best_key is None or improves(key, best_key, target.problem):
            best_key, best_epoch = key, epoch
            best_state = copy.deepcopy(network.state_dict())
        bar.set_postfix({name: f"{score:.4g}", "best": best_epoch})
        if epoch - best_epoch >= patience_now(best_epoch, patience, steps):
            break
    bar.close()
    network.load_state_dict(best_state)
    network.eval()
    best_metrics = score_outputs(target, val.y.numpy(), network_outputs(network, val))
    seconds = time.perf_counter() - start
    val_loss = best_key[1] if best_key is not None else float("nan")
    return TrainResult(name, best_epoch, epoch, best_metrics, val_loss, seconds, history)


def patience_now(best_epoch: int, patience: int, steps_per_epoch: int) -> int:
    """Epochs to wait for a new best: as many as the best took to find, between a floor of
    about 100 optimiser steps (at least 10 epochs) and ``patience``.

    A run that peaked at epoch 10 rarely improves after epoch 40, yet a fixed patience of 30
    waits that long every time; a tiny table (one step per epoch) needs the full wait, since
    its validation score is noisy and its steps are few.
    """
    floor = max(10, math.ceil(MIN_PATIENCE_STEPS / max(1, steps_per_epoch)))
    return min(patience, max(floor, best_epoch))


def run_epoch(
    network: PredictorNetwork,
    train: FeatureTensors,
    optimizer: AdamW,
    *,
    target: Target,
    weight: torch.Tensor | None,
    slot_group: Mapping[str, str],
    modality_dropout: float,
    batch_size: int,
    gen: torch.Generator,
    params: Sequence[torch.nn.Parameter],
) -> float:
    """One pass over ``train`` in shuffled mini-batches; the mean training loss."""
    network.train()
    n = len(train)
    batch_size = max(1, min(batch_size, n))
    order = torch.randperm(n, generator=gen)
    total = 0.0
    for lo in range(0, n, batch_size):
        idx = order[lo : lo + batch_size]
        if len(idx) < 2 and n >= 2:
            continue  # a single-row batch adds noise and breaks nothing else; skip it
        batch = train.take(idx)
        keep = modality_dropout_masks(batch, slot_group, modality_dropout, gen)
        loss = _loss(network(batch, keep), batch.y, target, weight)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, _GRAD_CLIP)
        optimizer.step()
        total += float(loss.detach()) * len(idx)
    return total / max(n, 1)


def refit_network(
    network: PredictorNetwork,
    train: FeatureTensors,
    *,
    target: Target,
    groups: Mapping[str, Sequence[str]],
    lrs: Sequence[float],
    weight_decay: float = 1e-4,
    batch_size: int = 256,
    modality_dropout: float = 0.2,
    class_weight: np.ndarray | None = None,
    seed: int = 0,
    progress: bool = True,
    desc: str = "refit",
) -> float:
    """Train a fresh ``network`` on ``train`` for ``len(lrs)`` epochs, epoch k at learning rate
    ``lrs[k]``: the schedule a validated run followed up to its best epoch, replayed on more
    rows (there is no validation left to stop on). Returns the seconds it took.
    """
    if train.y is None:
        raise ValueError("refit needs targets")
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in network.parameters() if p.requires_grad]
    lr0 = lrs[0] if lrs else 1e-3
    optimizer = AdamW(params, lr=lr0, weight_decay=weight_decay)
    weight = None if class_weight is None else torch.as_tensor(class_weight, dtype=torch.float32)
    slot_group = {slot: g for g, slots in groups.items() for slot in slots if slot in network.specs}
    for lr in tqdm(lrs, desc=desc, unit="epoch", disable=not progress, leave=False):
        optimizer.lr = lr
        run_epoch(
            network, train, optimizer, target=target, weight=weight, slot_group=slot_group,
            modality_dropout=modality_dropout, batch_size=batch_size, gen=gen, params=params,
        )  # fmt: skip
    network.eval()
    return time.perf_counter() - start


def modality_dropout_masks(
    batch: FeatureTensors,
    slot_group: Mapping[str, str],
    p: float,
    gen: torch.Generator,
) -> dict[str, torch.Tensor] | None:
    """Per slot, a (B,) keep mask that hides each present group of a row with probability ``p``,
    never hiding every group a row has.
    """
    groups = sorted(set(slot_group.values()))
    if p <= 0 or len(groups) < 2:
        return None
    b = len(batch)
    present = torch.zeros(b, len(groups), dtype=torch.bool)
    for slot, g in slot_group.items():
        present[:, groups.index(g)] |= _slot_present(batch, slot, b)
    drop = (torch.rand(b, len(groups), generator=gen) < p) & present
    kept = present & ~drop
    lost = ~kept.any(dim=1) & present.any(dim=1)
    if lost.any():
        # Give such rows back one of their own groups, chosen at random.
        scores = torch.rand(b, len(groups), generator=gen).masked_fill(~present, -1.0)
        rescue = torch.zeros_like(drop).scatter_(1, scores.argmax(1, keepdim=True), True)
        drop &= ~(rescue & lost.unsqueeze(1))
    return {slot: ~drop[:, groups.index(g)] for slot, g in slot_group.items()}


def network_outputs(
    network: Network, x: FeatureTensors, keep: Mapping[str, bool] | None = None
) -> np.ndarray:
    """Raw outputs (N, n_outputs) in eval mode, in chunks, without gradients."""
    network.eval()
    parts = []
    # Fine-tuned encoders run on raw inputs inside the network: keep their activations small.
    chunk = EVAL_BATCH if len(network.encoders) == 0 else FINE_TUNE_EVAL_BATCH
    with torch.no_grad():
        for lo in range(0, len(x), chunk):
            idx = torch.arange(lo, min(lo + chunk, len(x)))
            parts.append(network(x.take(idx), keep).float().numpy())
    if not parts:
        return np.zeros((0, network.n_outputs), np.float32)
    return np.concatenate(parts)


def score_outputs(target: Target, y: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
    """Every metric for raw outputs against encoded targets, regression on the label's scale."""
    if target.is_classification:
        return classification_metrics(y, softmax(outputs))
    truth = target.decode_regression(y)
    return regression_metrics(truth, target.decode_regression(outputs[:, 0]))


def primary_score(target: Target, y: np.ndarray, outputs: np.ndarray) -> float:
    """The metric that picks epochs and candidates (as :func:`score_outputs` computes it)."""
    name = PRIMARY_METRIC[target.problem][0]
    if name == "accuracy":
        return accuracy(y, outputs.argmax(axis=1))
    if name == "mae":
        return mae(target.decode_regression(y), target.decode_regression(outputs[:, 0]))
    return score_outputs(target, y, outputs)[name]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _loss(
    outputs: torch.Tensor, y: torch.Tensor, target: Target, weight: torch.Tensor | None
) -> torch.Tensor:
    if target.is_classification:
        return F.cross_entropy(outputs, y, weight=weight)
    return F.mse_loss(outputs[:, 0], y)


def improves(key: tuple[float, float], best: tuple[float, float], problem: str) -> bool:
    """True when (score, loss) ``key`` beats ``best``: a better score, or the same and less loss."""
    if is_better(key[0], best[0], problem):
        return True
    same = key[0] == best[0] or (math.isnan(key[0]) and math.isnan(best[0]))
    return same and key[1] < best[1]


def _slot_present(batch: FeatureTensors, slot: str, b: int) -> torch.Tensor:
    if slot in batch.slots:
        return batch.slots[slot]["present"]
    if batch.tabular is not None:
        # The tabular slot: present where any column has a value.
        parts = []
        if batch.tabular["numeric_present"].shape[1]:
            parts.append(batch.tabular["numeric_present"].any(dim=1))
        if batch.tabular["categories"].shape[1]:
            parts.append((batch.tabular["categories"] != 0).any(dim=1))
        if parts:
            return torch.stack(parts).any(dim=0)
    return torch.zeros(b, dtype=torch.bool)

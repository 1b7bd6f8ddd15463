"""Contrastive training of an alignment's heads over cached pooled embeddings.

The default is LiT (Zhai et al. 2022): the text side is locked (its encoder's own space is the
target) and the other side's head learns to map into it, which keeps small-data training from
collapsing. Batches are large (the whole set up to ``batch_size``), AdamW with a warm-up and a
cosine schedule, Recall@K both ways on a held-out split after each epoch, early stopping on mean
R@1, the best epoch's weights kept (and written atomically to ``checkpoint`` when given).

``unfreeze_blocks=k`` also fine-tunes the last k blocks of each unlocked side's encoder: then the
inputs are decoded items and every step runs the encoder module (slow; meant for small sets).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from polymodal.align.heads import ProjectionHead
from polymodal.align.losses import build_loss
from polymodal.align.model import SIDES, Alignment, Side
from polymodal.align.retrieval import duplicate_groups, retrieval_metrics
from polymodal.errors import ConfigError
from polymodal.modality import Modality

if TYPE_CHECKING:
    from polymodal.cache.embed import ColumnEmbeddings
    from polymodal.encoders.base import Encoder
    from polymodal.encoders.module import EncoderModule

Lock = Literal["auto", "a", "b", "none"]
_WARMUP = 0.05  # share of all steps spent warming the learning rate up
_ENCODER_LR = 0.1  # unfrozen encoder blocks learn at this fraction of the heads' rate
_EVAL_BATCH = 256
_MIN_VAL = 4


@dataclass
class TrainHistory:
    """How training went: one dict per epoch, the best epoch and its held-out metrics."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_metrics: dict[str, Any] | None = None
    n_train: int = 0
    n_val: int = 0
    skipped: int = 0  # pairs dropped because one side was missing
    seconds: float = 0.0

    @property
    def best_mean_r1(self) -> float:
        return float("nan") if self.best_metrics is None else float(self.best_metrics["mean_R@1"])


def train_alignment(
    a: np.ndarray | ColumnEmbeddings | Sequence[Any],
    b: np.ndarray | ColumnEmbeddings | Sequence[Any],
    *,
    a_encoder: Encoder | Side | None = None,
    b_encoder: Encoder | Side | None = None,
    val: tuple[Any, Any] | None = None,
    val_fraction: float = 0.1,
    groups: np.ndarray | None = None,
    loss: str = "infonce",
    lock: Lock = "auto",
    dim: int | None = None,
    hidden: int | None = None,
    dropout: float = 0.1,
    epochs: int = 100,
    patience: int = 10,
    batch_size: int = 1024,
    lr: float = 1e-3,
    weight_decay: float = 0.1,
    unfreeze_blocks: int = 0,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    progress: bool = True,
) -> tuple[Alignment, TrainHistory]:
    """Train an alignment of ``a`` and ``b`` (row i of each is a pair).

    Inputs are pooled vectors (N, width) or :class:`ColumnEmbeddings` (rows missing either side
    are skipped and counted); with ``unfreeze_blocks`` > 0, decoded items for the unlocked sides.
    ``val`` gives held-out pairs; otherwise ``val_fraction`` of the pairs are held out at
    random. ``groups`` marks rows that are all positives for each other (default: rows sharing
    an identical vector on either side). ``lock`` fixes one side's head to the identity
    ("auto": the text side, b first).
    """
    t0 = time.perf_counter()
    history = TrainHistory()
    sides, (a_kept, b_kept), kept = _pair_up(a, b, a_encoder, b_encoder)
    history.skipped = _rows(a) - len(kept)
    a, b = a_kept, b_kept
    if val is not None:
        _, (va, vb), _ = _pair_up(val[0], val[1], a_encoder, b_encoder)
    locked = _locked_side(lock, sides)
    tuned = _tuned_sides(unfreeze_blocks, locked, a_encoder, b_encoder)
    given = None if groups is None else np.asarray(groups)[kept]
    if val is None:
        train_idx, val_idx = _split(len(a), val_fraction, seed)
        va, vb = _take(a, val_idx), _take(b, val_idx)
        a, b = _take(a, train_idx), _take(b, train_idx)
        given = None if given is None else given[train_idx]
    n = len(a)
    if n < 2:
        raise ConfigError(f"alignment needs at least 2 training pairs, got {n}")
    history.n_train, history.n_val = n, len(va)

    # Everything random (head init, dropout, shuffling) draws from torch's RNG seeded here;
    # the caller's RNG state is restored afterwards.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        heads = _build_heads(sides, locked, dim=dim, hidden=hidden, dropout=dropout)
        loss_fn = build_loss(loss)
        towers = {
            s: _tower(
                s, (a, b)[i], heads[s], _encoder_of(s, a_encoder, b_encoder), tuned, unfreeze_blocks
            )
            for i, s in enumerate(SIDES)
        }
        val_towers = {s: towers[s].on((va, vb)[i]) for i, s in enumerate(SIDES)}
        groups = _default_groups(towers) if given is None else given
        val_groups = _default_groups(val_towers)
        batches = _batches(n, batch_size)
        opt, sched = _optimizer(
            heads, loss_fn, towers, lr=lr, weight_decay=weight_decay, steps=epochs * len(batches)
        )
        # Group ids only matter when some row has a duplicate; without any, skip the masking.
        g_tensor = torch.from_numpy(groups) if len(np.unique(groups)) < n else None
        gen = torch.Generator().manual_seed(seed)

        def snapshot() -> Alignment:
            return _alignment(sides, heads, loss, loss_fn, towers, history, seed)

        best: Alignment | None = None
        best_score = -math.inf
        stale = 0
        bar = tqdm(range(1, epochs + 1), desc="align", unit="epoch", disable=not progress)
        for epoch in bar:
            for m in (*heads.values(), loss_fn):
                m.train()
            perm = torch.randperm(n, generator=gen)
            row: dict[str, float] = {
                "epoch": epoch,
                "loss": _train_epoch(towers, loss_fn, opt, sched, perm, batches, g_tensor),
                "lr": float(sched.get_last_lr()[0]),
                "logit_scale": float(loss_fn.logit_scale.detach()),
            }
            metrics = None
            if history.n_val >= _MIN_VAL:
                metrics = _evaluate(val_towers, val_groups)
                row.update(_flat(metrics))
            history.epochs.append(row)
            # With no held-out pairs, the training loss decides.
            score = row.get("mean_R@1", -row["loss"])
            bar.set_postfix(
                loss=f"{row['loss']:.3f}", r1=f"{row.get('mean_R@1', float('nan')):.3f}"
            )
            if score > best_score + 1e-9:
                best_score, stale = score, 0
                history.best_epoch, history.best_metrics = epoch, metrics
                best = snapshot()
                if checkpoint is not None:
                    best.save(checkpoint)
            else:
                stale += 1
                if stale >= patience:
                    break
        bar.close()
        history.seconds = time.perf_counter() - t0
        assert best is not None
        best.record.update(_record(history))
        if checkpoint is not None:
            best.save(checkpoint)
        return best, history


def _optimizer(
    heads: dict[str, ProjectionHead],
    loss_fn: nn.Module,
    towers: dict[str, _Tower],
    *,
    lr: float,
    weight_decay: float,
    steps: int,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (no decay on the temperature; unfrozen encoder blocks at a lower rate), warm-up
    then cosine decay over ``steps``."""
    params: list[dict[str, Any]] = [
        {
            "params": [p for h in heads.values() for p in h.parameters()],
            "weight_decay": weight_decay,
        },
        {"params": list(loss_fn.parameters()), "weight_decay": 0.0},
    ]
    encoder_params = [p for t in towers.values() for p in t.trainable()]
    if encoder_params:
        params.append({"params": encoder_params, "lr": lr * _ENCODER_LR, "weight_decay": 0.0})
    opt = torch.optim.AdamW(params, lr=lr)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine(steps))


def _train_epoch(
    towers: dict[str, _Tower],
    loss_fn: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LambdaLR,
    perm: torch.Tensor,
    batches: list[tuple[int, int]],
    groups: torch.Tensor | None,
) -> float:
    """One pass over the shuffled pairs; returns the mean loss."""
    total = 0.0
    for start, stop in batches:
        idx = perm[start:stop]
        value = loss_fn(towers["a"](idx), towers["b"](idx), None if groups is None else groups[idx])
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        sched.step()
        total += float(value.detach()) * len(idx)
    return total / len(perm)


# ---------------------------------------------------------------------------- inputs
def _is_column(x: Any) -> bool:
    return hasattr(x, "pooled") and hasattr(x, "present")


def _pair_up(
    a: Any, b: Any, a_encoder: Encoder | Side | None, b_encoder: Encoder | Side | None
) -> tuple[dict[str, Side], tuple[Any, Any], np.ndarray]:
    """Sides for both inputs, and the inputs without rows missing either side (kept rows)."""
    n_a, n_b = (
        len(a.pooled) if _is_column(a) else len(a),
        len(b.pooled) if _is_column(b) else len(b),
    )
    if n_a != n_b:
        raise ConfigError(f"the two sides have {n_a} and {n_b} rows: pairs must line up row by row")
    keep = np.ones(n_a, dtype=bool)
    for x in (a, b):
        if _is_column(x):
            keep &= x.present
    sides = {s: _side_of(x, enc) for s, x, enc in (("a", a, a_encoder), ("b", b, b_encoder))}
    out = []
    for x in (a, b):
        values = x.pooled if _is_column(x) else x
        out.append(_take(values, np.flatnonzero(keep)) if not keep.all() else values)
    return sides, (out[0], out[1]), np.flatnonzero(keep)


def _rows(x: Any) -> int:
    return len(x.pooled) if _is_column(x) else len(x)


def _side_of(x: Any, encoder: Encoder | Side | None) -> Side:
    if isinstance(encoder, Side):
        return encoder
    if encoder is not None:
        return Side.of(encoder, column=getattr(x, "column", ""))
    if _is_column(x):
        return Side(
            modality=x.modality,
            encoder=_registered_name(x.encoder),
            cache_id=x.encoder,
            width=x.width,
            column=x.column,
        )
    values = np.asarray(x)
    if values.ndim != 2:
        raise ConfigError("pooled inputs must be (N, width) arrays; decoded items need encoders")
    return Side.unrecorded(values.shape[1])


def _registered_name(cache_id: str) -> str:
    from polymodal.encoders.registry import registered_encoders

    name = cache_id.split("@", 1)[0]
    return name if name in {r.name for r in registered_encoders()} else ""


def _encoder_of(side: str, a_encoder: Any, b_encoder: Any) -> Encoder | None:
    enc = a_encoder if side == "a" else b_encoder
    return None if enc is None or isinstance(enc, Side) else enc


def _take(values: Any, idx: np.ndarray) -> Any:
    if isinstance(values, np.ndarray):
        return values[idx]
    return [values[i] for i in idx]


def _default_groups(towers: dict[str, _Tower]) -> np.ndarray:
    """Rows sharing an identical pooled vector on a frozen side (a repeated caption) are
    positives for each other; a fine-tuned side's outputs change, so it cannot say."""
    keys = [t.data.numpy() for t in towers.values() if t.module is None]
    n = len(next(iter(towers.values())).data)
    return duplicate_groups(*keys) if keys and n else np.arange(n)


def _split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``fraction`` of the rows at random.

    Rows, not duplicate groups: a caption shared by a whole class ("zero" for every spoken zero)
    makes one group of the class, and holding groups out would hold whole classes out.
    """
    if fraction <= 0 or n < 2 * _MIN_VAL:
        return np.arange(n), np.zeros(0, dtype=np.int64)
    if not 0 < fraction < 1:
        raise ConfigError(f"val_fraction must be in [0, 1), got {fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(_MIN_VAL, round(fraction * n))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _locked_side(lock: Lock, sides: dict[str, Side]) -> str | None:
    if lock == "none":
        return None
    if lock in SIDES:
        return lock
    if lock != "auto":
        raise ConfigError(f"lock must be 'auto', 'a', 'b' or 'none', not {lock!r}")
    for s in ("b", "a"):
        if sides[s].modality == Modality.TEXT:
            return s
    return None


def _tuned_sides(k: int, locked: str | None, a_encoder: Any, b_encoder: Any) -> set[str]:
    if k <= 0:
        return set()
    out = set()
    for s in SIDES:
        if s == locked:
            continue
        enc = _encoder_of(s, a_encoder, b_encoder)
        if enc is None:
            raise ConfigError(f"unfreeze_blocks needs the encoder of side {s} (pass {s}_encoder)")
        out.add(s)
    return out


def _build_heads(
    sides: dict[str, Side],
    locked: str | None,
    *,
    dim: int | None,
    hidden: int | None,
    dropout: float,
) -> dict[str, ProjectionHead]:
    if locked is not None:
        width = sides[locked].width
        if dim is not None and dim != width:
            raise ConfigError(
                f"side {locked} is locked: the shared width is its {width}, not {dim}"
            )
        dim = width
    elif dim is None:
        dim = min(256, *(s.width for s in sides.values()))
    return {
        s: ProjectionHead(sides[s].width, dim, hidden=hidden, dropout=dropout, lock=s == locked)
        for s in SIDES
    }


def _batches(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Batch bounds; a short last batch joins the previous one (contrastive losses want width)."""
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < batch_size // 2:
        last = bounds.pop()
        bounds[-1] = (bounds[-1][0], last[1])
    return bounds


def _warmup_cosine(total: int) -> Callable[[int], float]:
    warm = max(1, int(_WARMUP * total))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    return factor


# ---------------------------------------------------------------------------- towers
class _Tower:
    """One side during training: pooled vectors (or an encoder module on decoded items) -> head."""

    def __init__(
        self,
        head: ProjectionHead,
        data: Any,
        *,
        module: EncoderModule | None = None,
        encoder: Encoder | None = None,
    ) -> None:
        self.head = head
        self.module = module
        self.encoder = encoder
        self.data = data if module is not None else self._frozen_pooled(data)

    def _frozen_pooled(self, data: Any) -> torch.Tensor:
        if len(data) == 0:
            return torch.zeros((0, self.head.in_dim))
        if not isinstance(data, np.ndarray) and self.encoder is not None:
            # Decoded items of a frozen side: encode them once, not every step.
            data = np.stack([e.pooled for e in self.encoder.encode(list(data))])
        return torch.from_numpy(np.asarray(data, np.float32))

    def on(self, data: Any) -> _Tower:
        """The same side over other data (the held-out pairs)."""
        return _Tower(self.head, data, module=self.module, encoder=self.encoder)

    def trainable(self) -> list[nn.Parameter]:
        if self.module is None:
            return []
        return [p for p in self.module.parameters() if p.requires_grad]

    def pooled(self, idx: torch.Tensor | range) -> torch.Tensor:
        if self.module is None:
            return self.data[idx]
        assert self.encoder is not None
        batch = self.encoder.collate([self.data[int(i)] for i in idx])
        return self.module(batch)[2].float()

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooled(idx))

    @torch.no_grad()
    def embed_all(self) -> np.ndarray:
        n = len(self.data)
        parts = [self(torch.arange(s, min(s + _EVAL_BATCH, n))) for s in range(0, n, _EVAL_BATCH)]
        return torch.cat(parts).numpy() if parts else np.zeros((0, self.head.out_dim), np.float32)


def _tower(
    side: str,
    data: Any,
    head: ProjectionHead,
    encoder: Encoder | None,
    tuned: set[str],
    k: int,
) -> _Tower:
    if side not in tuned:
        tower = _Tower(head, data, encoder=encoder)
        head.fit_input_stats(tower.data)
        return tower
    assert encoder is not None
    module = encoder.module()
    module.set_trainable(k)
    # Eval mode keeps batch-norm statistics and dropout of the pre-trained blocks as they were;
    # the unfrozen blocks still get gradients.
    module.eval()
    tower = _Tower(head, data, module=module, encoder=encoder)
    with torch.no_grad():
        head.fit_input_stats(tower.pooled(range(min(len(data), _EVAL_BATCH))))
    return tower


def _evaluate(towers: dict[str, _Tower], groups: np.ndarray) -> dict[str, Any]:
    for t in towers.values():
        t.head.eval()
    return retrieval_metrics(towers["a"].embed_all(), towers["b"].embed_all(), groups=groups)


def _flat(metrics: dict[str, Any]) -> dict[str, float]:
    out = {"mean_R@1": float(metrics["mean_R@1"])}
    for direction in ("a_to_b", "b_to_a"):
        for key, value in metrics[direction].items():
            if key.startswith("R@"):
                out[f"{direction}.{key}"] = float(value.value)
    return out


def _alignment(
    sides: dict[str, Side],
    heads: dict[str, ProjectionHead],
    loss: str,
    loss_fn: nn.Module,
    towers: dict[str, _Tower],
    history: TrainHistory,
    seed: int,
) -> Alignment:
    """A detached copy of the current state (training goes on with the live modules)."""
    tuned = {s: copy.deepcopy(t.module).eval() for s, t in towers.items() if t.module is not None}
    bias = getattr(loss_fn, "logit_bias", None)
    return Alignment(
        sides["a"],
        sides["b"],
        copy.deepcopy(heads["a"]),
        copy.deepcopy(heads["b"]),
        loss=loss,
        logit_scale=float(loss_fn.logit_scale.detach()),
        logit_bias=None if bias is None else float(bias.detach()),
        tuned=tuned,
        record={"seed": seed},
    )


def _record(history: TrainHistory) -> dict[str, Any]:
    best = history.best_metrics
    val: dict[str, Any] = {}
    if best is not None:
        val = {k: round(v, 4) for k, v in _flat(best).items()}
    return {
        "pairs_train": history.n_train,
        "pairs_val": history.n_val,
        "pairs_skipped": history.skipped,
        "best_epoch": history.best_epoch,
        "epochs_run": len(history.epochs),
        "seconds": round(history.seconds, 2),
        "val": val,
    }

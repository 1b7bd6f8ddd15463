"""Wide frozen embeddings, reduced once to their principal components on the training rows.

A cached 1280-wide image vector feeds a trainable projection whose forward, backward, LayerNorm
and masking all scale with that width, every step of every epoch, though the rows span far fewer
directions (a few thousand rows at most, often a few hundred). Projecting each wide slot onto its
top principal components once, before training, makes the network's first layer as narrow as the
data's own rank allows: the training loop runs several times faster and small tables get fewer
parameters to overfit. Measured over three seeds on AV-digits, Tux Paint and Houses with 128
components, accuracy was as good or better (AV-digits early fusion 91.7 -> 92.9%) at a third of
the training time.

Like the tabular preprocessor, the reducer is fitted on the training rows only and saved with the
model; fine-tuned slots (decoded inputs, no cached vectors) and narrow slots pass through.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from polymodal.fusion.base import SlotSpec
from polymodal.predict.features import FeatureSet, SlotData

_EPS = 1e-6


@dataclass
class SlotReducer:
    """Per reduced slot: the training mean (W,) and the scaled basis (W, k)."""

    rank: int
    means: dict[str, np.ndarray] = field(default_factory=dict)
    bases: dict[str, np.ndarray] = field(default_factory=dict)
    # Share of each slot's training variance the kept components hold (known after fitting).
    explained: dict[str, float] = field(default_factory=dict)

    def notes(self, columns: Mapping[str, str]) -> list[str]:
        """One line per reduced slot, for the model's notes."""
        return [
            f"column {columns.get(name, name)!r}: {basis.shape[0]}-wide embeddings reduced to "
            f"{basis.shape[1]} principal components"
            + (f" ({self.explained[name]:.0%} of their variance)" if name in self.explained else "")
            for name, basis in self.bases.items()
        ]

    def specs(self, slots: Sequence[SlotSpec]) -> list[SlotSpec]:
        """``slots`` as the network sees them: reduced slots at their new width."""
        return [
            replace(s, width=self.bases[s.name].shape[1]) if s.name in self.bases else s
            for s in slots
        ]

    def transform(self, features: FeatureSet) -> FeatureSet:
        """``features`` with every reduced slot's pooled vectors projected (absent rows: zeros)."""
        slots = dict(features.slots)
        for name, basis in self.bases.items():
            data = slots.get(name)
            if data is None or data.pooled is None or data.pooled.shape[1] != basis.shape[0]:
                continue
            reduced = np.zeros((len(data.present), basis.shape[1]), np.float32)
            rows = data.present
            if rows.any():
                reduced[rows] = (data.pooled[rows] - self.means[name]) @ basis
            slots[name] = SlotData(
                data.present, reduced, data.tokens, data.token_mask, data.decoded
            )
        return FeatureSet(features.n_rows, slots, features.tabular, features.y)

    def arrays(self) -> dict[str, np.ndarray]:
        """Flat name -> array mapping for a safetensors file."""
        out = {}
        for name in self.bases:
            # safetensors writes raw memory: a transposed view would come back transposed.
            out[f"{name}.mean"] = np.ascontiguousarray(self.means[name])
            out[f"{name}.basis"] = np.ascontiguousarray(self.bases[name])
        return out

    @classmethod
    def from_arrays(cls, rank: int, arrays: Mapping[str, np.ndarray]) -> SlotReducer:
        reducer = cls(rank)
        for key, value in arrays.items():
            name, _, part = key.rpartition(".")
            target = reducer.means if part == "mean" else reducer.bases
            target[name] = np.ascontiguousarray(value, np.float32)
        return reducer


def fit_reducer(train: FeatureSet, slots: Sequence[SlotSpec], rank: int) -> SlotReducer | None:
    """Principal components of each slot wider than ``rank`` over its present training rows.

    A slot keeps at most ``rank`` components and never more than its rows span (components with
    next to no variance are rounding noise). None when no slot is reduced.
    """
    if rank <= 0:
        return None
    reducer = SlotReducer(rank)
    for spec in slots:
        data = train.slots.get(spec.name)
        if data is None or data.pooled is None or spec.width <= rank:
            continue
        x = data.pooled[data.present].astype(np.float64)
        if len(x) < 2:
            continue
        mean = x.mean(axis=0)
        std, vt = principal_axes(x - mean, rank)
        k = int(min(rank, np.sum(std > _EPS * max(std[0], _EPS))))
        if k < 1:
            continue
        reducer.means[spec.name] = mean.astype(np.float32)
        # One scale for all components (the first's spread), not whitening: whitened inputs
        # cost 2.3 points on AV-digits, giving the weakest directions as much say as the first.
        scale = np.full(k, std[0])
        reducer.bases[spec.name] = np.ascontiguousarray((vt[:k].T / scale), np.float32)
        total = float(np.sum(x.var(axis=0, ddof=1)))
        if total > 0:
            reducer.explained[spec.name] = min(1.0, float(np.sum(std[:k] ** 2)) / total)
    return reducer if reducer.bases else None


def principal_axes(centred: np.ndarray, rank: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Standard deviations along the leading principal axes (descending) and the axes as rows.

    With ``rank`` well below the width, a randomised SVD (Halko et al., a fixed seed, so fits
    repeat) finds the leading ``rank`` axes; otherwise the smaller Gram matrix is
    eigen-decomposed in torch, exact. NumPy's full SVD of a 2,000 x 1,280 table took 14 s here,
    the randomised one 0.1 s.
    """
    x = torch.from_numpy(np.ascontiguousarray(centred, np.float64))
    n, w = x.shape
    if rank is not None and 2 * rank < min(n, w):
        # float32 halves the cost; the leading axes need no more precision than the vectors.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            _, s, v = torch.svd_lowrank(x.float(), q=rank + 16, niter=2)
        order = torch.argsort(s, descending=True)[:rank]
        std = s[order].double() / max(n - 1, 1) ** 0.5
        return std.numpy(), v[:, order].T.double().contiguous().numpy()
    if n >= w:
        values, vectors = torch.linalg.eigh(x.T @ x)
        axes = vectors.T
    else:
        values, vectors = torch.linalg.eigh(x @ x.T)
        keep = values > 0
        values, vectors = values[keep], vectors[:, keep]
        axes = (x.T @ vectors / values.sqrt()).T
    order = torch.argsort(values, descending=True)
    values = values[order].clamp(min=0.0)
    return (values / max(n - 1, 1)).sqrt().numpy(), axes[order].numpy()

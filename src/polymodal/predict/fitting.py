"""Model selection: train every candidate network on the training rows, pick the best on the
validation rows, and score each on test rows (for the leaderboard only, never for choosing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from polymodal.predict.auto import Candidate, Trained, fit_candidates
from polymodal.predict.features import FeatureSet, slot_groups
from polymodal.predict.network import PredictorNetwork
from polymodal.predict.problem import Target, class_weights
from polymodal.predict.train import TrainResult, train_network


def select_network(
    cands: Sequence[Candidate],
    build: Callable[[Candidate], PredictorNetwork],
    train_fs: FeatureSet,
    val_fs: FeatureSet,
    test_fs: FeatureSet | None = None,
    *,
    target: Target,
    epochs: int,
    patience: int,
    lr: float,
    weight_decay: float,
    batch_size: int,
    modality_dropout: float,
    balanced: bool,
    seed: int,
    progress: bool,
) -> tuple[Trained, list[dict[str, Any]]]:
    """Train each of ``cands`` (built by ``build``) and return the best with the leaderboard.

    ``balanced``: weigh classes inversely to their training counts.
    """
    weights: np.ndarray | None = None
    if target.is_classification and balanced:
        assert train_fs.y is not None
        weights = class_weights(train_fs.y, target.n_outputs)
    slots = [s for c in cands for s in c.slots]
    groups = slot_groups(list({s.name: s for s in slots}.values()))
    train_t, val_t = train_fs.tensors(), val_fs.tensors()

    def train_one(network: PredictorNetwork, name: str) -> TrainResult:
        return train_network(
            network,
            train_t,
            val_t,
            target=target,
            groups=groups,
            epochs=epochs,
            patience=patience,
            lr=lr,
            weight_decay=weight_decay,
            batch_size=batch_size,
            modality_dropout=modality_dropout,
            class_weight=weights,
            seed=seed,
            progress=progress,
            desc=f"fit {name}",
        )

    return fit_candidates(
        cands,
        build,
        train_one,
        target=target,
        seed=seed,
        test=None if test_fs is None else test_fs.tensors(),
    )

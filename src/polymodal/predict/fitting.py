"""Model selection: train every candidate network on the training rows, pick the best on the
validation rows, and score each on test rows (for the leaderboard only, never for choosing).

With ``refit``, the chosen candidate is then trained afresh on training + validation rows for as
many epochs as its validated run needed, replaying that run's learning rates: on small tables a
third more rows (a 60/20/20 split) is worth more than anything validation could still tell (Tux
Paint: a logistic regression gains 2 to 3 points from it). Everything chosen was chosen on
validation alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from polymodal.predict.auto import Candidate, Trained, fit_candidates
from polymodal.predict.features import FeatureSet, concat_features, slot_groups
from polymodal.predict.network import EnsembleNetwork, PredictorNetwork
from polymodal.predict.problem import Target, class_weights
from polymodal.predict.train import (
    TrainResult,
    network_outputs,
    refit_network,
    score_outputs,
    seeded,
    train_network,
    training_threads,
)


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
    refit: bool = False,
    ensemble: int = 1,
) -> tuple[Trained, list[dict[str, Any]]]:
    """Train each of ``cands`` (built by ``build``) and return the best with the leaderboard.

    ``balanced``: weigh classes inversely to their training counts. ``refit``: the returned
    network is the best candidate retrained on train + val (see the module docstring); its
    leaderboard row gains ``refit_rows``, ``refit_seconds`` and, with test rows,
    ``final_test_score`` (the other scores stay those of the validated run, comparable across
    candidates). ``ensemble=k`` (with ``refit``): k refits from seeds ``seed .. seed+k-1``,
    averaged by an :class:`EnsembleNetwork`.
    """

    def weights_for(fs: FeatureSet) -> np.ndarray | None:
        if not (target.is_classification and balanced):
            return None
        assert fs.y is not None
        return class_weights(fs.y, target.n_outputs)

    weights = weights_for(train_fs)
    slots = [s for c in cands for s in c.slots]
    groups = slot_groups(list({s.name: s for s in slots}.values()))
    train_t, val_t = train_fs.tensors(), val_fs.tensors()

    def train_one(network: PredictorNetwork, name: str) -> TrainResult:
        with training_threads(network):
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

    test_t = None if test_fs is None else test_fs.tensors()
    best, board = fit_candidates(cands, build, train_one, target=target, seed=seed, test=test_t)
    if not refit or val_fs.y is None or best.result.best_epoch < 1:
        return best, board
    combined = concat_features(train_fs, val_fs)
    combined_t = combined.tensors()
    members, seconds = [], 0.0
    for member_seed in range(seed, seed + max(1, ensemble)):
        with seeded(member_seed):
            member = build(best.candidate)
            with training_threads(member):
                seconds += refit_network(
                    member,
                    combined_t,
                    target=target,
                    groups=groups,
                    lrs=[h["lr"] for h in best.result.history[: best.result.best_epoch]],
                    weight_decay=weight_decay,
                    batch_size=batch_size,
                    modality_dropout=modality_dropout,
                    class_weight=weights_for(combined),
                    seed=member_seed,
                    progress=progress,
                    desc=f"refit {best.candidate.name}",
                )
        members.append(member)
    network = (
        members[0]
        if len(members) == 1
        else EnsembleNetwork(members, classification=target.is_classification)
    )
    best.network = network
    row = next(r for r in board if r["chosen"])
    row.update(refit_rows=len(combined), refit_seconds=round(seconds, 3), ensemble=len(members))
    if test_t is not None and test_t.y is not None and len(test_t):
        final = score_outputs(target, test_t.y.numpy(), network_outputs(network, test_t))
        row["final_test_score"] = final[row["metric"]]
    return best, board

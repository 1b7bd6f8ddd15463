"""What the HTML report shows about a fitted network on labelled rows: the robustness curve (score
as each modality group goes missing from more rows), the confusion matrix or the residuals, and
the leaderboard in the report's terms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from polymodal.predict.features import FeatureSet
from polymodal.predict.metrics import PRIMARY_METRIC
from polymodal.predict.network import Network
from polymodal.predict.problem import Target
from polymodal.predict.robustness import robustness_curve
from polymodal.predict.train import score_outputs


def robustness(
    network: Network,
    fs: FeatureSet,
    groups: Mapping[str, Sequence[str]],
    target: Target,
    *,
    seed: int,
) -> pd.DataFrame:
    """The primary metric with each group forced absent in a growing share of ``fs``'s rows.

    Raises :class:`~polymodal.predict.robustness.UndefinedScoreError` when the metric is
    undefined on these rows (AUROC of a single class).
    """
    from polymodal.predict.train import network_outputs

    assert fs.y is not None
    x, y = fs.tensors(), fs.y
    metric = PRIMARY_METRIC[target.problem][0]

    def score(drop: dict[str, np.ndarray]) -> float:
        keep = {slot: torch.from_numpy(~drop[g]) for g, slots in groups.items() for slot in slots}
        return score_outputs(target, y, network_outputs(network, x, keep))[metric]

    present = {g: np.any([fs.present(s) for s in slots], axis=0) for g, slots in groups.items()}
    return robustness_curve(score, list(groups), len(fs), seed=seed, present=present)


def robustness_or_reason(
    network: Network,
    fs: FeatureSet,
    groups: Mapping[str, Sequence[str]],
    target: Target,
    *,
    seed: int,
) -> tuple[pd.DataFrame | None, str | None]:
    """:func:`robustness`, or None and why not when the metric is undefined on these rows
    (a one-class test table leaves AUROC undefined; the rest of a report still holds)."""
    from polymodal.predict.robustness import UndefinedScoreError

    try:
        return robustness(network, fs, groups, target, seed=seed), None
    except UndefinedScoreError:
        metric = PRIMARY_METRIC[target.problem][0]
        return None, f"the {metric} is undefined on these rows (for example, they hold one class)"


def confusion(target: Target, y: np.ndarray, outputs: np.ndarray) -> tuple[list[Any], np.ndarray]:
    """Class names and the (true, predicted) count matrix."""
    k = target.n_outputs
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (y, outputs.argmax(axis=1)), 1)
    return list(target.classes), counts


def report_leaderboard(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Leaderboard rows as the report lists them: single modality or fusion, val and test."""
    return [
        {
            "model": row["candidate"],
            "kind": "single" if row["candidate"].endswith(" only") else "fusion",
            "val": row["val_score"],
            "test": row.get("test_score"),
            "metric": row["metric"],
            "chosen": row["chosen"],
            "seconds": row["fit_seconds"],
        }
        for row in rows
    ]

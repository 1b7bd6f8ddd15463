"""Candidates to train and the leaderboard that compares them.

``fusion="auto"`` trains each modality group alone (early fusion over that group's slots), then
early, late, hybrid and linear fusion over every slot, and keeps the best on validation. A single
fusion kind is the same machinery with one candidate, so both paths report alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from polymodal.fusion.base import SlotSpec
from polymodal.fusion.registry import FUSION_KINDS
from polymodal.predict.features import FeatureTensors, slot_groups
from polymodal.predict.metrics import PRIMARY_METRIC
from polymodal.predict.network import Network, PredictorNetwork
from polymodal.predict.problem import Target
from polymodal.predict.train import (
    TrainResult,
    improves,
    network_outputs,
    score_outputs,
    seeded,
)


@dataclass(frozen=True)
class Candidate:
    """A network to try: a name for the leaderboard, a fusion kind, the slots it reads."""

    name: str
    kind: str
    slots: tuple[SlotSpec, ...]


@dataclass
class Trained:
    candidate: Candidate
    network: Network
    result: TrainResult
    test_metrics: dict[str, float] | None = None


def candidates(fusion: str, slots: Sequence[SlotSpec]) -> list[Candidate]:
    """``fusion="auto"``: one per modality group alone (when there are several), then each fusion
    kind over every slot; otherwise just ``fusion`` over every slot.
    """
    if fusion != "auto":
        return [Candidate(fusion, fusion, tuple(slots))]
    out = []
    groups = slot_groups(slots)
    if len(groups) > 1:
        for group, names in groups.items():
            chosen = tuple(s for s in slots if s.name in names)
            out.append(Candidate(f"{group} only", "early", chosen))
    out += [Candidate(kind, kind, tuple(slots)) for kind in FUSION_KINDS]
    return out


def fit_candidates(
    cands: Sequence[Candidate],
    build: Callable[[Candidate], PredictorNetwork],
    train: Callable[[PredictorNetwork, str], TrainResult],
    *,
    target: Target,
    seed: int,
    test: FeatureTensors | None = None,
) -> tuple[Trained, list[dict[str, Any]]]:
    """Build and train every candidate (each from the same seed), score it on ``test`` when
    given, and return the best on validation with the leaderboard, best first.
    """
    trained: list[Trained] = []
    for cand in cands:
        with seeded(seed):
            network = build(cand)
            result = train(network, cand.name)
        item = Trained(cand, network, result)
        if test is not None and test.y is not None and len(test):
            item.test_metrics = score_outputs(
                target, test.y.numpy(), network_outputs(network, test)
            )
        trained.append(item)
    best = trained[0]
    for item in trained[1:]:
        # Ties on the score (small validation sets saturate) go to the lower validation loss.
        if improves(_key(item), _key(best), target.problem):
            best = item
    ranked = sorted(trained, key=lambda t: _rank_key(t, target.problem))
    return best, [leaderboard_row(t, chosen=t is best) for t in ranked]


def leaderboard_row(item: Trained, *, chosen: bool) -> dict[str, Any]:
    """One leaderboard entry: JSON-friendly numbers and names only."""
    res = item.result
    row: dict[str, Any] = {
        "candidate": item.candidate.name,
        "fusion": item.candidate.kind,
        "groups": list(slot_groups(item.candidate.slots)),
        "metric": res.metric,
        "val_score": res.val_score,
        "val_loss": res.val_loss,
        "test_score": None if item.test_metrics is None else item.test_metrics[res.metric],
        "fit_seconds": round(res.seconds, 3),
        "best_epoch": res.best_epoch,
        "epochs": res.epochs_run,
        "chosen": chosen,
        "val_metrics": dict(res.val_metrics),
    }
    if item.test_metrics is not None:
        row["test_metrics"] = dict(item.test_metrics)
    return row


def format_leaderboard(rows: Sequence[Mapping[str, Any]]) -> str:
    """The leaderboard as an aligned text table."""
    if not rows:
        return ""
    metric = rows[0]["metric"]
    has_test = any(r.get("test_score") is not None for r in rows)
    header = ["candidate", f"val {metric}", *([f"test {metric}"] if has_test else []), "seconds"]
    lines = [header]
    for r in rows:
        cells = [("* " if r["chosen"] else "  ") + r["candidate"], _number(r["val_score"])]
        if has_test:
            test = r.get("test_score")
            cells.append("-" if test is None else _number(test))
        cells.append(f"{r['fit_seconds']:.1f}")
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    table = "\n".join(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )
    kept = next((r for r in rows if r["chosen"] and r.get("final_test_score") is not None), None)
    if kept is None:
        return table
    # the rows compare candidates as validated; the saved model is the refit, scored apart
    return (
        f"{table}\nsaved model (the kept candidate retrained on training + validation rows): "
        f"test {metric} {_number(kept['final_test_score'])}"
    )


def _number(value: float | None) -> str:
    """Scores as people read them: 0.8731, or 123,234 for errors in the label's units."""
    if value is None or value != value:
        return "nan"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4f}"


def _key(item: Trained) -> tuple[float, float]:
    return (item.result.val_score, item.result.val_loss)


def _rank_key(item: Trained, problem: str) -> tuple[float, float]:
    score, loss = _key(item)
    if score != score:  # NaN last
        return (float("inf"), loss)
    return (-score if PRIMARY_METRIC[problem][1] else score, loss)

"""Fusion benchmark of issue 3: each modality alone vs early / late / hybrid fusion, on real data,
fixed splits, mean ± std over seeds; and how each fusion holds up when one modality is missing.

For every data set and seed (``benchmarks/datasets``):

- ``<group> only``: ``Predictor(fusion="early")`` on that modality group's columns alone;
- ``early`` / ``late`` / ``hybrid``: ``Predictor(fusion=kind)`` on every input column;
- Houses also gets the no-photo control: a ridge regression on the tabular columns averaged with
  the tabular-only Predictor, so that ensembling two models is not mistaken for fusion;
- robustness: each fusion model scored on the test split with one modality group's cells blanked
  in 50% of the rows (the same rows for every model of a seed).

Every model is fitted on the train split, early-stopped on val, scored on test. Embeddings come
from the cache under ``--work`` (the first run encodes everything; later runs reuse it).

    .venv/bin/python benchmarks/fuse_benchmark.py --dataset all --seeds 0 1 2 \
        --json out/bench/fuse.json --markdown out/bench/fuse.md
    .venv/bin/python benchmarks/fuse_benchmark.py --dataset houses --seeds 0 --limit 120 \
        --epochs 20   # a quick check of the script, not a result
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import benchmarks.*, never a stray "datasets"
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np
import pandas as pd

from benchmarks.datasets import NAMES, BenchData, build

FUSIONS = ("early", "late", "hybrid", "linear")
MISSING_FRACTION = 0.5
FALLBACK = "single-modality fallback"
# Reported per problem; the first is the headline (higher is better for accuracy only).
METRICS = {"multiclass": ("accuracy", "macro_f1"), "regression": ("mae", "mape", "log_mae")}


# ------------------------------------------------------------------------------ scoring
def score(problem: str, truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Test metrics from predictions (computed here, identically for every kind of model)."""
    if problem == "regression":
        truth, pred = truth.astype(float), pred.astype(float)
        err = np.abs(pred - truth)
        return {
            "mae": float(err.mean()),
            "mape": float((err / np.abs(truth)).mean()),
            "log_mae": float(np.abs(np.log(np.clip(pred, 1.0, None)) - np.log(truth)).mean()),
        }
    truth, pred = truth.astype(str), pred.astype(str)
    f1 = []
    for c in np.union1d(truth, pred):
        tp = np.sum((pred == c) & (truth == c))
        denominator = np.sum(pred == c) + np.sum(truth == c)
        f1.append(2.0 * tp / denominator if denominator else 0.0)
    return {"accuracy": float((truth == pred).mean()), "macro_f1": float(np.mean(f1))}


def blank(frame: pd.DataFrame, columns: Sequence[str], rows: np.ndarray) -> pd.DataFrame:
    """A copy of ``frame`` with ``columns`` empty in ``rows`` (a missing modality)."""
    out = frame.copy()
    for c in columns:
        out[c] = out[c].astype(object)
        out.loc[rows, c] = None
    return out


def missing_rows(n: int, seed: int) -> np.ndarray:
    """The test rows that lose a modality: the same for every model and group of a seed."""
    k = math.floor(MISSING_FRACTION * n + 0.5)
    return np.sort(np.random.default_rng([seed, 50]).permutation(n)[:k])


# ------------------------------------------------------------------------------ models
def make_predictor(
    data: BenchData, kind: str, columns: Sequence[str], seed: int, opts: dict
) -> Any:
    from polymodal.predict.predictor import Predictor

    return Predictor(
        label=data.label,
        fusion=kind,
        problem=data.problem,
        columns=data.modalities(tuple(columns)),
        seed=seed,
        cache_dir=str(opts["cache_dir"]),
        progress=opts["progress"],
        **opts["predictor"],
    )


def ridge_control(data: BenchData) -> np.ndarray:
    """Houses: test predictions of a ridge regression on the tabular columns (train split), on
    log area and log price: the strongest simple tabular model in ``fuse_baselines.py``."""
    from sklearn.compose import TransformedTargetRegressor, make_column_transformer
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    cols = list(data.groups["tabular"])
    numeric = [c for c in cols if data.columns[c] == "numeric"]
    categorical = [c for c in cols if data.columns[c] == "categorical"]
    model = TransformedTargetRegressor(
        make_pipeline(
            make_column_transformer(
                (StandardScaler(), numeric),
                (OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
            ),
            RidgeCV(alphas=np.logspace(-2, 5, 15)),
        ),
        func=np.log,
        inverse_func=np.exp,
    )

    def inputs(split: str) -> pd.DataFrame:
        frame = data.part(split, tuple(cols))
        frame["area"] = np.log(frame["area"].astype(float))
        return frame

    train = inputs("train")
    model.fit(train[cols], train[data.label].to_numpy(float))
    return model.predict(inputs("test")[cols])


def fallback(
    data: BenchData,
    test: pd.DataFrame,
    singles: dict[str, tuple[Any, float]],
    group: str,
    drop: np.ndarray,
) -> np.ndarray:
    """The fair single-modality comparator under missingness: ``group`` is blanked in the
    ``drop`` rows, and each row is predicted by the single-modality model with the best
    *validation* score among the groups that row still has (a row with none: the best model,
    from its learned missing inputs)."""
    blanked = blank(test, data.groups[group], drop)
    ranked = sorted(singles, key=lambda g: singles[g][1], reverse=data.problem != "regression")
    out = np.asarray(singles[ranked[0]][0].predict(blanked), dtype=object)
    chosen = np.zeros(len(test), bool)
    for g in ranked:
        has = blanked[list(data.groups[g])].notna().any(axis=1).to_numpy() & ~chosen
        if has.any():
            keep = [*data.groups[g], data.label]
            out[has] = np.asarray(singles[g][0].predict(blanked[keep]), dtype=object)[has]
            chosen |= has
    return out


def _val_score(model: Any, problem: str) -> float:
    metric = "mae" if problem == "regression" else "accuracy"
    return float(model.val_metrics_[metric])


def run_seed(data: BenchData, seed: int, opts: dict) -> dict[str, Any]:
    """Every model of one data set and seed: test scores, fit seconds, robustness."""
    train, val, test = data.part("train"), data.part("val"), data.part("test")
    truth = test[data.label].to_numpy()
    drop = missing_rows(len(test), seed)
    results: dict[str, dict[str, float]] = {}
    robust: dict[str, dict[str, dict[str, float]]] = {}
    preds: dict[str, np.ndarray] = {}

    singles: dict[str, tuple[Any, float]] = {}  # group -> (model, validation score)

    def fit(name: str, kind: str, columns: Sequence[str]) -> Any:
        keep = [*columns, data.label]
        start = time.perf_counter()
        model = make_predictor(data, kind, columns, seed, opts).fit(train[keep], val[keep])
        seconds = time.perf_counter() - start
        preds[name] = np.asarray(model.predict(test[keep]))
        results[name] = {**score(data.problem, truth, preds[name]), "fit_s": seconds}
        _log(f"  {data.name} seed {seed} {name}: {_brief(results[name])} ({seconds:.0f} s)")
        return model

    if len(data.groups) > 1 and not opts["no_single"]:
        for group, columns in data.groups.items():
            model = fit(f"{group} only", "early", columns)
            singles[group] = (model, _val_score(model, data.problem))
    for kind in opts["fusions"]:
        model = fit(kind, kind, tuple(data.columns))
        if len(data.groups) > 1:
            robust[kind] = {}
            for group, columns in data.groups.items():
                pred = np.asarray(model.predict(blank(test, columns, drop)))
                robust[kind][group] = score(data.problem, truth, pred)
    if singles:
        robust["single-modality fallback"] = {
            group: score(data.problem, truth, fallback(data, test, singles, group, drop))
            for group in data.groups
        }
    if data.name == "houses" and "tabular only" in preds:
        preds["ridge"] = ridge_control(data)
        results["tabular ridge"] = score(data.problem, truth, preds["ridge"])
        control = (preds["ridge"] + preds["tabular only"].astype(float)) / 2
        results["no-photo control (ridge + tabular only)"] = score(data.problem, truth, control)
    present = {
        g: float(data.frame[list(cols)].notna().any(axis=1).mean())
        for g, cols in data.groups.items()
    }
    return {
        "sizes": data.sizes(),
        "present": present,
        "notes": data.notes,
        "models": results,
        "robustness": robust,
    }


# ------------------------------------------------------------------------------ summary
def summarise(runs: list[dict[str, Any]], problem: str) -> dict[str, Any]:
    """Mean and std over seeds of every model's metrics and every robustness score."""

    def agg(values: list[float]) -> dict[str, float]:
        return {"mean": float(np.mean(values)), "std": float(np.std(values)), "n": len(values)}

    models: dict[str, dict[str, dict[str, float]]] = {}
    for name in runs[0]["models"]:
        metrics = runs[0]["models"][name]
        models[name] = {m: agg([r["models"][name][m] for r in runs]) for m in metrics}
    robust: dict[str, dict[str, dict[str, float]]] = {}
    for kind, groups in runs[0]["robustness"].items():
        robust[kind] = {
            g: {m: agg([r["robustness"][kind][g][m] for r in runs]) for m in metrics}
            for g, metrics in groups.items()
        }
    return {"problem": problem, "models": models, "robustness": robust}


def markdown(name: str, summary: dict[str, Any], seeds: Sequence[int], run: dict) -> str:
    problem = summary["problem"]
    metrics = METRICS[problem]
    head = metrics[0]
    lines = [
        f"### {name} (rows per split: {run['sizes']}; mean ± std over seeds {list(seeds)})",
        "",
        *[
            f"Only {share:.0%} of the rows have {group}; the others have it missing.\n"
            for group, share in run["present"].items()
            if share < 1.0
        ],
        "| model | " + " | ".join(metrics) + " | fit s |",
        "|---" * (len(metrics) + 2) + "|",
    ]
    for model, m in summary["models"].items():
        cells = [_pm(k, m[k]) for k in metrics]
        fit_s = f"{m['fit_s']['mean']:.0f}" if "fit_s" in m else ""
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {fit_s} |")
    if summary["robustness"]:
        singles = {k: v for k, v in summary["models"].items() if k.endswith(" only")}
        better = max if problem != "regression" else min
        best = better(singles, key=lambda k: singles[k][head]["mean"]) if singles else None
        lines += [
            "",
            f"Robustness: {head} with one modality group blanked in "
            f"{MISSING_FRACTION:.0%} of the test rows"
            + (
                f" (best single modality: {best}, {_pm(head, singles[best][head])})" if best else ""
            ),
            "",
            "| fusion | all present | "
            + " | ".join(f"{g} missing" for g in next(iter(summary["robustness"].values())))
            + " |",
            "|---" * (2 + len(next(iter(summary["robustness"].values())))) + "|",
        ]
        comparator = summary["robustness"].get(FALLBACK)
        for kind, groups in summary["robustness"].items():
            if kind == FALLBACK:
                cells = [_pm(head, g[head]) for g in groups.values()]
                lines.append(
                    f"| {kind} | {_pm(head, singles[best][head])} | " + " | ".join(cells) + " |"
                )
                continue
            cells = [
                _pm(head, g[head])
                + _kept(summary, kind, best, g[head], head)
                + _below(comparator, group, g[head], head, problem)
                for group, g in groups.items()
            ]
            full = summary["models"][kind][head]
            lines.append(f"| {kind} | {_pm(head, full)} | " + " | ".join(cells) + " |")
        if best:
            lines += [
                "",
                "(in brackets, where the fusion beats the best single modality: the share of "
                "that gain kept with the modality missing; below 0% = worse than the single "
                f"modality. Row '{FALLBACK}': each row predicted by the single-modality model "
                "with the best validation score among the modalities the row still has; "
                "'< fallback' marks a fusion below it under the same missingness)",
            ]
    return "\n".join(lines)


def _below(comparator: dict | None, group: str, robust: dict, head: str, problem: str) -> str:
    if comparator is None:
        return ""
    sign = -1.0 if problem == "regression" else 1.0
    return " < fallback" if sign * robust["mean"] < sign * comparator[group][head]["mean"] else ""


def _kept(summary: dict, kind: str, best: str | None, robust: dict, head: str) -> str:
    if best is None:
        return ""
    sign = -1.0 if summary["problem"] == "regression" else 1.0  # MAE: lower is better
    full = sign * summary["models"][kind][head]["mean"]
    single = sign * summary["models"][best][head]["mean"]
    if full <= single:  # no fusion gain to keep
        return ""
    return f" [{(sign * robust['mean'] - single) / (full - single):.0%}]"


def _pm(metric: str, agg: dict[str, float]) -> str:
    if metric == "mae":
        return f"${agg['mean'] / 1000:,.1f}k ± {agg['std'] / 1000:,.1f}k"
    if metric == "log_mae":
        return f"{agg['mean']:.3f} ± {agg['std']:.3f}"
    return f"{100 * agg['mean']:.1f}% ± {100 * agg['std']:.1f}"


def _brief(scores: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in scores.items() if k != "fit_s")


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=[*NAMES, "all"], default="all")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--work", type=Path, default=Path("out/bench"))
    p.add_argument("--cache-dir", type=Path, default=None, help="default WORK/cache")
    p.add_argument("--fusions", nargs="+", choices=FUSIONS, default=list(FUSIONS))
    p.add_argument("--no-single", action="store_true", help="skip the single-modality models")
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        help="a small subset for checking the script (see each builder's limit)",
    )
    p.add_argument("--epochs", type=int, default=None, help="Predictor epochs (default: its own)")
    p.add_argument(
        "--tokens",
        choices=["pooled", "sequence"],
        default=None,
        help="Predictor tokens (hybrid over token states with 'sequence')",
    )
    p.add_argument("--weight-decay", type=float, default=None, help="Predictor weight_decay")
    p.add_argument("--dropout", type=float, default=None, help="Predictor dropout")
    p.add_argument("--patience", type=int, default=None, help="Predictor patience")
    p.add_argument("--ensemble", type=int, default=None, help="Predictor ensemble")
    p.add_argument("--batch-size", type=int, default=None, help="Predictor batch_size")
    p.add_argument(
        "--modality-dropout", type=float, default=None, help="Predictor modality_dropout"
    )
    p.add_argument("--no-refit", action="store_true", help="keep the validated run's network")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--progress", action="store_true", help="Predictor progress bars")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--markdown", type=Path, default=None)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    predictor_opts: dict[str, Any] = {}
    if args.epochs is not None:
        predictor_opts["epochs"] = args.epochs
    if args.tokens is not None:
        predictor_opts["tokens"] = args.tokens
    if args.weight_decay is not None:
        predictor_opts["weight_decay"] = args.weight_decay
    if args.modality_dropout is not None:
        predictor_opts["modality_dropout"] = args.modality_dropout
    if args.batch_size is not None:
        predictor_opts["batch_size"] = args.batch_size
    if args.ensemble is not None:
        predictor_opts["ensemble"] = args.ensemble
    if args.patience is not None:
        predictor_opts["patience"] = args.patience
    if args.dropout is not None:
        predictor_opts["dropout"] = args.dropout
    if args.no_refit:
        predictor_opts["refit"] = False
    opts = {
        "cache_dir": args.cache_dir or args.work / "cache",
        "progress": args.progress,
        "fusions": args.fusions,
        "no_single": args.no_single,
        "predictor": predictor_opts,
    }
    names = list(NAMES) if args.dataset == "all" else [args.dataset]
    report: dict[str, Any] = {"command": " ".join(sys.argv), "seeds": args.seeds, "datasets": {}}
    tables = []
    for name in names:
        runs = []
        for seed in args.seeds:
            options = {"limit": args.limit} if args.limit is not None else {}
            data = build(name, args.work, seed=seed, **options)
            runs.append(run_seed(data, seed, opts))
        summary = summarise(runs, data.problem)
        report["datasets"][name] = {"seeds": runs, "summary": summary}
        tables.append(markdown(name, summary, args.seeds, runs[0]))
        print(tables[-1] + "\n", flush=True)
        _write(args, report, tables)  # after each data set, so a long run keeps what it has


def _write(args: argparse.Namespace, report: dict, tables: list[str]) -> None:
    for path, text in (
        (args.json, json.dumps(report, indent=2, default=str)),
        (args.markdown, "\n\n".join(tables) + "\n"),
    ):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(text)
            tmp.replace(path)


if __name__ == "__main__":
    main()

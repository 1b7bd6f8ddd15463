"""Evaluation metrics in plain NumPy, so that predicting and evaluating need no scikit-learn.

Definitions follow scikit-learn's (the tests check the numbers against it): macro-F1 averages
over the labels seen in either ``y_true`` or ``y_pred``, a class with no predicted or true rows
scores 0; AUROC counts ties as half; one-vs-rest AUROC averages over the classes that occur in
``y_true`` with at least one other class beside them; MAPE is a fraction, not a percentage.
"""

from __future__ import annotations

import numpy as np

_EPS = float(np.finfo(np.float64).eps)

# The metric each problem is judged by (model selection, early stopping) and its direction.
PRIMARY_METRIC: dict[str, tuple[str, bool]] = {
    "binary": ("auroc", True),
    "multiclass": ("accuracy", True),
    "regression": ("mae", False),
}


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of rows predicted right."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y_true``."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    recalls = [np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]
    return float(np.mean(recalls))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unweighted mean F1 over every label in ``y_true`` or ``y_pred``."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    scores = []
    for c in np.union1d(y_true, y_pred):
        tp = np.sum((y_pred == c) & (y_true == c))
        denominator = np.sum(y_pred == c) + np.sum(y_true == c)
        scores.append(2.0 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores))


def auroc_binary(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties count half.

    NaN when ``y_true`` holds only one class.
    """
    y = np.asarray(y_true).astype(bool)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(np.asarray(score, dtype=np.float64))
    # Mann-Whitney U from the rank sum of the positives.
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def auroc(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Binary AUROC for (N, 2) probabilities, macro one-vs-rest AUROC for (N, K > 2)."""
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim == 1:
        return auroc_binary(y_true, proba)
    if proba.shape[1] == 2:
        return auroc_binary(y_true == 1, proba[:, 1])
    scores = [auroc_binary(y_true == k, proba[:, k]) for k in range(proba.shape[1])]
    valid = [s for s in scores if not np.isnan(s)]
    return float(np.mean(valid)) if valid else float("nan")


def log_loss(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-probability of the true class (probabilities renormalised, clipped)."""
    proba = np.asarray(proba, dtype=np.float64)
    proba = np.clip(proba, _EPS, 1.0 - _EPS)
    proba = proba / proba.sum(axis=1, keepdims=True)
    picked = proba[np.arange(proba.shape[0]), np.asarray(y_true, dtype=np.int64)]
    return float(-np.mean(np.log(picked)))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.abs(_f64(y_true) - _f64(y_pred))))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((_f64(y_true) - _f64(y_pred)) ** 2)))


def mape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute percentage error as a fraction (0.1 = 10 %).

    Rows whose true value is 0 are left out (a percentage of 0 is undefined; dividing by a tiny
    number instead let one such row dominate); nan when no row is left.
    """
    y_true, y_pred = _f64(y_true), _f64(y_pred)
    keep = y_true != 0
    if not keep.any():
        return float("nan")
    return float(np.mean(np.abs(y_true[keep] - y_pred[keep]) / np.abs(y_true[keep])))


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination; 1.0 for a perfect fit of a constant target, else 0.0 there."""
    y_true, y_pred = _f64(y_true), _f64(y_pred)
    ss_res = float(np.sum((y_true - y_pred) ** 2))
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Every classification metric from class indices (N,) and probabilities (N, K)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(proba).argmax(axis=1)
    return {
        "accuracy": accuracy(y_true, pred),
        "balanced_accuracy": balanced_accuracy(y_true, pred),
        "macro_f1": macro_f1(y_true, pred),
        "auroc": auroc(y_true, proba),
        "log_loss": log_loss(y_true, proba),
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, MAPE (fraction) and R2."""
    return {
        "mae": mae(y_true, y_pred),
        "rmse": rmse(y_true, y_pred),
        "mape": mape(y_true, y_pred),
        "r2": r2(y_true, y_pred),
    }


def is_better(a: float, b: float, problem: str) -> bool:
    """True when primary-metric value ``a`` beats ``b`` (NaN never wins)."""
    if np.isnan(a):
        return False
    if np.isnan(b):
        return True
    return a > b if PRIMARY_METRIC[problem][1] else a < b


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing their mean rank."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    # Start index of each run of equal values.
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], x.size]
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def _f64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).ravel()

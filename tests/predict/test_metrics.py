"""The NumPy metrics agree with scikit-learn's on the same inputs."""

from __future__ import annotations

import numpy as np
import pytest

from polymodal.predict import metrics

sk = pytest.importorskip("sklearn.metrics")


@pytest.fixture
def multiclass() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    logits = rng.normal(size=(200, 4)) + 1.5 * np.eye(4)[y]
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, proba


def test_classification_metrics_match_sklearn(multiclass: tuple[np.ndarray, np.ndarray]) -> None:
    y, proba = multiclass
    pred = proba.argmax(1)
    got = metrics.classification_metrics(y, proba)
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, pred))
    assert got["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(y, pred))
    assert got["macro_f1"] == pytest.approx(sk.f1_score(y, pred, average="macro"))
    assert got["auroc"] == pytest.approx(sk.roc_auc_score(y, proba, multi_class="ovr"))
    assert got["log_loss"] == pytest.approx(sk.log_loss(y, proba))


def test_binary_auroc_counts_ties_like_sklearn() -> None:
    y = np.array([0, 0, 1, 1, 0, 1, 1, 0])
    score = np.array([0.1, 0.5, 0.5, 0.9, 0.5, 0.2, 0.9, 0.3])  # ties across classes
    assert metrics.auroc_binary(y, score) == pytest.approx(sk.roc_auc_score(y, score))
    proba = np.stack([1 - score, score], axis=1)
    assert metrics.auroc(y, proba) == pytest.approx(sk.roc_auc_score(y, score))
    assert np.isnan(metrics.auroc_binary(np.ones(4), score[:4]))


def test_macro_f1_counts_a_never_predicted_class_as_zero() -> None:
    y = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 0, 0, 2, 2, 0])
    assert metrics.macro_f1(y, pred) == pytest.approx(
        sk.f1_score(y, pred, average="macro", zero_division=0)
    )
    assert metrics.balanced_accuracy(y, pred) == pytest.approx(sk.balanced_accuracy_score(y, pred))


def test_log_loss_clips_certain_mistakes() -> None:
    y = np.array([0, 1])
    proba = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert np.isfinite(metrics.log_loss(y, proba))
    assert metrics.log_loss(y, proba) == pytest.approx(sk.log_loss(y, proba))


def test_regression_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = rng.uniform(50, 500, 100)
    pred = y + rng.normal(0, 30, 100)
    got = metrics.regression_metrics(y, pred)
    assert got["mae"] == pytest.approx(sk.mean_absolute_error(y, pred))
    assert got["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(y, pred)))
    assert got["mape"] == pytest.approx(sk.mean_absolute_percentage_error(y, pred))
    assert got["r2"] == pytest.approx(sk.r2_score(y, pred))


def test_r2_of_a_constant_target() -> None:
    assert metrics.r2(np.ones(3), np.ones(3)) == 1.0
    assert metrics.r2(np.ones(3), np.array([1.0, 2.0, 1.0])) == 0.0


def test_is_better_follows_the_metric_direction() -> None:
    assert metrics.is_better(0.9, 0.8, "binary")
    assert metrics.is_better(10.0, 12.0, "regression")
    assert not metrics.is_better(float("nan"), 0.1, "multiclass")
    assert metrics.is_better(0.1, float("nan"), "multiclass")


def test_mape_leaves_out_rows_whose_true_value_is_zero() -> None:
    # Row 0 would divide by ~0 (110693 before); the others are 10 % and 20 % off.
    assert metrics.mape(np.array([0.0, 10.0, 5.0]), np.array([0.25, 11.0, 4.0])) == pytest.approx(
        0.15
    )
    assert np.isnan(metrics.mape(np.zeros(3), np.ones(3)))

"""Problem inference, label encoding and every bad label the user can give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from polymodal.errors import ConfigError, InputError
from polymodal.predict.problem import (
    MISSING_LABEL,
    Target,
    class_weights,
    infer_problem,
    prepare_target,
    stratified_split,
)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["cat", "dog", "cat"], "binary"),
        ([True, False, True], "binary"),
        (["a", "b", "c"], "multiclass"),
        ([0, 1, 2, 3, 1], "multiclass"),
        ([0.5, 1.25, 3.0, 2.0], "regression"),
        (list(range(100)), "regression"),
        ([str(v * 1.5) for v in range(40)], "regression"),
        ([1.0, 0.0, np.nan, 1.0], "binary"),
    ],
)
def test_infer_problem(values: list, expected: str) -> None:
    assert infer_problem(pd.Series(values)) == expected


def test_missing_label_column_lists_the_columns() -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    with pytest.raises(ConfigError, match=r"label column 'y' is not in the table.*'a', 'b'"):
        prepare_target(frame, "y")


def test_constant_label_is_an_error() -> None:
    frame = pd.DataFrame({"y": ["spam"] * 5 + [None]})
    with pytest.raises(ConfigError, match=r"same value \('spam'\) in every row"):
        prepare_target(frame, "y")


def test_nan_labels_are_dropped_and_reported() -> None:
    frame = pd.DataFrame({"y": ["a", None, "b", "", "a", "b", float("nan")]})
    prepared = prepare_target(frame, "y")
    assert prepared.rows.tolist() == [0, 2, 4, 5]
    assert [(s.row, s.column, s.problem) for s in prepared.skipped] == [
        (1, "y", MISSING_LABEL),
        (3, "y", MISSING_LABEL),
        (6, "y", MISSING_LABEL),
    ]
    assert "3 rows dropped" in prepared.notes[0]
    assert prepared.y.tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize(
    "values",
    [[1.0, 2.0, 3.0, float("inf"), 5.0], [1.5, 2.5, 3.5, -float("inf"), 5.5]],
    ids=["whole", "fractional"],
)
def test_an_infinite_label_is_an_error_naming_its_row(values: list[float]) -> None:
    frame = pd.DataFrame({"y": [None, *values] * 5})
    with pytest.raises(InputError, match=r"^row 4, column .y.: label is not a finite number"):
        prepare_target(frame, "y", problem="regression")
    with pytest.raises(InputError, match=r"^row 4, column 'y'"):
        prepare_target(frame.astype(object), "y")


def test_evaluate_names_the_row_of_an_infinite_label() -> None:
    from polymodal.predict import Predictor
    from tests.predict.test_predictor import fast

    x = np.arange(40, dtype=np.float64)
    frame = pd.DataFrame({"x": x, "y": 3.0 * x + 0.5})
    model = Predictor("y", fusion="early", **fast(epochs=2)).fit(frame)
    frame.loc[7, "y"] = np.inf
    with pytest.raises(InputError, match=r"^row 7, column 'y': label is not a finite number"):
        model.evaluate(frame)


def test_a_class_with_one_row_cannot_be_stratified() -> None:
    frame = pd.DataFrame({"y": ["a", "a", "b", "b", "c"]})
    with pytest.raises(ConfigError, match=r"class 'c' \(row 4\) has only one row"):
        prepare_target(frame, "y")
    # With a validation table given there is no split to stratify: the class is learned as is.
    assert prepare_target(frame, "y", stratify=False).target.classes == ["a", "b", "c"]


def test_binary_problem_needs_two_classes() -> None:
    with pytest.raises(ConfigError, match="needs two classes"):
        prepare_target(pd.DataFrame({"y": list("abcabc")}), "y", problem="binary")


def test_int_labels_with_a_gap_keep_their_type() -> None:
    frame = pd.DataFrame({"y": [3.0, 1.0, np.nan, 3.0, 1.0]})  # ints made float by the NaN
    prepared = prepare_target(frame, "y")
    assert prepared.target.classes == [1, 3]
    labels = prepared.target.labels(np.array([1, 0]))
    assert labels.tolist() == [3, 1] and labels.dtype == np.int64


def test_regression_target_is_standardised_and_log_chosen_for_skewed_prices() -> None:
    rng = np.random.default_rng(0)
    prices = np.exp(rng.normal(12, 0.8, 500))
    prepared = prepare_target(pd.DataFrame({"price": prices}), "price")
    target = prepared.target
    assert target.log and target.problem == "regression"
    assert abs(prepared.y.mean()) < 1e-5 and prepared.y.std() == pytest.approx(1.0, rel=1e-4)
    np.testing.assert_allclose(target.decode_regression(prepared.y), prices, rtol=1e-5)
    normal = prepare_target(pd.DataFrame({"t": rng.normal(20, 5, 500)}), "t").target
    assert not normal.log
    forced = prepare_target(pd.DataFrame({"p": prices}), "p", log_target=False).target
    assert not forced.log


def test_log_target_refuses_non_positive_labels() -> None:
    with pytest.raises(ConfigError, match="positive label"):
        prepare_target(pd.DataFrame({"t": np.linspace(-1, 1, 50)}), "t", log_target=True)


def test_unknown_class_at_encode_time_is_named() -> None:
    target = Target("binary", ["no", "yes"])
    with pytest.raises(ConfigError, match="not seen in training: maybe"):
        target.encode(pd.Series(["yes", "maybe"]))
    assert Target.from_dict(target.to_dict()) == target


def test_stratified_split_keeps_every_class_on_both_sides() -> None:
    y = np.array([0] * 50 + [1] * 5 + [2] * 2)
    train, val = stratified_split(y, 0.2, seed=0, classification=True)
    assert set(y[train]) == set(y[val]) == {0, 1, 2}
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(y)
    again = stratified_split(y, 0.2, seed=0, classification=True)
    assert np.array_equal(again[1], val)


def test_class_weights_balance_the_classes() -> None:
    y = np.array([0] * 90 + [1] * 10)
    w = class_weights(y, 2)
    assert w[1] / w[0] == pytest.approx(9.0)
    assert (w[y].reshape(-1)[:90].sum()) == pytest.approx(w[y][90:].sum())

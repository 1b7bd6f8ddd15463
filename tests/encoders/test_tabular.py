"""Tabular preprocessing (robust scaling, vocabularies, bad input) and the feature tokenizer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from polymodal.encoders.tabular import (
    MISSING_ID,
    UNSEEN_ID,
    TabularEncoderModule,
    TabularPreprocessor,
    tabular_module_for,
)
from polymodal.errors import ConfigError, InputError


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 200
    return pd.DataFrame(
        {
            "price": np.exp(rng.normal(12.5, 0.8, n)),  # log-normal, like house prices
            "rooms": rng.integers(1, 6, n).astype(float),
            "temp": rng.normal(0.0, 10.0, n),  # symmetric, may be negative
            "city": rng.choice(["paris", "lyon", "nice"], n, p=[0.6, 0.3, 0.1]),
        }
    )


def _fitted() -> TabularPreprocessor:
    return TabularPreprocessor(["price", "rooms", "temp"], ["city"]).fit(_frame())


def test_scaling_is_robust_and_log_chosen_by_skewness() -> None:
    pre = _fitted()
    assert pre.log_ == [True, False, False]
    assert any("'price': log1p" in n for n in pre.fit_notes_)
    batch = pre.transform(_frame())
    assert batch.numeric.dtype == np.float32 and batch.numeric.shape == (200, 3)
    assert batch.numeric_present.all()
    # Median maps to 0; the scale is the normal-consistent IQR so the spread is about 1.
    assert np.median(batch.numeric, axis=0) == pytest.approx([0, 0, 0], abs=0.02)
    assert 0.7 < np.std(batch.numeric[:, 2]) < 1.3
    assert np.abs(batch.numeric).max() <= 5.0


def test_outliers_are_clipped_and_reported() -> None:
    pre = _fitted()
    frame = _frame().head(3).copy()
    frame.loc[0, "temp"] = 1e300
    batch = pre.transform(frame)
    assert batch.numeric[0, 2] == 5.0
    assert any("'temp': 1 outliers clipped" in n for n in batch.notes)


def test_constant_column_falls_back_to_unit_scale() -> None:
    frame = pd.DataFrame({"a": [3.0] * 10})
    pre = TabularPreprocessor(["a"], []).fit(frame)
    assert pre.scale_ == [1.0] and pre.center_ == [3.0]
    # IQR 0 but std > 0: the std is used.
    frame = pd.DataFrame({"a": [0.0] * 9 + [10.0]})
    pre = TabularPreprocessor(["a"], []).fit(frame)
    assert pre.scale_[0] == pytest.approx(3.0)


def test_nan_and_inf_are_masked_and_reported_not_zero_filled() -> None:
    pre = _fitted()
    frame = _frame().head(4).copy()
    frame.loc[1, "price"] = np.nan
    frame.loc[2, "price"] = np.inf
    frame.loc[3, "temp"] = -np.inf
    batch = pre.transform(frame)
    assert batch.numeric_present[:, 0].tolist() == [True, False, False, True]
    assert batch.numeric_present[:, 2].tolist() == [True, True, True, False]
    assert np.isnan(batch.numeric[1, 0]) and np.isnan(batch.numeric[2, 0])
    assert np.isnan(batch.numeric[3, 2])
    assert batch.missing_counts["price"] == 2
    assert "column 'price': 2 missing values masked (1 infinite)" in batch.notes


def test_numeric_strings_parse_and_blank_strings_are_missing() -> None:
    pre = TabularPreprocessor(["x"], []).fit(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}))
    batch = pre.transform(pd.DataFrame({"x": ["2.5", " 1e0 ", "", None, "NaN", "inf"]}))
    assert batch.numeric_present[:, 0].tolist() == [True, True, False, False, False, False]


def test_string_in_numeric_column_names_row_and_column() -> None:
    pre = _fitted()
    frame = _frame().head(5).astype({"rooms": object})
    frame.loc[3, "rooms"] = "three"
    with pytest.raises(InputError) as err:
        pre.transform(frame)
    assert err.value.row == 3 and err.value.column == "rooms"
    assert "'three'" in str(err.value) and "row 3" in str(err.value)
    with pytest.raises(InputError, match="row 3, column 'rooms'"):
        TabularPreprocessor(["rooms"], []).fit(frame)


def test_all_missing_column_at_fit_is_a_config_error() -> None:
    frame = _frame()
    frame["empty"] = np.nan
    with pytest.raises(ConfigError, match="'empty'"):
        TabularPreprocessor(["price", "empty"], []).fit(frame)
    frame["empty"] = np.inf
    with pytest.raises(ConfigError, match="'empty'"):
        TabularPreprocessor(["empty"], []).fit(frame)


def test_absent_column_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'nope'"):
        TabularPreprocessor(["nope"], []).fit(_frame())


def test_categories_frequency_ordered_with_unseen_and_missing() -> None:
    pre = _fitted()
    assert pre.vocab_["city"] == ["paris", "lyon", "nice"]
    assert pre.cardinalities_ == [5]
    frame = pd.DataFrame(
        {
            "price": [1e5] * 4,
            "rooms": [2.0] * 4,
            "temp": [0.0] * 4,
            "city": ["lyon", "berlin", None, "paris"],
        }
    )
    batch = pre.transform(frame)
    assert batch.categories[:, 0].tolist() == [3, UNSEEN_ID, MISSING_ID, 2]
    assert batch.unseen_counts == {"city": 1}
    assert "column 'city': 1 unseen or rare categories" in batch.notes


def test_rare_and_capped_categories_share_the_unseen_id() -> None:
    frame = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"]})
    pre = TabularPreprocessor([], ["c"], min_count=2).fit(frame)
    assert pre.vocab_["c"] == ["a", "b", "c"]
    pre = TabularPreprocessor([], ["c"], max_categories=2).fit(frame)
    assert pre.vocab_["c"] == ["a", "b"]
    assert pre.transform(frame).categories[:, 0].tolist() == [2] * 5 + [3] * 3 + [1] * 3


def test_whole_floats_match_ints() -> None:
    pre = TabularPreprocessor([], ["zip"]).fit(pd.DataFrame({"zip": [85255.0, np.nan, 36372.0]}))
    assert pre.vocab_["zip"] == ["36372", "85255"]
    batch = pre.transform(pd.DataFrame({"zip": [85255, 36372]}))
    assert batch.categories[:, 0].tolist() == [3, 2]


def test_to_dict_round_trips_through_json() -> None:
    pre = _fitted()
    again = TabularPreprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    a, b = pre.transform(_frame()), again.transform(_frame())
    np.testing.assert_array_equal(a.numeric, b.numeric)
    np.testing.assert_array_equal(a.categories, b.categories)
    assert again.log_ == pre.log_


def test_transform_before_fit_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="before fit"):
        TabularPreprocessor(["a"], []).transform(pd.DataFrame({"a": [1.0]}))


def _batch_with_missing() -> dict[str, torch.Tensor]:
    pre = _fitted()
    frame = _frame().head(6).copy()
    frame.loc[0, "price"] = np.nan
    frame.loc[1, "rooms"] = np.inf
    frame.loc[2, "temp"] = np.nan
    frame.loc[3, "city"] = None
    frame.loc[4, "city"] = "unknown-city"
    frame.loc[5, ["price", "rooms", "temp", "city"]] = [np.nan, np.nan, np.nan, None]
    return pre.transform(frame).to_tensors()


def test_module_forward_backward_every_parameter_gets_a_gradient() -> None:
    torch.manual_seed(0)
    module = tabular_module_for(_fitted(), dim=8)
    batch = _batch_with_missing()
    tokens, mask, pooled = module(batch)
    assert tokens.shape == (6, 4, 8) and mask.shape == (6, 4) and pooled.shape == (6, 8)
    assert mask[0].tolist() == [False, True, True, True]
    assert mask[1].tolist() == [True, False, True, True]
    assert mask[3].tolist() == [True, True, True, False]
    assert mask[4].tolist() == [True, True, True, True]  # unseen is a value, not missing
    assert not mask[5].any()
    (tokens.square().mean() + pooled.square().mean()).backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        assert torch.isfinite(p.grad).all(), name


def test_nan_input_never_gives_nan_output() -> None:
    module = TabularEncoderModule(2, [4], dim=4)
    batch = {
        "numeric": torch.tensor([[float("nan"), float("inf")], [float("nan"), 1.0]]),
        # A caller that claims a NaN is present still gets no NaN out.
        "numeric_present": torch.tensor([[False, True], [True, True]]),
        "categories": torch.tensor([[0], [2]]),
    }
    tokens, mask, pooled = module(batch)
    assert torch.isfinite(tokens).all() and torch.isfinite(pooled).all()
    assert mask.tolist() == [[False, False, False], [False, True, True]]
    # The masked mean ignores missing tokens: row 1 pools only its two present tokens.
    torch.testing.assert_close(pooled[1], tokens[1, 1:].mean(0))


def test_module_with_only_one_kind_of_column() -> None:
    numeric_only = TabularEncoderModule(3, [], dim=4)
    _, _, pooled = numeric_only(
        {"numeric": torch.zeros(2, 3), "numeric_present": torch.ones(2, 3, dtype=torch.bool)}
    )
    assert pooled.shape == (2, 4)
    categorical_only = TabularEncoderModule(0, [3, 5], dim=4)
    tokens, _, _ = categorical_only({"categories": torch.tensor([[2, 4], [1, 0]])})
    # Offsets keep the columns' ids apart: id 2 in column 0 is not id 2 in column 1.
    emb = categorical_only.category_embedding.weight
    torch.testing.assert_close(tokens[0, 1] - categorical_only.column_embedding[1], emb[3 + 4])


def _houses() -> Path:
    shared = os.environ.get("POLYMODAL_SHARED")
    root = Path(shared) if shared else Path(__file__).resolve().parents[2] / ".." / "shared"
    return root / "data" / "houses" / "HousesInfo.txt"


@pytest.mark.shared_data
def test_real_house_table_logs_price_and_area() -> None:
    path = _houses()
    if not path.is_file():
        pytest.skip(f"shared house data not found at {path}")
    frame = pd.read_csv(
        path, sep=" ", header=None, names=["bedrooms", "bathrooms", "area", "zipcode", "price"]
    )
    pre = TabularPreprocessor(["bedrooms", "bathrooms", "area", "price"], ["zipcode"]).fit(frame)
    chosen = dict(zip(pre.numeric, pre.log_, strict=True))
    assert chosen["price"] and chosen["area"]
    batch = pre.transform(frame)
    assert batch.numeric_present.all() and np.isfinite(batch.numeric).all()
    assert (batch.categories[:, 0] >= 2).all()

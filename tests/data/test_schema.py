from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from polymodal.data.schema import Schema, detect_schema
from polymodal.errors import ConfigError
from polymodal.modality import Modality


def _frame(tmp_path: Path) -> pd.DataFrame:
    n = 40
    for i in range(n):
        (tmp_path / f"img{i}.jpg").write_bytes(b"x")
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "photo": [f"img{i}.jpg" for i in range(n)],
            "review": [
                f"This product number {i} was {'great' if i % 2 else 'awful'} to use daily"
                for i in range(n)
            ],
            "price": rng.normal(10, 2, n),
            "colour": rng.choice(["red", "green", "blue"], n),
            "zipcode": rng.integers(10000, 10005, n),
            "sku": [f"SKU{i:05d}" for i in range(n)],
            "blank": [None] * n,
            "label": rng.choice(["a", "b"], n),
        }
    )


def test_detects_each_modality_with_reason(tmp_path: Path) -> None:
    schema = detect_schema(_frame(tmp_path), base=tmp_path, exclude=["label"])
    got = schema.to_dict()
    assert got == {
        "photo": "image",
        "review": "text",
        "price": "numeric",
        "colour": "categorical",
        "zipcode": "categorical",
    }
    assert "100% exist" in next(c.reason for c in schema.columns if c.name == "photo")
    excluded = dict(schema.excluded)
    assert excluded["label"] == "excluded"
    assert "empty in every row" in excluded["blank"]
    assert "identifiers" in excluded["sku"]


def test_overrides_and_several_columns_of_one_modality(tmp_path: Path) -> None:
    frame = _frame(tmp_path)
    frame["photo2"] = frame["photo"]
    schema = detect_schema(
        frame, base=tmp_path, overrides={"zipcode": "numeric"}, exclude=["label"]
    )
    assert schema.modality("zipcode") == Modality.NUMERIC
    assert schema.names(Modality.IMAGE) == ["photo", "photo2"]
    assert Schema.from_dict(schema.to_dict()).to_dict() == schema.to_dict()


def test_absent_configured_column_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'pictures' is not in the table; its columns are"):
        detect_schema(_frame(tmp_path), overrides={"pictures": "image"})
    with pytest.raises(ConfigError, match="'y' is not in the table"):
        detect_schema(_frame(tmp_path), exclude=["y"])


def test_missing_values_do_not_change_detection(tmp_path: Path) -> None:
    frame = _frame(tmp_path)
    frame.loc[::3, "photo"] = None
    frame.loc[::4, "price"] = np.nan
    schema = detect_schema(frame, base=tmp_path, exclude=["label"])
    assert schema.modality("photo") == Modality.IMAGE
    assert schema.modality("price") == Modality.NUMERIC

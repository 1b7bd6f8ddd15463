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


def test_columns_of_vectors_are_left_out_not_read_as_text() -> None:
    """`polymodal embed` output read back: its vectors must not be embedded as strings."""
    import numpy as np
    import pandas as pd

    from polymodal.data.schema import detect_schema

    frame = pd.DataFrame(
        {
            "note": ["a red hat", "two blue shoes", "a green dress"],
            "note.embedding": [np.ones(4, np.float32), None, np.zeros(4, np.float32)],
        }
    )
    schema = detect_schema(frame)
    assert schema.names() == ["note"]
    assert "vectors" in dict(schema.excluded)["note.embedding"]


def test_re_embedding_an_embed_output_replaces_its_vector_column(tmp_path) -> None:
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    from polymodal.cache.embed import embed_table
    from polymodal.data.schema import detect_schema
    from polymodal.encoders.registry import build_encoder
    from polymodal.io.embeddings import write_embeddings
    from polymodal.modality import Modality

    frame = pd.DataFrame({"note": ["a red hat", "two blue shoes"]})
    encoders = {Modality.TEXT: build_encoder("minilm-l6", tiny=True)}
    text = {"note": Modality.TEXT}
    first = embed_table(
        frame, detect_schema(frame, overrides=text), encoders=encoders, progress=False
    )
    write_embeddings(first, tmp_path / "e1.parquet")
    again = pd.read_parquet(tmp_path / "e1.parquet")
    second = embed_table(
        again, detect_schema(again, overrides=text), encoders=encoders, progress=False
    )
    write_embeddings(second, tmp_path / "e2.parquet")
    table = pq.read_table(tmp_path / "e2.parquet")
    assert table.column_names == ["note", "note.embedding"]
    vectors = np.stack(table.column("note.embedding").to_pylist())
    np.testing.assert_allclose(vectors, first.columns["note"].pooled, rtol=1e-6)

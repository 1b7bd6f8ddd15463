from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from polymodal.data.table import load_table
from polymodal.errors import ConfigError, InputError


def test_csv_parquet_jsonl_round_trip(tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": ["a cat", "a dog"], "price": [1.5, 2.0]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    for name in ("t.csv", "t.parquet", "t.jsonl"):
        loaded = load_table(tmp_path / name)
        assert loaded["text"].tolist() == ["a cat", "a dog"], name
        assert loaded["price"].tolist() == [1.5, 2.0], name


def test_non_utf8_csv_names_line_and_suggests_encoding(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("text,n\nfine,1\ncaf\xe9,2\n".encode("latin-1"))
    with pytest.raises(InputError) as info:
        load_table(path)
    msg = str(info.value)
    assert "latin.csv" in msg and "line 3" in msg and "0xe9" in msg and "encoding" in msg
    assert load_table(path, encoding="latin-1")["text"].tolist() == ["fine", "café"]


def test_missing_empty_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        load_table(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(InputError, match="zero-byte"):
        load_table(tmp_path / "empty.csv")
    (tmp_path / "t.xlsx").write_bytes(b"x")
    with pytest.raises(InputError, match="unsupported table format"):
        load_table(tmp_path / "t.xlsx")


def test_folder_becomes_table_with_class_and_split(tmp_path: Path) -> None:
    for split, cls in [("train", "hat"), ("train", "skirt"), ("test", "hat")]:
        (tmp_path / split / cls).mkdir(parents=True, exist_ok=True)
        (tmp_path / split / cls / f"{split}_{cls}.jpg").write_bytes(b"x")
    (tmp_path / "train" / "notes.csv").write_text("ignored")
    frame = load_table(tmp_path)
    assert sorted(frame["path"]) == sorted(
        ["test/hat/test_hat.jpg", "train/hat/train_hat.jpg", "train/skirt/train_skirt.jpg"]
    )
    assert set(frame["folder"]) == {"hat", "skirt"}
    assert set(frame["split"]) == {"train", "test"}


def test_unknown_text_encoding_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("text\na cat\n")
    (tmp_path / "t.tsv").write_text("text\na cat\n")
    (tmp_path / "t.jsonl").write_text('{"text": "a cat"}\n')
    for name in ("t.csv", "t.tsv", "t.jsonl"):
        with pytest.raises(ConfigError, match="unknown text encoding 'nope'"):
            load_table(tmp_path / name, encoding="nope")
    assert load_table(tmp_path / "t.csv", encoding="latin-1")["text"].tolist() == ["a cat"]

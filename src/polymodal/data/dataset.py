"""A dataset: a table, the folder its relative paths start from, and the modality of each column."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from polymodal.data.paths import base_folder
from polymodal.data.schema import Schema, detect_schema
from polymodal.data.table import load_table
from polymodal.modality import Modality


@dataclass(frozen=True)
class Dataset:
    """A loaded table with its base folder and detected (or given) schema."""

    frame: pd.DataFrame
    base: Path | None
    schema: Schema

    def __len__(self) -> int:
        return len(self.frame)


def load_dataset(
    source: str | Path | pd.DataFrame,
    *,
    base: str | Path | None = None,
    overrides: Mapping[str, Modality | str] | None = None,
    exclude: Iterable[str] = (),
    columns: Iterable[str] | None = None,
    encoding: str = "utf-8",
) -> Dataset:
    """Load ``source`` and detect its schema.

    Relative paths in the table start from ``base``; by default that is the table file's folder,
    the folder itself when ``source`` is a folder, and the working directory for a DataFrame.
    """
    frame = load_table(source, encoding=encoding)
    if base is None and not isinstance(source, pd.DataFrame):
        src = Path(source).expanduser()
        base = src if src.is_dir() else src.parent
    base_path = base_folder(base)
    schema = detect_schema(
        frame, base=base_path, overrides=overrides, exclude=exclude, columns=columns
    )
    return Dataset(frame, base_path, schema)

"""Load a dataset's table: a DataFrame, a CSV/TSV/Parquet/JSONL file, or a folder of media files."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

import pandas as pd

from polymodal.errors import ConfigError, InputError
from polymodal.modality import modality_of_path

TABLE_SUFFIXES = {".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson", ".json"}


def load_table(source: str | Path | pd.DataFrame, *, encoding: str = "utf-8") -> pd.DataFrame:
    """Read ``source`` into a DataFrame with a fresh 0..N-1 index (row numbers in messages use it).

    A folder becomes one row per media file: ``path`` (relative to the folder), ``folder`` (its
    parent folder, often the class), and ``split`` when the first level is train/validation/test.
    """
    if isinstance(source, pd.DataFrame):
        return source.reset_index(drop=True)
    _check_encoding(encoding)
    path = Path(source).expanduser()
    if path.is_dir():
        return table_from_folder(path)
    if not path.exists():
        raise InputError("file not found", path=path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(
            f"unsupported table format {suffix or '(no extension)'}: use one of "
            + ", ".join(sorted(TABLE_SUFFIXES))
            + ", or a folder of media files",
            path=path,
        )
    if path.stat().st_size == 0:
        raise InputError("zero-byte file: the table is empty", path=path)
    try:
        if suffix in (".csv", ".tsv"):
            frame = _read_delimited(path, sep="\t" if suffix == ".tsv" else ",", encoding=encoding)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_json(path, lines=suffix != ".json", encoding=encoding)
    except InputError:
        raise
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise InputError(f"cannot parse the table: {_first_line(err)}", path=path) from None
    if frame.empty:
        raise InputError("the table has no rows", path=path)
    return frame.reset_index(drop=True)


def _check_encoding(encoding: str) -> None:
    # before any reading: pandas would raise a bare LookupError from deep inside its parser
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ConfigError(
            f"unknown text encoding {encoding!r}: give a Python codec name such as utf-8, "
            "latin-1 or cp1252"
        ) from None


def _read_delimited(path: Path, *, sep: str, encoding: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep=sep, encoding=encoding, skipinitialspace=True)
    except UnicodeDecodeError:
        line, byte = _first_undecodable(path, encoding)
        raise InputError(
            f"the file is not valid {encoding}: byte 0x{byte:02x} on line {line} "
            f"cannot be decoded. Re-save it as UTF-8, or pass its encoding "
            f"(for example --encoding latin-1 or encoding='cp1252')",
            path=path,
        ) from None


def _first_undecodable(path: Path, encoding: str) -> tuple[int, int]:
    # pandas reports offsets inside its read chunk, not the file: find the line ourselves.
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError as err:
                return number, raw[err.start]
    return 0, 0


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def table_from_folder(folder: Path) -> pd.DataFrame:
    """One row per media file under ``folder`` (recursively, sorted, hidden files skipped)."""
    rows = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or modality_of_path(name) is None:
                continue
            rel = Path(root, name).relative_to(folder)
            rows.append(rel)
    if not rows:
        raise ConfigError(f"{folder}: no image, audio or video files found")
    frame = pd.DataFrame({"path": [str(r) for r in rows]})
    parents = [r.parent.name for r in rows]
    if any(parents):
        frame["folder"] = parents
    firsts = {r.parts[0] for r in rows if len(r.parts) > 2}
    if firsts and firsts <= {"train", "training", "val", "valid", "validation", "test", "testing"}:
        frame["split"] = [r.parts[0] if len(r.parts) > 2 else None for r in rows]
    return frame

"""Find the cells a job would skip, before running it: the ``inspect`` command's bad-row report."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from polymodal.data.paths import resolve_path
from polymodal.data.schema import Schema
from polymodal.errors import InputError, SkippedRow
from polymodal.modality import Modality


def _probe_image(path: Path) -> None:
    from polymodal.data.readers.image import read_image

    read_image(path, draft_size=32)


def _probe_audio(path: Path) -> None:
    from polymodal.data.readers.audio import read_audio

    read_audio(path, sample_rate=16000, max_seconds=1.0)


def _probe_video(path: Path) -> None:
    from polymodal.data.readers.video import read_video

    read_video(path, fps=0.5, max_frames=1, sample_rate=None)


_PROBES: dict[Modality, Callable[[Path], None]] = {
    Modality.IMAGE: _probe_image,
    Modality.AUDIO: _probe_audio,
    Modality.VIDEO: _probe_video,
}


def find_bad_cells(
    frame: pd.DataFrame,
    schema: Schema,
    *,
    base: Path | None,
    deep: bool = False,
    allow_outside: bool = False,
) -> list[SkippedRow]:
    """Cells that cannot be used: missing or escaping files, non-numbers in numeric columns,
    NaN/inf; with ``deep``, every media file is also opened and decoded (in parallel)."""
    bad: list[SkippedRow] = []
    probes: list[tuple[int, str, Path, Modality]] = []
    for spec in schema.columns:
        values = frame[spec.name].tolist()
        for row, value in enumerate(values):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                if spec.modality == Modality.NUMERIC and isinstance(value, float):
                    continue  # an empty numeric cell is missing, not bad
                continue
            if spec.modality == Modality.NUMERIC:
                problem = _numeric_problem(value)
                if problem:
                    bad.append(SkippedRow(row, spec.name, problem))
            elif spec.modality.is_media and str(value).strip():
                try:
                    path = resolve_path(str(value), base, allow_outside=allow_outside)
                except InputError as err:
                    bad.append(SkippedRow.from_error(err.at(row=row, column=spec.name)))
                    continue
                if path.stat().st_size == 0:
                    bad.append(SkippedRow(row, spec.name, "zero-byte file", str(path)))
                elif deep:
                    probes.append((row, spec.name, path, spec.modality))
    if probes:
        with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
            futures = [(p, pool.submit(_PROBES[p[3]], p[2])) for p in probes]
            for (row, column, _path, _m), fut in futures:
                try:
                    fut.result()
                except InputError as err:
                    bad.append(SkippedRow.from_error(err.at(row=row, column=column)))
    return sorted(bad, key=lambda s: (s.row, s.column))


def _numeric_problem(value: object) -> str | None:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return f"not a number: {str(value)[:40]!r}"
    if math.isnan(x):
        return None
    if math.isinf(x):
        return "infinite value (treated as missing)"
    return None

"""Columns the predictor derives from the user's columns before embedding.

- A video column's sound: the same paths read as audio, so the audio encoder hears the track
  while the video encoder sees the frames (a video with no audio track leaves the cell absent).
- Descriptions (``describe``): a media column's caption, text in the image, or transcript as a
  text column, through :func:`polymodal.describe.describe_values`.

Derived columns are named after their source (``"clip (sound)"``, ``"photo (described)"``), are
recorded when the model is saved, and are derived again from the source column at predict time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from polymodal.data.schema import ColumnSpec, Schema
from polymodal.errors import ConfigError
from polymodal.modality import Modality

SOUND = "sound"
DESCRIBED = "described"


@dataclass(frozen=True)
class Derived:
    """Where a derived column comes from: its source column, that column's modality, the kind."""

    source: str
    source_modality: Modality
    kind: str

    @property
    def modality(self) -> Modality:
        return Modality.AUDIO if self.kind == SOUND else Modality.TEXT

    def to_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Derived:
        return cls(str(data["source"]), Modality(data["source_modality"]), str(data["kind"]))


def derived_name(source: str, kind: str) -> str:
    return f"{source} ({kind})"


def plan(
    schema: Schema, *, video_sound: bool, describe: bool | Sequence[str]
) -> dict[str, Derived]:
    """``{derived column: Derived}`` for ``schema``'s columns."""
    out: dict[str, Derived] = {}
    if video_sound:
        for name in schema.names(Modality.VIDEO):
            out[derived_name(name, SOUND)] = Derived(name, Modality.VIDEO, SOUND)
    media = [c.name for c in schema.columns if c.modality.is_media]
    if describe is True:
        chosen = media
    elif describe is False:
        chosen = []
    else:
        chosen = list(describe)
        wrong = [c for c in chosen if c not in media]
        if wrong:
            raise ConfigError(
                f"describe names {wrong}, which are not image, audio or video columns "
                f"(those are: {media or 'none'})"
            )
    for name in chosen:
        out[derived_name(name, DESCRIBED)] = Derived(name, schema.modality(name), DESCRIBED)
    taken = set(schema.names()) & set(out)
    if taken:
        raise ConfigError(f"column names {sorted(taken)} are reserved for derived columns")
    return out


def extend_schema(schema: Schema, derived: Mapping[str, Derived]) -> Schema:
    """``schema`` plus a spec for each derived column (sound is audio, descriptions text)."""
    what = {SOUND: "audio track", DESCRIBED: "description"}
    specs = [
        ColumnSpec(name, d.modality, f"{what[d.kind]} of column {d.source!r}")
        for name, d in derived.items()
    ]
    return Schema((*schema.columns, *specs), schema.excluded)


def add_derived(
    frame: pd.DataFrame,
    derived: Mapping[str, Derived],
    base: Path | None,
    *,
    progress: bool = False,
) -> pd.DataFrame:
    """A copy of ``frame`` with each derived column whose source it has."""
    todo = {n: d for n, d in derived.items() if d.source in frame.columns}
    if not todo:
        return frame
    frame = frame.copy()
    for name, d in todo.items():
        if d.kind == SOUND:
            frame[name] = frame[d.source]
        else:
            frame[name] = _describe(frame[d.source], d.source_modality, base, progress=progress)
    return frame


def _describe(
    values: pd.Series, modality: Modality, base: Path | None, *, progress: bool
) -> list[str | None]:
    from tqdm.auto import tqdm

    from polymodal.describe import describe_values

    out: list[str | None] = []
    cells = tqdm(list(values), desc=f"describing {values.name}", unit="cell", disable=not progress)
    for cell in cells:
        key = _file_key(cell, base)
        if key is None or key not in _MEMO:
            text = describe_values([cell], modality, base)[0]
            if key is None:
                out.append(text)
                continue
            if len(_MEMO) >= _MEMO_MAX:
                _MEMO.clear()
            _MEMO[key] = text
        out.append(_MEMO[key])
    return out


# Fit describes the training, validation and test rows, and predict the same files again:
# describing (captioning, OCR, transcription) costs seconds a file, so each file's text is kept
# for the life of the process, keyed by where it is and its size and modification time.
_MEMO: dict[tuple[str, int, int], str | None] = {}
_MEMO_MAX = 200_000


def _file_key(cell: object, base: Path | None) -> tuple[str, int, int] | None:
    if cell is None or (isinstance(cell, float) and cell != cell) or not str(cell).strip():
        return None
    path = Path(str(cell)).expanduser()
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    try:
        stat = path.stat()
    except OSError:
        return None  # unreadable: the describer reports it
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns

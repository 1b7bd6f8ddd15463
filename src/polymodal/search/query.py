"""Query vectors: a text, a photo, a sound, or a photo and a text composed.

A composed query is the weighted sum of the two unit vectors, renormalised:
``normalise((1 - weight) * photo + weight * text)``. ``DEFAULT_TEXT_WEIGHT`` was chosen on
clothing *train* photos (``benchmarks/search_clothing.py``). Trained combiners (per-dimension
gates, full linear maps) beat it on the clothing classes they were trained on but fell well
below it on classes held out of training (``benchmarks/search_combiner.py``), so none ships.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polymodal.errors import InputError
from polymodal.modality import Modality
from polymodal.search.space import Space

# Best refine P@10 on clothing train (photo + its class name: 0.79 against 0.71 photo alone and
# 0.75 text alone). Heavier text weights follow a *changed* description better (0.9: 0.64).
DEFAULT_TEXT_WEIGHT = 0.7
MAX_QUERY_TEXT = 2000  # characters; a query is a description, not a document

QueryFile = str | Path | bytes


@dataclass(frozen=True)
class Query:
    """A checked query: at most one file (photo or sound) and an optional text."""

    text: str | None
    file: QueryFile | None
    file_modality: Modality | None
    weight: float

    @property
    def kind(self) -> str:
        if self.file is None:
            return "text"
        return f"{self.file_modality}+text" if self.text else str(self.file_modality)


def make_query(
    *,
    text: str | None,
    image: QueryFile | None,
    audio: QueryFile | None,
    weight: float | None,
) -> Query:
    """Check the query's parts; InputError when it is empty or mixes a photo and a sound."""
    if text is not None:
        if not isinstance(text, str):
            raise InputError(f"the text query must be a string, got {type(text).__name__}")
        text = text.strip() or None
        if text is not None and len(text) > MAX_QUERY_TEXT:
            raise InputError(f"the text query is {len(text)} characters; at most {MAX_QUERY_TEXT}")
    if image is not None and audio is not None:
        raise InputError("give a photo or a sound as the query, not both")
    file = image if image is not None else audio
    if isinstance(file, bytes) and not file:
        raise InputError("the query file is empty (0 bytes)")
    if isinstance(file, str) and not file.strip():
        file = None
    if isinstance(file, str | Path) and not Path(file).is_file():
        # checked here, not on embedding: a store with nothing of that kind embeds no query
        raise InputError("query file not found", path=file)
    if text is None and file is None:
        raise InputError("empty query: give a text, a photo or a sound")
    w = DEFAULT_TEXT_WEIGHT if weight is None else float(weight)
    if not 0.0 <= w <= 1.0:
        raise InputError(f"weight must be between 0 and 1 (the text's share), got {weight}")
    modality = None if file is None else (Modality.IMAGE if image is not None else Modality.AUDIO)
    return Query(text, file, modality, w)


def query_vector(space: Space, query: Query) -> np.ndarray:
    """The unit query vector of ``query`` in ``space``."""
    text_vec = None if query.text is None else space.embed_texts([query.text])[0]
    if query.file is None:
        assert text_vec is not None
        return text_vec
    file_vec = file_vector(space, query.file, query.file_modality or space.media)
    if text_vec is None:
        return file_vec
    return compose(file_vec, text_vec, query.weight)


def compose(file_vec: np.ndarray, text_vec: np.ndarray, weight: float) -> np.ndarray:
    """``normalise((1 - weight) * file + weight * text)``."""
    v = (1.0 - weight) * file_vec + weight * text_vec
    norm = float(np.linalg.norm(v))
    if norm < 1e-8:  # the two cancel exactly: fall back on the text
        return text_vec
    return (v / norm).astype(np.float32)


def file_vector(space: Space, file: QueryFile, modality: Modality) -> np.ndarray:
    """Embed a query photo or sound (a path or its bytes); InputError naming what is wrong."""
    with _as_path(file) as path:
        label = "upload" if isinstance(file, bytes) else str(file)
        if not path.is_file():
            raise InputError("query file not found", path=label)
        out = space.embed_files([path], modality)
    if out.failed:
        reason = out.failed[0][1]
        what = "an image" if modality == Modality.IMAGE else "a sound"
        raise InputError(f"the query file is not {what} this search can read: {reason}", path=label)
    return out.vectors[0]


@contextlib.contextmanager
def _as_path(file: QueryFile) -> Iterator[Path]:
    if not isinstance(file, bytes):
        yield Path(file).expanduser()
        return
    fd, name = tempfile.mkstemp(prefix="polymodal-query-", suffix=".upload")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(file)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)

"""What every captioner is: ``caption(paths) -> list[str]`` and an ``info`` that names it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from polymodal.errors import InputError

if TYPE_CHECKING:
    from polymodal.encoders.base import Encoder

_BATCH = 16


@dataclass(frozen=True)
class CaptionerInfo:
    """A captioner's name (what ``build_captioner`` took), kind and weight source."""

    name: str
    kind: str  # "retrieval", "decoder" or "huggingface"
    source: str
    description: str = ""


@runtime_checkable
class Captioner(Protocol):
    """Turns image files into one-sentence captions (alt text).

    ``caption`` raises :class:`~polymodal.errors.InputError` naming the first file it cannot
    read; callers that want a per-file outcome caption one file at a time.
    """

    info: CaptionerInfo

    def caption(self, paths: Sequence[str | Path]) -> list[str]: ...


def image_features(
    encoder: Encoder, paths: Sequence[str | Path], *, tokens: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Pooled vectors (N, width) and, with ``tokens``, grid tokens (N, T, token_width) float32.

    Decoded and encoded in small batches so memory stays flat; a bad file raises InputError
    naming it and its position.
    """
    pooled, toks = [], []
    for start in range(0, len(paths), _BATCH):
        items = []
        for i, path in enumerate(paths[start : start + _BATCH]):
            try:
                items.append(encoder.decode(str(path)))
            except InputError as err:
                raise err.at(row=start + i) from None
        for emb in encoder.encode(items, tokens=tokens):
            pooled.append(emb.pooled)
            if tokens:
                assert emb.tokens is not None
                toks.append(np.asarray(emb.tokens, dtype=np.float32))
    width = encoder.info.width
    out = np.stack(pooled).astype(np.float32) if pooled else np.zeros((0, width), np.float32)
    if not tokens:
        return out, None
    return out, np.stack(toks) if toks else np.zeros((0, 0, encoder.info.token_width), np.float32)

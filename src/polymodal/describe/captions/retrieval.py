"""Retrieval captions: the bank captions nearest to an image in the aligned image-text space.

Similarity is the cosine less ``hub_weight`` times the caption's hubness when the bank records
it (see :mod:`~polymodal.describe.captions.bank`): without it a few short captions are the
nearest to most images.

``combine="top"`` returns the single nearest caption. ``combine="consensus"`` looks at the ``k``
nearest and returns the one the others agree with most (Devlin et al. 2015, "Exploring nearest
neighbor approaches for image captioning"): caption j scores sum_i w_i cos(t_i, t_j), with w a
softmax of the image-caption similarities at the alignment's temperature, so a lone near match
loses to a slightly farther caption that several neighbours back up.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from polymodal.describe.captions.base import CaptionerInfo, image_features
from polymodal.errors import ConfigError
from polymodal.modality import Modality

if TYPE_CHECKING:
    from polymodal.align.model import Alignment
    from polymodal.describe.captions.bank import CaptionBank
    from polymodal.encoders.base import Encoder

Combine = Literal["top", "consensus"]


class RetrievalCaptioner:
    """Captions images with the nearest captions of ``bank`` under ``alignment``."""

    def __init__(
        self,
        bank: CaptionBank,
        alignment: Alignment,
        *,
        encoder: Encoder | None = None,
        combine: Combine = "consensus",
        k: int = 20,
        hub_weight: float = 1.0,
        name: str = "retrieval",
    ) -> None:
        if combine not in ("top", "consensus"):
            raise ConfigError(f"combine must be 'top' or 'consensus', not {combine!r}")
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        bank.check(alignment)
        self.bank = bank
        self.alignment = alignment
        self.side = alignment.side_of(Modality.IMAGE)
        self.combine = combine
        self.k = k
        self._encoder = encoder
        self._vectors = bank.vectors.astype(np.float32)
        self._penalty = (
            np.zeros(len(bank), np.float32)
            if bank.hubness is None
            else hub_weight * bank.hubness.astype(np.float32)
        )
        hubs = "" if bank.hubness is None else f", hubness x {hub_weight:g}"
        self.info = CaptionerInfo(
            name=name,
            kind="retrieval",
            source=f"caption bank of {len(bank)} captions, alignment {bank.alignment}",
            description=f"nearest bank captions ({combine}, k={k}{hubs})",
        )

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = self.alignment.sides[self.side].build_encoder()
        return self._encoder

    def embed(self, paths: Sequence[str | Path]) -> np.ndarray:
        """Unit vectors (N, dim) of image files in the aligned space."""
        pooled, _ = image_features(self.encoder, paths)
        return self.alignment.embed(self.side, pooled)

    def similarity(self, z: np.ndarray) -> np.ndarray:
        """(N, bank size): cosine similarity less the hubness penalty."""
        return np.asarray(z, dtype=np.float32) @ self._vectors.T - self._penalty

    def nearest(self, z: np.ndarray, k: int = 5) -> list[list[tuple[str, float]]]:
        """The ``k`` nearest captions of each aligned image vector, with their similarity."""
        sims = self.similarity(z)
        top = _top_k(sims, k)
        return [
            [(self.bank.texts[j], float(s[j])) for j in row]
            for s, row in zip(sims, top, strict=True)
        ]

    def caption_vectors(self, z: np.ndarray) -> list[str]:
        """Captions of aligned image vectors (what :meth:`caption` does after embedding)."""
        sims = self.similarity(z)
        if self.combine == "top" or self.k == 1:
            return [self.bank.texts[int(i)] for i in np.argmax(sims, axis=1)]
        out = []
        for s, row in zip(sims, _top_k(sims, self.k), strict=True):
            logits = self.alignment.scale * s[row]
            w = np.exp(logits - logits.max())
            agree = (w / w.sum()) @ (self._vectors[row] @ self._vectors[row].T)
            out.append(self.bank.texts[int(row[int(np.argmax(agree))])])
        return out

    def caption(self, paths: Sequence[str | Path]) -> list[str]:
        if not paths:
            return []
        return self.caption_vectors(self.embed(paths))


def _top_k(sims: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values of each row, largest first."""
    k = min(k, sims.shape[1])
    part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)

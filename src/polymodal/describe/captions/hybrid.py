"""The decoder's caption, unless a retrieved caption fits the image clearly better.

The trained decoder writes the best captions for pictures like its training drawings but
wanders on real photos, where retrieval in the aligned space (trained with photo-like copies
and the ImageNet classes) holds up. Both captions are embedded by the alignment's text side and
compared with the image: the decoder's is kept unless its cosine similarity falls more than
``margin`` below the retrieved caption's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from polymodal.describe.captions.base import CaptionerInfo, image_features
from polymodal.errors import ConfigError
from polymodal.modality import Modality

if TYPE_CHECKING:
    from polymodal.describe.captions.decoder import DecoderCaptioner
    from polymodal.describe.captions.retrieval import RetrievalCaptioner
    from polymodal.encoders.base import Encoder


class HybridCaptioner:
    """Chooses, per image, between a decoder's and a retrieval captioner's caption."""

    def __init__(
        self,
        retrieval: RetrievalCaptioner,
        decoder: DecoderCaptioner,
        *,
        margin: float = 0.1,
        name: str = "hybrid",
    ) -> None:
        if retrieval.encoder.info.cache_id != decoder.encoder.info.cache_id:
            raise ConfigError(
                "the retrieval and decoder captioners read different image encoders "
                f"({retrieval.encoder.info.cache_id}, {decoder.encoder.info.cache_id})"
            )
        self.retrieval = retrieval
        self.decoder = decoder
        self.margin = margin
        self._text_encoder: Encoder | None = None
        self.info = CaptionerInfo(
            name=name,
            kind="hybrid",
            source=f"{decoder.info.source}; {retrieval.info.source}",
            description=f"decoder caption unless retrieval fits better by over {margin:g}",
        )

    def combine(self, z: np.ndarray, decoded: Sequence[str], retrieved: Sequence[str]) -> list[str]:
        """Per image (aligned unit vectors ``z``): the decoded caption or the retrieved one."""
        alignment = self.retrieval.alignment
        side = alignment.side_of(Modality.TEXT)
        if self._text_encoder is None:
            self._text_encoder = alignment.sides[side].build_encoder()
        both = alignment.encode_values(side, [*decoded, *retrieved], encoder=self._text_encoder)
        fit_decoded = np.sum(z * both[: len(decoded)], axis=1)
        fit_retrieved = np.sum(z * both[len(decoded) :], axis=1)
        keep = fit_decoded >= fit_retrieved - self.margin
        return [d if k else r for d, r, k in zip(decoded, retrieved, keep, strict=True)]

    def caption_features(self, pooled: np.ndarray, tokens: np.ndarray) -> list[str]:
        """Captions from pooled vectors and grid tokens of the shared image encoder."""
        z = self.retrieval.alignment.embed(self.retrieval.side, pooled)
        decoded = self.decoder.caption_tokens(tokens)
        return self.combine(z, decoded, self.retrieval.caption_vectors(z))

    def caption(self, paths: Sequence[str | Path]) -> list[str]:
        if not paths:
            return []
        pooled, tokens = image_features(self.decoder.encoder, paths, tokens=True)
        assert tokens is not None
        return self.caption_features(pooled, tokens)

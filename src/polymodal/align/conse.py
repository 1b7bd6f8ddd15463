"""ConSE (Norouzi et al. 2014): images into text space through an ImageNet classifier, no training.

An image's ImageNet-1k probabilities weight the text embeddings of the class names: the top-k
classes' probabilities, renormalised, average their names' embeddings (each name written into
the templates and averaged, as a prompt ensemble), and the result is renormalised. The image then
lives in the text encoder's space and can be compared with any label. A baseline for trained
alignments, and a feature they may combine with.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from polymodal.errors import ConfigError, InputError
from polymodal.modality import Modality

if TYPE_CHECKING:
    from polymodal.cache.embed import ColumnEmbeddings
    from polymodal.cache.store import EmbeddingCache
    from polymodal.encoders.base import Encoder

DEFAULT_TEMPLATES = ("a photo of a {}.",)
DEFAULT_TOP_K = 10  # the paper's T = 10


class ConSE:
    """Image side "a" (pooled image vectors -> text space), text side "b" (the text encoder).

    ``image_encoder`` must have an ImageNet head (``imagenet_probs``), as the default
    EfficientNet-Lite0 has; ``top_k=None`` weights all 1000 classes.
    """

    scale = 100.0  # cosine similarities are multiplied by this before a softmax, as CLIP's

    def __init__(
        self,
        image_encoder: Encoder | None = None,
        text_encoder: Encoder | None = None,
        *,
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        top_k: int | None = DEFAULT_TOP_K,
        cache: EmbeddingCache | None = None,
    ) -> None:
        from polymodal.encoders.registry import build_encoder, default_encoder_name

        self.image_encoder = image_encoder or build_encoder(default_encoder_name(Modality.IMAGE))
        self.text_encoder = text_encoder or build_encoder(default_encoder_name(Modality.TEXT))
        if not hasattr(self.image_encoder, "imagenet_probs"):
            raise ConfigError(
                f"ConSE needs an image encoder with an ImageNet classifier; "
                f"{self.image_encoder.info.name} has none"
            )
        if top_k is not None and not 1 <= top_k <= 1000:
            raise ConfigError(f"top_k must be between 1 and 1000, got {top_k}")
        self.templates = tuple(templates)
        self.top_k = top_k
        self.cache = cache
        self._classes: np.ndarray | None = None

    def side_of(self, modality: Modality | str) -> str:
        m = Modality(modality)
        if m == Modality.IMAGE:
            return "a"
        if m == Modality.TEXT:
            return "b"
        raise ConfigError(f"ConSE maps images into text space; it has no {m} side")

    def class_embeddings(self) -> np.ndarray:
        """(1000, dim) unit text vectors of the ImageNet class names, prompt-ensembled."""
        if self._classes is None:
            from polymodal.encoders.image_efficientnet import imagenet_class_names

            names = imagenet_class_names()
            prompts = [t.replace("{}", n) for n in names for t in self.templates]
            z = self._text(prompts).reshape(len(names), len(self.templates), -1).mean(axis=1)
            self._classes = _unit(z)
        return self._classes

    def weights(self, pooled: np.ndarray) -> np.ndarray:
        """(N, 1000) ConSE weights: top-k ImageNet probabilities, renormalised to sum to 1."""
        probs = self.image_encoder.imagenet_probs(pooled)  # type: ignore[attr-defined]
        if self.top_k is not None and self.top_k < probs.shape[1]:
            cut = np.argpartition(-probs, self.top_k - 1, axis=1)[:, : self.top_k]
            kept = np.zeros_like(probs)
            np.put_along_axis(kept, cut, np.take_along_axis(probs, cut, axis=1), axis=1)
            probs = kept
        return probs / probs.sum(axis=1, keepdims=True)

    def embed(self, side: str, embeddings: np.ndarray | ColumnEmbeddings) -> np.ndarray:
        """Pooled vectors of ``side`` ("a"/"image" or "b"/"text") -> unit text-space vectors."""
        name = side if side in ("a", "b") else self.side_of(side)
        encoder = self.image_encoder if name == "a" else self.text_encoder
        pooled = _pooled(embeddings, encoder)
        if name == "b":
            return _unit(pooled)
        return _unit(self.weights(pooled) @ self.class_embeddings())

    def encode_values(
        self,
        side: str,
        values: Sequence[str],
        *,
        base: Path | None = None,
        cache: EmbeddingCache | None = None,
        **_: Any,
    ) -> np.ndarray:
        """Raw cells (image paths, or texts) -> unit text-space vectors."""
        from polymodal.align.model import embed_values

        name = side if side in ("a", "b") else self.side_of(side)
        encoder = self.image_encoder if name == "a" else self.text_encoder
        col, report = embed_values(encoder, values, base=base, cache=cache or self.cache)
        if report.skipped:
            first = report.skipped[0]
            raise InputError(first.problem, row=first.row, path=first.path)
        return self.embed(name, col)

    def _text(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_values("b", texts)


def _pooled(embeddings: np.ndarray | ColumnEmbeddings, encoder: Encoder) -> np.ndarray:
    if not isinstance(embeddings, np.ndarray):
        if embeddings.encoder != encoder.info.cache_id:
            raise ConfigError(
                f"column {embeddings.column!r} was embedded by {embeddings.encoder}, "
                f"not {encoder.info.cache_id}"
            )
        if not embeddings.present.all():
            row = int(np.flatnonzero(~embeddings.present)[0])
            raise InputError("no embedding for this row", row=row, column=embeddings.column)
        embeddings = embeddings.pooled
    pooled = np.asarray(embeddings, dtype=np.float32)
    if pooled.ndim != 2 or pooled.shape[1] != encoder.info.width:
        raise ConfigError(f"expected (N, {encoder.info.width}) vectors, got {pooled.shape}")
    return pooled


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)).astype(np.float32)

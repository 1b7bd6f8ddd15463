"""Zero-shot sound tags: an audio file is matched against a vocabulary of sound names in the
shipped audio-text alignment (``polymodal.align``), as ``polymodal classify`` does for labels."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from polymodal.errors import ConfigError

if TYPE_CHECKING:
    from polymodal.align.zeroshot import Space, ZeroShotClassifier
    from polymodal.cache.store import EmbeddingCache
    from polymodal.encoders.audio_whisper import WhisperAudioEncoder


def vocabulary_path() -> Path:
    """The shipped general sound vocabulary (``describe/tags/sounds.txt``)."""
    return Path(str(resources.files("polymodal.describe").joinpath("tags", "sounds.txt")))


def load_vocabulary(path: str | Path | None = None) -> list[str]:
    """Labels of a vocabulary file: one per line, ``#`` comments and blank lines ignored."""
    file = vocabulary_path() if path is None else Path(path)
    if not file.is_file():
        raise ConfigError(f"sound vocabulary {file} not found")
    lines = (line.split("#", 1)[0].strip() for line in file.read_text("utf-8").splitlines())
    labels = [line for line in lines if line]
    if len(labels) < 2:
        raise ConfigError(f"sound vocabulary {file} holds fewer than two labels")
    return labels


class SoundTagger:
    """The ``top_k`` most likely sound names of an audio file, with their probabilities.

    ``labels``: the vocabulary (default: the shipped one). ``alignment``: the shared space
    (default: the shipped audio-text alignment; see :class:`ZeroShotClassifier`). Tags below
    ``min_probability`` are dropped. The classifier is built on the first call; its prompt
    embeddings go through ``cache`` (default: the embedding cache in the polymodal home), so
    later runs skip embedding the vocabulary.
    """

    def __init__(
        self,
        labels: Sequence[str] | None = None,
        *,
        alignment: Space | str | Path | None = None,
        top_k: int = 3,
        min_probability: float = 0.03,
        cache: EmbeddingCache | None = None,
    ) -> None:
        self.labels = list(labels) if labels is not None else load_vocabulary()
        self.alignment = alignment
        self.top_k = top_k
        self.min_probability = min_probability
        self.cache = cache
        self._classifier: ZeroShotClassifier | None = None
        self._lock = threading.Lock()

    @property
    def classifier(self) -> ZeroShotClassifier:
        with self._lock:
            if self._classifier is None:
                from polymodal.align.zeroshot import ZeroShotClassifier
                from polymodal.cache.store import EmbeddingCache

                self._classifier = ZeroShotClassifier(
                    self.labels,
                    alignment=self.alignment,
                    modality="audio",
                    cache=self.cache if self.cache is not None else EmbeddingCache(),
                )
            return self._classifier

    def tag(self, path: str | Path) -> list[tuple[str, float]]:
        """Tags of one audio file (or a video's audio track); ``InputError`` if unreadable."""
        return self.from_probabilities(self.probabilities([path])[0])

    def probabilities(self, paths: Sequence[str | Path]) -> np.ndarray:
        """(N, n_labels) probabilities of the vocabulary for each file."""
        zs = self.classifier
        encoder = self._encoder()
        if encoder is None:  # a user's alignment: its own encoder, through the space
            return zs.predict_proba([str(p) for p in paths])
        items = [encoder.decode(str(p)) for p in paths]
        pooled = np.stack([e.pooled for e in encoder.encode(items)])
        return zs.predict_proba(pooled)

    def from_probabilities(self, p: np.ndarray) -> list[tuple[str, float]]:
        best = np.argsort(p)[::-1][: self.top_k]
        return [(self.labels[i], float(p[i])) for i in best if p[i] >= self.min_probability]

    def _encoder(self) -> WhisperAudioEncoder | None:
        if self.alignment not in (None, "default"):
            return None
        from polymodal.describe.whisper import audio_encoder

        return audio_encoder()

"""Real paired data for alignment tests: scikit-learn's handwritten digits and their words."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from polymodal.encoders.base import Encoder

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass(frozen=True)
class Digits:
    """8x8 digit images as 64 pixel values, the digit's word through a text encoder, labels."""

    pixels: np.ndarray  # (N, 64) float32
    words: np.ndarray  # (N, width) pooled text vectors of each row's digit word
    labels: np.ndarray  # (N,) int
    word_vectors: np.ndarray  # (10, width), one per digit
    text: Encoder


@pytest.fixture(scope="session")
def tiny_text() -> Encoder:
    from polymodal.encoders.registry import build_encoder

    return build_encoder("minilm-l6", tiny=True)


@pytest.fixture(scope="session")
def digits(tiny_text: Encoder) -> Digits:
    from sklearn.datasets import load_digits

    pixels, labels = load_digits(return_X_y=True)
    vectors = np.stack([e.pooled for e in tiny_text.encode([tiny_text.decode(w) for w in WORDS])])
    return Digits(pixels.astype(np.float32), vectors[labels], labels, vectors, tiny_text)

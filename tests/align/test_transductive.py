"""Transductive zero-shot: a batch's own clusters fix labels the text side places badly, and too
small a batch falls back to inductive, saying so."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from polymodal.align.transductive import (
    MIN_PER_LABEL,
    batch_features,
    enough_inputs,
    transductive_proba,
)
from polymodal.align.zeroshot import TransductiveFallback, ZeroShotClassifier
from tests.cli.test_cli import run
from tests.encoders.test_huggingface import clip_folder

K, PER_CLASS, WIDTH = 4, 30, 32


def clusters(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Media vectors in K tight clusters around a shared offset, their classes, and text logits
    that are right on average but so noisy that inductive zero-shot gets about half wrong."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(K, WIDTH)) * 3
    y = np.repeat(np.arange(K), PER_CLASS)
    x = 20.0 + centres[y] + rng.normal(size=(len(y), WIDTH))  # offset: centring must remove it
    logits = 2.0 * np.eye(K)[y] + rng.normal(scale=2.0, size=(len(y), K))
    return x, y, logits


def test_batch_clusters_correct_a_noisy_text_prior() -> None:
    x, y, logits = clusters()
    inductive = np.mean(logits.argmax(1) == y)
    probs = transductive_proba(logits, batch_features(x))
    assert probs.shape == (K * PER_CLASS, K)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    transductive = np.mean(probs.argmax(1) == y)
    assert inductive < 0.75, inductive
    assert transductive > 0.95, transductive


def test_features_are_centred_and_unit() -> None:
    x, _, _ = clusters()
    f = batch_features(x)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-9)
    # Uncentred, every vector points along the shared offset and the clusters blur together.
    raw = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert (raw @ raw.T).min() > 0.5 and (f @ f.T).min() < 0.0


def test_without_iterations_it_is_inductive() -> None:
    x, _, logits = clusters()
    p = transductive_proba(logits, batch_features(x), iterations=0)
    want = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(p, want / want.sum(1, keepdims=True), atol=1e-6)


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="must be"):
        transductive_proba(np.zeros((3, 2)), np.zeros((4, 5)))


def test_minimum_batch() -> None:
    assert not enough_inputs(MIN_PER_LABEL * 3 - 1, 3)
    assert enough_inputs(MIN_PER_LABEL * 3, 3)


class ClusterSpace:
    """A shared space whose media side is the first K dimensions of the noisy text logits: the
    text vectors are the axes, so inductive zero-shot reads the noisy logits back."""

    scale = 1.0

    def side_of(self, modality: Any) -> str:
        return "b" if str(modality) == "text" else "a"

    def embed(self, side: str, embeddings: Any) -> np.ndarray:
        return np.asarray(embeddings, dtype=np.float64)[:, WIDTH:]

    def encode_values(self, side: str, values: Sequence[str], **kwargs: Any) -> np.ndarray:
        return np.eye(K)[[int(v) for v in values]]


def test_classifier_transduces_and_falls_back_on_small_batches() -> None:
    x, y, logits = clusters(seed=1)
    labels = [str(k) for k in range(K)]
    zs = ZeroShotClassifier(labels, ["{}"], alignment=ClusterSpace(), expand_labels=False)
    pooled = np.hstack([x, logits])  # the space takes the logits, the batch clusters on x
    inductive = np.mean(np.array(zs.predict(pooled), dtype=int) == y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TransductiveFallback)
        transductive = np.mean(np.array(zs.predict(pooled, transductive=True), dtype=int) == y)
    assert transductive > inductive + 0.2, (inductive, transductive)

    few = pooled[: MIN_PER_LABEL * K - 1]
    with pytest.warns(TransductiveFallback, match="inductive"):
        p = zs.predict_proba(few, transductive=True)
    np.testing.assert_allclose(p, zs.predict_proba(few), atol=1e-6)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.datasets import load_sample_image

    folder = tmp_path_factory.mktemp("photos")
    for name in ("china.jpg", "flower.jpg"):
        image = Image.fromarray(load_sample_image(name)).resize((64, 48))
        for i in range(6):  # slightly different crops: 12 photos, 6 per label for two labels
            image.crop((i, 0, 64 - i, 48)).save(folder / f"{name[:-4]}{i}.png")
    return folder


def test_cli_transductive_classify_and_its_fallback(
    tmp_path_factory: pytest.TempPathFactory, photo_folder: Path
) -> None:
    clip = clip_folder(tmp_path_factory.mktemp("clip"))
    base = ("classify", "--labels", "cat,dog", "--clip", str(clip), "--transductive", "-q")
    res = run(*base[:1], str(photo_folder), *base[1:])
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.strip().splitlines()) == 12
    assert "inductive" not in res.stderr
    one = sorted(photo_folder.iterdir())[0]
    res = run(*base[:1], str(one), *base[1:])
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.strip().splitlines()) == 1
    assert "at least 5 inputs per label" in res.stderr and "inductive" in res.stderr

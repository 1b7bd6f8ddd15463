"""ConSE: top-k ImageNet probabilities weight the class names' text embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from polymodal.align.conse import ConSE
from polymodal.align.retrieval import proportion
from polymodal.align.zeroshot import ZeroShotClassifier
from polymodal.encoders.base import Encoder
from polymodal.encoders.image_efficientnet import imagenet_class_names
from polymodal.errors import ConfigError
from polymodal.modality import Modality
from tests.conftest import require_shared


@pytest.fixture(scope="module")
def tiny_conse(tiny_text: Encoder) -> ConSE:
    from polymodal.encoders.registry import build_encoder

    image = build_encoder("efficientnet-lite0", tiny=True)
    return ConSE(image, tiny_text, templates=("a photo of a {}.",), top_k=3)


def test_top_k_weights_keep_the_k_most_likely_classes(tiny_conse: ConSE) -> None:
    rng = np.random.default_rng(0)
    pooled = rng.normal(size=(4, tiny_conse.image_encoder.info.width)).astype(np.float32) * 5
    w = tiny_conse.weights(pooled)
    probs = tiny_conse.image_encoder.imagenet_probs(pooled)  # type: ignore[attr-defined]
    assert ((w > 0).sum(axis=1) == 3).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-6)
    for row_w, row_p in zip(w, probs, strict=True):
        top = np.argsort(-row_p)[:3]
        np.testing.assert_allclose(row_w[top], row_p[top] / row_p[top].sum(), rtol=1e-5)


def test_image_embedding_is_the_weighted_mean_of_class_name_embeddings(
    tiny_conse: ConSE, tiny_text: Encoder
) -> None:
    rng = np.random.default_rng(1)
    pooled = rng.normal(size=(2, tiny_conse.image_encoder.info.width)).astype(np.float32)
    z = tiny_conse.embed("image", pooled)
    names = imagenet_class_names()
    w = tiny_conse.weights(pooled)
    manual = []
    for row in w:
        idx = np.flatnonzero(row)
        texts = [f"a photo of a {names[i]}." for i in idx]
        t = np.stack([e.pooled for e in tiny_text.encode([tiny_text.decode(s) for s in texts])])
        t /= np.linalg.norm(t, axis=1, keepdims=True)
        v = row[idx] @ t
        manual.append(v / np.linalg.norm(v))
    np.testing.assert_allclose(z, np.stack(manual), atol=1e-5)
    assert tiny_conse.side_of(Modality.TEXT) == "b"
    with pytest.raises(ConfigError, match="no audio side"):
        tiny_conse.side_of(Modality.AUDIO)


def test_conse_needs_an_imagenet_head(tiny_text: Encoder) -> None:
    with pytest.raises(ConfigError, match="ImageNet classifier"):
        ConSE(tiny_text, tiny_text)
    with pytest.raises(ConfigError, match="top_k"):
        ConSE(top_k=0)


@pytest.mark.real_weights
@pytest.mark.shared_data
@pytest.mark.slow
def test_conse_on_clothing_matches_the_recorded_accuracy() -> None:
    from polymodal.cache.embed import embed_table
    from polymodal.data.dataset import load_dataset

    data = require_shared("clothing") / "test"
    ds = load_dataset(data, columns=["path"])
    col = embed_table(ds.frame, ds.schema, base=ds.base, progress=False).columns["path"]
    truth = ds.frame["folder"].to_numpy()
    labels = sorted(set(truth))
    zs = ZeroShotClassifier(
        labels, ["a photo of a {}."], alignment=ConSE(top_k=10), expand_labels=False
    )
    acc = proportion(int((np.array(zs.predict(col)) == truth).sum()), len(truth))
    # Recorded once: 150 of 372 (40.3%) with top-10 probabilities and "a photo of a {}.".
    assert acc.n == 372
    assert acc.value == pytest.approx(150 / 372, abs=2 / 372)

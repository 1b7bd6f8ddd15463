"""Alignment training on real pairs (digit images and their words): it learns, repeats, stops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from polymodal.align.model import Alignment, Side
from polymodal.align.retrieval import retrieval_metrics
from polymodal.align.train import train_alignment
from polymodal.cache.embed import ColumnEmbeddings
from polymodal.errors import ConfigError
from polymodal.modality import Modality
from tests.align.conftest import WORDS, Digits

N_TRAIN = 1200
FAST = dict(epochs=40, patience=8, batch_size=512, lr=3e-3, progress=False)
PIXELS = Side.unrecorded(64, modality=Modality.IMAGE)


def _held_out(al: Alignment, d: Digits) -> tuple[dict, float]:
    za = al.embed("a", d.pixels[N_TRAIN:])
    m = retrieval_metrics(za, al.embed("b", d.words[N_TRAIN:]), groups=d.labels[N_TRAIN:])
    acc = float(np.mean(np.argmax(za @ al.embed("b", d.word_vectors).T, 1) == d.labels[N_TRAIN:]))
    return m, acc


@pytest.mark.parametrize("loss", ["infonce", "siglip"])
def test_digit_images_align_with_their_words(digits: Digits, loss: str) -> None:
    al, hist = train_alignment(
        digits.pixels[:N_TRAIN],
        digits.words[:N_TRAIN],
        a_encoder=PIXELS,
        b_encoder=digits.text,
        lock="none",
        loss=loss,
        **FAST,
    )
    m, acc = _held_out(al, digits)
    # Chance is 10% for both; a linear head on raw pixels gets far above it.
    assert acc > 0.6, acc
    assert m["a_to_b"]["R@1"].value > 0.6
    assert hist.best_mean_r1 > 0.6
    assert hist.n_train + hist.n_val == N_TRAIN and hist.n_val > 0
    assert al.b.encoder == "minilm-l6" and al.b.tiny and al.b.modality == Modality.TEXT
    assert al.record["best_epoch"] == hist.best_epoch
    if loss == "siglip":
        assert al.logit_bias is not None


def test_the_locked_text_side_is_the_identity(digits: Digits) -> None:
    al, _ = train_alignment(
        digits.pixels[:400],
        digits.words[:400],
        a_encoder=PIXELS,
        b_encoder=digits.text,
        epochs=3,
        progress=False,
    )
    assert al.heads["b"].lock and not al.heads["a"].lock
    assert al.dim == digits.text.info.width
    v = digits.word_vectors
    np.testing.assert_allclose(
        al.embed("b", v), v / np.linalg.norm(v, axis=1, keepdims=True), atol=1e-6
    )


def test_same_seed_same_alignment_other_seed_not(digits: Digits) -> None:
    def run(seed: int) -> np.ndarray:
        al, _ = train_alignment(
            digits.pixels[:300],
            digits.words[:300],
            lock="none",
            seed=seed,
            epochs=5,
            patience=100,
            progress=False,
        )
        return al.embed("a", digits.pixels[300:320])

    first, again, other = run(0), run(0), run(1)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_early_stopping_keeps_the_best_epoch_and_checkpoints_it(
    digits: Digits, tmp_path: Path
) -> None:
    al, hist = train_alignment(
        digits.pixels[:600],
        digits.words[:600],
        lock="none",
        epochs=200,
        patience=3,
        lr=1e-2,
        checkpoint=tmp_path / "ckpt",
        progress=False,
    )
    assert len(hist.epochs) < 200
    assert len(hist.epochs) == hist.best_epoch + 3
    best = max(row["mean_R@1"] for row in hist.epochs)
    assert hist.epochs[hist.best_epoch - 1]["mean_R@1"] == best
    saved = Alignment.load(tmp_path / "ckpt")
    np.testing.assert_array_equal(
        saved.embed("a", digits.pixels[:5]), al.embed("a", digits.pixels[:5])
    )
    assert saved.record["best_epoch"] == hist.best_epoch
    assert not list((tmp_path / "ckpt").glob("*.tmp"))


def test_rows_missing_a_side_are_skipped_and_counted(digits: Digits) -> None:
    n = 200
    present = np.ones(n, dtype=bool)
    present[[3, 50, 51]] = False
    pooled = digits.pixels[:n].copy()
    pooled[~present] = 0.0
    col = ColumnEmbeddings("photo", Modality.IMAGE, "pixels@x+p1", pooled, present)
    al, hist = train_alignment(col, digits.words[:n], epochs=2, lock="none", progress=False)
    assert hist.skipped == 3
    assert hist.n_train + hist.n_val == n - 3
    assert al.record["pairs_skipped"] == 3
    assert al.a.cache_id == "pixels@x+p1" and al.a.column == "photo"


def test_bad_training_input_is_refused(digits: Digits) -> None:
    with pytest.raises(ConfigError, match="line up"):
        train_alignment(digits.pixels[:10], digits.words[:9], progress=False)
    with pytest.raises(ConfigError, match="at least 2"):
        train_alignment(digits.pixels[:1], digits.words[:1], progress=False)
    with pytest.raises(ConfigError, match="lock"):
        train_alignment(digits.pixels[:10], digits.words[:10], lock="x", progress=False)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs the encoder"):
        train_alignment(
            digits.pixels[:10], digits.words[:10], unfreeze_blocks=1, lock="none", progress=False
        )
    with pytest.raises(ConfigError, match="unknown alignment loss"):
        train_alignment(digits.pixels[:10], digits.words[:10], loss="hinge", progress=False)


def _digit_images(d: Digits, n: int, size: int = 64) -> list[np.ndarray]:
    """Digits as the uint8 (3, S, S) arrays the image encoder's decode returns."""
    out = []
    for px in d.pixels[:n]:
        img = np.kron(px.reshape(8, 8) / 16.0 * 255, np.ones((size // 8, size // 8)))
        out.append(np.repeat(img[None].astype(np.uint8), 3, axis=0))
    return out


def test_unfreezing_trains_only_the_last_blocks(digits: Digits) -> None:
    from polymodal.encoders.registry import build_encoder

    image = build_encoder("efficientnet-lite0", tiny=True)
    items = _digit_images(digits, 48)
    words = [
        digits.text.decode(w)
        for w in np.array(
            ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
        )[digits.labels[:48]]
    ]
    before = {k: v.clone() for k, v in image.module().state_dict().items()}
    al, hist = train_alignment(
        items,
        words,
        a_encoder=image,
        b_encoder=digits.text,
        unfreeze_blocks=1,
        epochs=2,
        batch_size=16,
        lr=1e-2,
        val_fraction=0.0,
        progress=False,
    )
    assert set(al.tuned.keys()) == {"a"}
    tuned = al.tuned["a"]
    last = {id(p) for p in tuned.blocks()[-1].parameters()}
    changed = {
        name for name, p in tuned.named_parameters() if not torch.equal(p.detach(), before[name])
    }
    assert changed, "no encoder weight moved"
    names_last = {n for n, p in tuned.named_parameters() if id(p) in last}
    assert changed <= names_last
    assert len(hist.epochs) == 2 and np.isfinite(hist.epochs[-1]["loss"])
    # The pre-trained encoder itself is untouched.
    for k, v in image.module().state_dict().items():
        assert torch.equal(v, before[k])


@pytest.mark.real_weights
def test_lit_into_the_real_minilm_space(digits: Digits) -> None:
    """The default recipe (text locked, LiT): digit images learn to land near their words in
    all-MiniLM-L6-v2's own space, so prompts never seen in training work too."""
    from polymodal.align.zeroshot import ZeroShotClassifier
    from polymodal.encoders.registry import build_encoder

    text = build_encoder("minilm-l6")
    words = np.stack([e.pooled for e in text.encode([text.decode(w) for w in WORDS])])
    al, _ = train_alignment(
        digits.pixels[:N_TRAIN], words[digits.labels[:N_TRAIN]], a_encoder=PIXELS,
        b_encoder=text, **FAST,
    )  # fmt: skip
    assert al.heads["b"].lock and al.dim == 384
    truth = np.array(WORDS)[digits.labels[N_TRAIN:]]
    for templates, floor in ((["{}"], 0.8), (["a photo of the digit {}."], 0.7)):
        zs = ZeroShotClassifier(list(WORDS), templates, alignment=al)
        acc = np.mean(np.array(zs.predict(digits.pixels[N_TRAIN:])) == truth)
        assert acc > floor, (templates, acc)  # measured 0.89 and 0.83; chance 0.1

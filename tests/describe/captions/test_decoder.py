"""The caption decoder at tiny size: vocabulary, forward/backward, beam search, save/load."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch

from polymodal.describe.captions.decoder import (
    BOS,
    EOS,
    PAD,
    UNK,
    CaptionDecoder,
    DecoderCaptioner,
    Vocabulary,
    is_decoder_folder,
    load_decoder,
)
from polymodal.errors import ConfigError

CAPTIONS = ["A red car", "A blue bird: animal, bird", "A red bird", "a car"]


def tiny(vocab: Vocabulary, **kwargs: int) -> CaptionDecoder:
    sizes = {"token_width": 8, "n_tokens": 4, "dim": 16, "layers": 2, "heads": 2, "ff": 32}
    return CaptionDecoder(len(vocab), max_len=10, **{**sizes, **kwargs})


def test_vocabulary_keeps_frequent_tokens_and_round_trips() -> None:
    vocab = Vocabulary.build(CAPTIONS, min_count=2)
    assert vocab.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert vocab.itos[4:] == ["a", "bird", "car", "red"]  # by count, then alphabetical
    ids = vocab.encode("A red frog", max_len=10)
    assert ids == [BOS, vocab.stoi["a"], vocab.stoi["red"], UNK, EOS]
    assert vocab.decode(ids[1:]) == "A red"  # unknown words are dropped
    assert vocab.encode("a red car a red car", max_len=5) == [BOS, 4, 7, 6, EOS]


def test_forward_backward_reaches_every_parameter() -> None:
    torch.manual_seed(0)
    vocab = Vocabulary.build(CAPTIONS, min_count=1)
    model = tiny(vocab)
    x = torch.randn(3, 4, 8)
    rows = [vocab.encode(c, 10) for c in CAPTIONS[:3]]
    ids = torch.tensor([r + [PAD] * (10 - len(r)) for r in rows])
    logits = model(x, ids[:, :-1])
    assert logits.shape == (3, 9, len(vocab))
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, len(vocab)), ids[:, 1:].reshape(-1), ignore_index=PAD
    )
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if name != "text_pos":  # positions past the longest caption get no gradient
            assert p.grad.abs().sum() > 0, name


def test_causal_mask_hides_the_future() -> None:
    torch.manual_seed(0)
    vocab = Vocabulary.build(CAPTIONS, min_count=1)
    model = tiny(vocab).eval()
    x = torch.randn(1, 4, 8)
    a = model(x, torch.tensor([[BOS, 4, 5, 6]]))
    b = model(x, torch.tensor([[BOS, 4, 9, 9]]))
    assert torch.allclose(a[:, :2], b[:, :2], atol=1e-5)
    assert not torch.allclose(a[:, 2:], b[:, 2:])


def test_a_few_steps_learn_two_captions() -> None:
    torch.manual_seed(0)
    vocab = Vocabulary.build(CAPTIONS, min_count=1)
    model = tiny(vocab, dim=32, ff=64)
    x = torch.randn(2, 4, 8)
    rows = [vocab.encode(c, 10) for c in ("A red car", "A blue bird: animal, bird")]
    ids = torch.tensor([r + [PAD] * (10 - len(r)) for r in rows])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(50):
        logits = model(x, ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, len(vocab)), ids[:, 1:].reshape(-1), ignore_index=PAD
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    for beam in (1, 3):
        got = [vocab.decode(i) for i in model.generate(x, beam=beam)]
        assert got == ["A red car", "A blue bird: animal, bird"], beam


def test_generate_respects_bans_and_never_repeats_a_bigram() -> None:
    torch.manual_seed(1)
    vocab = Vocabulary.build(CAPTIONS, min_count=1)
    model = tiny(vocab)
    out = model.generate(torch.randn(5, 4, 8), beam=3, banned=[4], no_start=vocab.punctuation())
    assert len(out) == 5
    for ids in out:
        assert 0 < len(ids) <= model.max_len - 1
        assert not {PAD, BOS, UNK, 4} & set(ids)
        assert ids[0] not in vocab.punctuation()
        pairs = list(pairwise(ids))
        assert len(pairs) == len(set(pairs)) and all(a != b for a, b in pairs)


def test_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    vocab = Vocabulary.build(CAPTIONS, min_count=1)
    model = tiny(vocab).eval()
    model.save(tmp_path, config={"vocab": vocab.itos, "generate": {"beam": 2}})
    assert is_decoder_folder(tmp_path) and not is_decoder_folder(tmp_path / "absent")
    loaded, vocab2, config = load_decoder(tmp_path)
    assert vocab2.itos == vocab.itos and config["generate"] == {"beam": 2}
    x = torch.randn(2, 4, 8)
    ids = torch.tensor([[BOS, 4, 5]] * 2)
    # Weights are stored as float16.
    assert torch.allclose(model(x, ids), loaded(x, ids), atol=2e-2)


def test_load_refuses_a_broken_folder(tmp_path: Path) -> None:
    vocab = Vocabulary.build(CAPTIONS, min_count=1)
    tiny(vocab).save(tmp_path, config={"vocab": vocab.itos[:-1]})
    with pytest.raises(ConfigError, match="vocabulary"):
        load_decoder(tmp_path)
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_decoder(tmp_path)


def test_captioner_refuses_an_encoder_of_another_width() -> None:
    from polymodal.encoders.registry import build_encoder

    vocab = Vocabulary.build(CAPTIONS, min_count=1)
    encoder = build_encoder("efficientnet-lite0", tiny=True)
    assert encoder.info.token_width != 8
    with pytest.raises(ConfigError, match="tokens"):
        DecoderCaptioner(tiny(vocab), vocab, encoder=encoder)


def test_captioner_on_files_with_a_tiny_encoder(tmp_path: Path) -> None:
    from PIL import Image

    from polymodal.encoders.registry import build_encoder

    torch.manual_seed(0)
    encoder = build_encoder("efficientnet-lite0", tiny=True)
    vocab = Vocabulary.build(CAPTIONS, min_count=1)
    emb = encoder.encode(encoder.example_inputs(1), tokens=True)[0]
    assert emb.tokens is not None
    model = tiny(vocab, token_width=emb.tokens.shape[1], n_tokens=emb.tokens.shape[0])
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(np.full((20, 20, 3), 60 * i, np.uint8)).save(paths[-1])
    got = DecoderCaptioner(model, vocab, encoder=encoder, beam=2).caption(paths)
    assert len(got) == 3 and all(isinstance(c, str) for c in got)
    assert DecoderCaptioner(model, vocab, encoder=encoder).caption([]) == []

"""The hybrid captioner: the decoder's caption unless retrieval fits the image clearly better."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from polymodal.align.heads import ProjectionHead
from polymodal.align.model import Alignment, Side
from polymodal.describe.captions.bank import CaptionBank
from polymodal.describe.captions.decoder import CaptionDecoder, DecoderCaptioner, Vocabulary
from polymodal.describe.captions.hybrid import HybridCaptioner
from polymodal.describe.captions.retrieval import RetrievalCaptioner
from polymodal.encoders.registry import build_encoder
from polymodal.errors import ConfigError

BANK = ["a red car", "a blue bird", "a green frog"]


@pytest.fixture(scope="module")
def parts() -> tuple[RetrievalCaptioner, DecoderCaptioner]:
    torch.manual_seed(0)
    image = build_encoder("efficientnet-lite0", tiny=True)
    text = build_encoder("minilm-l6", tiny=True)
    alignment = Alignment(
        Side.of(image),
        Side.of(text),
        ProjectionHead(image.info.width, text.info.width),
        ProjectionHead(text.info.width, text.info.width, lock=True),
    )
    retrieval = RetrievalCaptioner(CaptionBank.build(BANK, alignment), alignment, encoder=image)
    emb = image.encode(image.example_inputs(1), tokens=True)[0]
    assert emb.tokens is not None
    vocab = Vocabulary.build(["a yellow sun", "a yellow moon"], min_count=1)
    model = CaptionDecoder(
        len(vocab), token_width=emb.tokens.shape[1], n_tokens=emb.tokens.shape[0], dim=16,
        layers=1, heads=2, ff=32, max_len=6,
    )  # fmt: skip
    return retrieval, DecoderCaptioner(model, vocab, encoder=image)


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(np.full((24, 24, 3), 70 * i, np.uint8)).save(paths[-1])
    return paths


def test_margin_decides_which_caption_is_kept(
    parts: tuple[RetrievalCaptioner, DecoderCaptioner], images: list[Path]
) -> None:
    retrieval, decoder = parts
    decoded = decoder.caption(images)
    retrieved = retrieval.caption(images)
    assert HybridCaptioner(retrieval, decoder, margin=10.0).caption(images) == decoded
    assert HybridCaptioner(retrieval, decoder, margin=-10.0).caption(images) == retrieved
    middle = HybridCaptioner(retrieval, decoder, margin=0.0).caption(images)
    assert all(m in (d, r) for m, d, r in zip(middle, decoded, retrieved, strict=True))
    assert HybridCaptioner(retrieval, decoder).caption([]) == []


def test_both_must_read_the_same_image_encoder(
    parts: tuple[RetrievalCaptioner, DecoderCaptioner],
) -> None:
    retrieval, decoder = parts
    other = DecoderCaptioner(decoder.model, decoder.vocab, encoder=decoder.encoder)
    other.encoder = build_encoder("minilm-l6", tiny=True)  # a different cache id
    with pytest.raises(ConfigError, match="different image encoders"):
        HybridCaptioner(retrieval, other)

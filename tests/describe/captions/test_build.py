"""build_captioner: names, decoder folders and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from polymodal.describe.captions import Captioner, build_captioner
from polymodal.describe.captions.decoder import CaptionDecoder, Vocabulary
from polymodal.errors import ConfigError


def test_unknown_name_says_what_is_accepted() -> None:
    with pytest.raises(ConfigError, match="'retrieval', 'decoder'"):
        build_captioner("nonsense")


def test_a_saved_decoder_folder_is_loaded_as_a_decoder(tmp_path: Path) -> None:
    from polymodal.encoders.registry import build_encoder

    torch.manual_seed(0)
    encoder = build_encoder("efficientnet-lite0", tiny=True)
    emb = encoder.encode(encoder.example_inputs(1), tokens=True)[0]
    assert emb.tokens is not None
    vocab = Vocabulary.build(["a red car", "a blue bird"], min_count=1)
    model = CaptionDecoder(
        len(vocab), token_width=emb.tokens.shape[1], n_tokens=emb.tokens.shape[0], dim=16,
        layers=1, heads=2, ff=32, max_len=8,
    )  # fmt: skip
    config = {"vocab": vocab.itos, "image_encoder": {"name": "efficientnet-lite0"}}
    model.save(tmp_path / "dec", config=config)
    captioner = build_captioner(tmp_path / "dec", encoder=encoder)
    assert isinstance(captioner, Captioner)
    assert captioner.info.kind == "decoder"
    model.save(tmp_path / "other", config={**config, "image_encoder": {"cache_id": "x@1+p1"}})
    with pytest.raises(ConfigError, match="trained on x@1"):
        build_captioner(tmp_path / "other", encoder=encoder)

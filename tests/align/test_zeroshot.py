"""Zero-shot classification: labels checked, prompt ensembles as OpenCLIP builds them, and the
three kinds of space: a tiny random CLIP checkpoint, a trained alignment folder, the default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from PIL import Image

from polymodal.align import default as default_module
from polymodal.align.default import load_default
from polymodal.align.model import Alignment, Side
from polymodal.align.train import train_alignment
from polymodal.align.zeroshot import (
    ZeroShotClassifier,
    build_zero_shot_classifier,
    check_labels,
    check_templates,
)
from polymodal.errors import ConfigError
from polymodal.modality import Modality
from tests.align.conftest import WORDS, Digits
from tests.encoders.test_huggingface import clap_folder, clip_folder

N_TRAIN = 1200


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ("", "no labels"),
        ([], "no labels"),
        (" , ", "no labels"),
        ("cat", "only one label"),
        ("cat,,dog", "empty label"),
        (["cat", "Cat "], "duplicated labels: 'Cat'"),
    ],
)
def test_bad_label_lists_are_refused(labels: list[str] | str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_labels(labels)


def test_labels_and_templates_are_parsed() -> None:
    assert check_labels(" cat, dog ,t-shirt") == ["cat", "dog", "t-shirt"]
    assert check_templates("a {}") == ["a {}"]
    with pytest.raises(ConfigError, match="exactly one"):
        check_templates(["a photo"])
    with pytest.raises(ConfigError, match="exactly one"):
        check_templates(["{} and {}"])
    with pytest.raises(ConfigError, match="no prompt templates"):
        check_templates([])


# --------------------------------------------------------------------------- tiny CLIP
@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clip_folder(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from sklearn.datasets import load_sample_image

    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for name in ("china.jpg", "flower.jpg"):
        paths.append(folder / name)
        Image.fromarray(load_sample_image(name)).save(paths[-1], quality=90)
    return paths


def test_clip_checkpoint_prompt_ensemble_matches_transformers(
    clip: Path, photos: list[Path]
) -> None:
    labels, templates = ["cat", "dog", "car"], ["a photo of a {}.", "{}"]
    zs = ZeroShotClassifier(
        labels, templates, alignment=clip, modality=Modality.IMAGE, expand_labels=False
    )
    model = transformers.CLIPModel.from_pretrained(clip).eval()
    tokenizer = transformers.CLIPTokenizer.from_pretrained(clip)
    with torch.no_grad():
        expected = []
        for label in labels:
            prompts = [t.format(label) for t in templates]
            feats = model.get_text_features(**tokenizer(prompts, padding=True, return_tensors="pt"))
            feats = torch.as_tensor(getattr(feats, "pooler_output", feats))
            mean = torch.nn.functional.normalize(feats, dim=-1).mean(0)
            expected.append(mean / mean.norm())
    np.testing.assert_allclose(zs.weights, torch.stack(expected).T.numpy(), atol=1e-5)
    assert zs.space.scale == pytest.approx(float(model.logit_scale.exp()), rel=1e-6)

    probs = zs.predict_proba([str(p) for p in photos])
    image = zs.space.sides["a"].build_encoder()
    pooled = np.stack([e.pooled for e in image.encode([image.decode(str(p)) for p in photos])])
    z = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    logits = float(model.logit_scale.exp()) * z @ zs.weights
    want = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(probs, want / want.sum(1, keepdims=True), atol=1e-5)
    assert probs.shape == (2, 3)
    assert zs.predict([str(p) for p in photos]) == [labels[i] for i in probs.argmax(1)]
    assert zs.modality == Modality.IMAGE and zs.space.sides["a"].modality == Modality.IMAGE


def test_audio_zero_shot_with_a_clap_checkpoint(tmp_path: Path) -> None:
    """Audio through a tiny random CLAP: audio templates, CLAP's audio temperature."""
    import soundfile as sf

    from polymodal.align.zeroshot import AUDIO_TEMPLATES

    folder = clap_folder(tmp_path / "clap")
    wavs = []
    for hz in (440.0, 880.0):
        t = np.arange(16000) / 16000
        wavs.append(tmp_path / f"{hz:.0f}.wav")
        sf.write(wavs[-1], (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), 16000)
    zs = ZeroShotClassifier(["dog", "rain", "bell"], alignment=folder, modality=Modality.AUDIO)
    assert zs.templates == list(AUDIO_TEMPLATES)
    model = transformers.ClapModel.from_pretrained(folder)
    assert zs.space.scale == pytest.approx(float(model.logit_scale_a.exp()), rel=1e-6)
    probs = zs.predict_proba([str(w) for w in wavs])
    assert probs.shape == (2, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)


def test_clip_folder_without_a_modality_tower_is_a_config_error(clip: Path) -> None:
    with pytest.raises(ConfigError):
        ZeroShotClassifier(["a", "b"], alignment=clip, modality=Modality.AUDIO)


def test_unknown_alignment_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not 'default', 'conse', or a folder"):
        ZeroShotClassifier(["a", "b"], alignment=str(tmp_path / "nope"))


# ------------------------------------------------------------- trained alignments, default
@pytest.fixture(scope="module")
def digit_alignment(digits: Digits, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Digit images (64 pixels) aligned with their words through the tiny text encoder."""
    al, _ = train_alignment(
        digits.pixels[:N_TRAIN],
        digits.words[:N_TRAIN],
        a_encoder=Side.unrecorded(64, modality=Modality.IMAGE),
        b_encoder=digits.text,
        lock="none",
        epochs=40,
        patience=8,
        batch_size=512,
        lr=3e-3,
        progress=False,
    )
    return al.save(tmp_path_factory.mktemp("digits") / "aligned")


def test_zero_shot_with_a_trained_alignment_folder(digits: Digits, digit_alignment: Path) -> None:
    zs = ZeroShotClassifier(list(WORDS), ["{}"], alignment=digit_alignment, expand_labels=False)
    assert zs.modality == Modality.IMAGE  # the alignment's non-text side
    held_out = digits.pixels[N_TRAIN:]
    pred = zs.predict(held_out)
    acc = np.mean(np.array(pred) == np.array(WORDS)[digits.labels[N_TRAIN:]])
    assert acc > 0.6, acc  # chance: 0.1
    probs = zs.predict_proba(held_out[:5])
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    # Same weights as the plain function over the loaded alignment.
    w = build_zero_shot_classifier(Alignment.load(digit_alignment), list(WORDS), ["{}"])
    np.testing.assert_allclose(w, zs.weights, atol=1e-6)


def test_templates_recorded_in_an_alignment_are_its_default(digit_alignment: Path) -> None:
    al = Alignment.load(digit_alignment)
    al.record["templates"] = ["{}"]
    zs = ZeroShotClassifier(list(WORDS), alignment=al, expand_labels=False)
    assert zs.templates == ["{}"]


def test_default_alignment_missing_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(default_module, "default_dir", lambda kind: tmp_path / kind)
    with pytest.raises(ConfigError, match="no default image-text alignment is installed"):
        load_default("image-text")
    with pytest.raises(ConfigError, match="no default audio-text alignment is installed"):
        ZeroShotClassifier(["a", "b"], modality=Modality.AUDIO)
    with pytest.raises(ConfigError, match="no default alignment pairs video"):
        ZeroShotClassifier(["a", "b"], modality=Modality.VIDEO)


def test_default_alignment_loads_from_package_data(
    monkeypatch: pytest.MonkeyPatch, digits: Digits, digit_alignment: Path
) -> None:
    monkeypatch.setattr(default_module, "default_dir", lambda kind: digit_alignment)
    zs = ZeroShotClassifier(list(WORDS), ["{}"])  # alignment=None means the default
    acc = np.mean(
        np.array(zs.predict(digits.pixels[N_TRAIN:])) == np.array(WORDS)[digits.labels[N_TRAIN:]]
    )
    assert acc > 0.6


def test_shipped_defaults_when_installed_sit_on_the_default_encoders() -> None:
    from polymodal.align.default import KINDS, is_installed

    for kind in KINDS:
        if not is_installed(kind):
            continue
        al = load_default(kind)
        media = Modality(kind.split("-")[0])
        assert al.sides[al.side_of(media)].modality == media
        assert al.sides[al.side_of(Modality.TEXT)].encoder == "minilm-l6"


@pytest.mark.real_weights
def test_shipped_image_alignment_mixes_conse_as_recorded() -> None:
    from polymodal.align.conse import ConSE
    from polymodal.align.default import is_installed

    if not is_installed("image-text"):
        pytest.skip("no shipped image-text alignment in this install")
    al = load_default("image-text")
    mix = al.conse_mix("image")
    assert mix is not None and 0 < mix["weight"] < 1
    assert al.conse_mix("text") is None
    pooled = np.random.default_rng(0).normal(0.2, 0.5, (4, al.a.width)).astype(np.float32)
    mixed = al.embed("image", pooled)
    al.use_conse = False
    trained = al.embed("image", pooled)
    conse = ConSE(templates=mix["conse_templates"], top_k=mix["conse_top_k"]).embed("a", pooled)
    expected = mix["weight"] * trained + (1 - mix["weight"]) * conse
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(mixed, expected, atol=1e-5)
    assert np.abs(mixed - trained).max() > 1e-2  # the mix really changes the vectors
    # Shipped prompts are generic: no data set's words in them.
    assert not any("clothing" in t for t in al.record["templates"])


def test_an_alignment_folder_missing_its_config_is_called_damaged(
    digit_alignment: Path, tmp_path: Path
) -> None:
    import shutil

    folder = Path(shutil.copytree(digit_alignment, tmp_path / "aligned"))
    (folder / "config.json").unlink()
    with pytest.raises(ConfigError, match="damaged polymodal alignment") as err:
        ZeroShotClassifier(list(WORDS), ["{}"], alignment=folder, expand_labels=False)
    assert "Hugging Face" not in str(err.value)

"""Saved alignments: identical after a round trip; encoders they were not trained on refused."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from polymodal.align.model import Alignment, Side, is_alignment_folder
from polymodal.align.train import train_alignment
from polymodal.cache.embed import ColumnEmbeddings
from polymodal.cache.store import EmbeddingCache
from polymodal.encoders.base import Encoder
from polymodal.errors import ConfigError, InputError
from polymodal.modality import Modality
from tests.align.conftest import WORDS, Digits


@pytest.fixture(scope="module")
def trained(digits: Digits) -> Alignment:
    al, _ = train_alignment(
        digits.pixels[:300],
        digits.words[:300],
        a_encoder=Side.unrecorded(64, modality=Modality.IMAGE),
        b_encoder=digits.text,
        lock="none",
        hidden=48,
        epochs=3,
        progress=False,
    )
    return al


def test_save_load_round_trip_gives_identical_embeddings(
    trained: Alignment, digits: Digits, tmp_path: Path
) -> None:
    trained.save(tmp_path / "al")
    assert is_alignment_folder(tmp_path / "al")
    loaded = Alignment.load(tmp_path / "al")
    for side, x in (("a", digits.pixels[:20]), ("b", digits.word_vectors)):
        np.testing.assert_array_equal(loaded.embed(side, x), trained.embed(side, x))
    assert loaded.logit_scale == trained.logit_scale
    assert loaded.b == trained.b and loaded.a == trained.a
    config = json.loads((tmp_path / "al" / "config.json").read_text())
    assert config["format"] == "polymodal-alignment" and config["format_version"] == 1
    assert config["sides"]["b"]["encoder"] == "minilm-l6"
    assert config["heads"]["a"]["hidden"] == 48
    assert {p.name for p in (tmp_path / "al").iterdir()} == {"config.json", "model.safetensors"}


def test_encode_values_equals_embedding_the_encoders_vectors(
    trained: Alignment, digits: Digits
) -> None:
    z = trained.encode_values("text", list(WORDS), cache=EmbeddingCache(None))
    np.testing.assert_allclose(z, trained.embed("b", digits.word_vectors), atol=1e-5)
    assert z.shape == (10, trained.dim)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    assert trained.side_of(Modality.TEXT) == "b"


def test_an_unrecorded_side_cannot_encode_values(trained: Alignment) -> None:
    with pytest.raises(ConfigError, match="does not record the encoder"):
        trained.encode_values("a", ["x.png"])


def _other(encoder: Encoder) -> Encoder:
    """The same network with changed preprocessing: its vectors are not the trained ones."""
    import copy

    other = copy.copy(encoder)
    other.info = replace(encoder.info, preprocess_version="other")
    return other


def test_refuses_to_load_onto_a_different_encoder(
    trained: Alignment, digits: Digits, tmp_path: Path
) -> None:
    trained.save(tmp_path / "al")
    Alignment.load(tmp_path / "al", encoders={"b": digits.text})  # the right one is accepted
    with pytest.raises(ConfigError, match="trained on encoder minilm-l6-tiny"):
        Alignment.load(tmp_path / "al", encoders={"b": _other(digits.text)})
    with pytest.raises(ConfigError, match="trained on encoder"):
        trained.encode_values("b", ["one"], encoder=_other(digits.text))
    col = ColumnEmbeddings("t", Modality.TEXT, "other@1+p1", digits.word_vectors, np.ones(10, bool))
    with pytest.raises(ConfigError, match="was embedded by other@1"):
        trained.embed("b", col)
    with pytest.raises(ConfigError, match=r"takes \(N, 64\)"):
        trained.embed("a", digits.word_vectors)


def test_absent_rows_and_bad_vectors_are_input_errors(trained: Alignment, digits: Digits) -> None:
    present = np.ones(10, bool)
    present[4] = False
    col = ColumnEmbeddings("t", Modality.TEXT, trained.b.cache_id, digits.word_vectors, present)
    with pytest.raises(InputError, match="row 4"):
        trained.embed("b", col)
    bad = digits.pixels[:3].copy()
    bad[1, 0] = np.nan
    with pytest.raises(InputError, match="row 1"):
        trained.embed("a", bad)
    with pytest.raises(InputError, match="row 1"):
        trained.encode_values("b", ["one", "  ", "two"])


def test_unreadable_or_foreign_folders_are_config_errors(
    trained: Alignment, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"no config\.json"):
        Alignment.load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clip"}))
    assert not is_alignment_folder(tmp_path)
    with pytest.raises(ConfigError, match="does not describe a polymodal alignment"):
        Alignment.load(tmp_path)
    folder = trained.save(tmp_path / "new")
    config = json.loads((folder / "config.json").read_text())
    config["format_version"] = 99
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="newer than this polymodal reads"):
        Alignment.load(folder)
    folder = trained.save(tmp_path / "trunc")
    (folder / "model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(ConfigError, match="cannot read alignment weights"):
        Alignment.load(folder)


def test_fine_tuned_encoder_round_trips_through_encode_values(
    digits: Digits, tmp_path: Path
) -> None:
    from polymodal.encoders.registry import build_encoder

    image = build_encoder("efficientnet-lite0", tiny=True)
    paths = []
    for i, px in enumerate(digits.pixels[:24]):
        big = np.kron(px.reshape(8, 8) / 16.0 * 255, np.ones((8, 8))).astype(np.uint8)
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(big).convert("RGB").save(paths[-1])
    items = [image.decode(str(p)) for p in paths]
    words = [digits.text.decode(WORDS[y]) for y in digits.labels[:24]]
    al, _ = train_alignment(
        items,
        words,
        a_encoder=image,
        b_encoder=digits.text,
        unfreeze_blocks=2,
        epochs=1,
        batch_size=12,
        val_fraction=0.0,
        progress=False,
    )
    with pytest.raises(ConfigError, match="fine-tuned"):
        al.embed("a", np.zeros((1, image.info.width), np.float32))
    before = al.encode_values("image", [str(p) for p in paths[:4]])
    al.save(tmp_path / "tuned")
    loaded = Alignment.load(tmp_path / "tuned")
    np.testing.assert_allclose(
        loaded.encode_values("image", [str(p) for p in paths[:4]]), before, atol=1e-6
    )
    # The fine-tuned network differs from the frozen one, so the saved weights matter.
    frozen = al.heads["a"](
        __import__("torch").from_numpy(np.stack([e.pooled for e in image.encode(items[:4])]))
    )
    assert not np.allclose(frozen.detach().numpy(), before, atol=1e-4)

"""Saved alignments: identical after a round trip; encoders they were not trained on refused."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from polymodal.align.model import Alignment, Side, has_alignment_weights, is_alignment_folder
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


def test_a_relative_encoder_folder_is_recorded_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from polymodal.align.zeroshot import two_tower_alignment
    from tests.encoders.test_huggingface import clip_folder

    clip = clip_folder(tmp_path / "tinyclip")
    monkeypatch.chdir(tmp_path)
    trained = two_tower_alignment("./tinyclip", Modality.IMAGE)
    trained.save("al")
    z = trained.encode_values("text", ["a cat"], cache=EmbeddingCache(None))
    config = json.loads((tmp_path / "al" / "config.json").read_text())
    assert config["sides"]["a"]["encoder"] == str(clip.resolve())
    assert config["sides"]["b"]["encoder"] == str(clip.resolve())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # "tinyclip" names nothing here
    loaded = Alignment.load(tmp_path / "al")
    image = loaded.a.build_encoder()  # the same weights, found by their absolute folder
    np.testing.assert_allclose(
        loaded.encode_values("text", ["a cat"], cache=EmbeddingCache(None)), z, atol=1e-6
    )
    with pytest.raises(ConfigError, match="trained on encoder"):
        loaded.b.check(image)  # the other tower of the same folder is still refused


def test_a_kill_while_writing_the_config_leaves_the_old_alignment_whole(
    trained: Alignment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = trained.save(tmp_path / "al")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    other = Alignment.load(folder)
    with torch.no_grad():
        for p in other.heads.parameters():
            p.add_(1.0)  # other weights: a mix would show
    other.record["epoch"] = 7
    real_open = Path.open

    def killed(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "w" in mode and "config.json" in self.name:
            raise KeyboardInterrupt("killed while writing config.json")
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", killed)
    with pytest.raises(KeyboardInterrupt):
        other.save(folder)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["al"]  # no temporary folder left
    other.save(folder)  # and a save that finishes replaces both files
    assert Alignment.load(folder).record["epoch"] == 7
    assert [p.name for p in tmp_path.iterdir()] == ["al"]


def test_save_refuses_a_file_or_a_foreign_folder(trained: Alignment, tmp_path: Path) -> None:
    (tmp_path / "out").write_text("notes")
    with pytest.raises(ConfigError, match=r"out is a file"):
        trained.save(tmp_path / "out")
    foreign = tmp_path / "project"
    foreign.mkdir()
    (foreign / "data.csv").write_text("a,b\n")
    with pytest.raises(ConfigError, match="is not a saved alignment"):
        trained.save(foreign)
    assert [p.name for p in foreign.iterdir()] == ["data.csv"]
    (tmp_path / "empty").mkdir()
    assert is_alignment_folder(trained.save(tmp_path / "empty"))


def test_weights_that_do_not_fit_the_config_say_how(trained: Alignment, tmp_path: Path) -> None:
    folder = trained.save(tmp_path / "al")
    config = json.loads((folder / "config.json").read_text())
    config["heads"]["a"]["hidden"] = 40
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"does not match its config: size mismatch for .*48"):
        Alignment.load(folder)


def test_alignment_weights_without_their_config_are_a_damaged_alignment(
    trained: Alignment, tmp_path: Path
) -> None:
    folder = trained.save(tmp_path / "al")
    (folder / "config.json").unlink()
    assert not is_alignment_folder(folder) and has_alignment_weights(folder)
    with pytest.raises(ConfigError, match=r"damaged polymodal alignment.*config\.json is missing"):
        Alignment.load(folder)
    assert not has_alignment_weights(tmp_path)

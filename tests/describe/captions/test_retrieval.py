"""Retrieval captions over a small bank in a hand-made aligned space; the bank on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from polymodal.align.heads import ProjectionHead
from polymodal.align.model import Alignment, Side
from polymodal.describe.captions.bank import CaptionBank, alignment_fingerprint, caption_hubness
from polymodal.describe.captions.retrieval import RetrievalCaptioner
from polymodal.errors import ConfigError, InputError
from polymodal.modality import Modality

TEXTS = ["a red car", "a red truck", "a red bus", "a blue bird"]


def unit(x: list[float]) -> np.ndarray:
    v = np.asarray(x, dtype=np.float32)
    return v / np.linalg.norm(v)


VECTORS = np.stack(
    [unit([1, 0, 0, 0]), unit([0.9, 0.436, 0, 0]), unit([0.9, -0.436, 0, 0]), unit([0, 0, 0, 1])]
)


def identity_alignment(width: int = 4) -> Alignment:
    """Image vectors of ``width`` -> 4-d (identity when width is 4); text side locked."""
    image = Side.unrecorded(width, modality=Modality.IMAGE)
    text = Side.unrecorded(4, modality=Modality.TEXT)
    head = ProjectionHead(width, 4, lock=width == 4)
    return Alignment(image, text, head, ProjectionHead(4, 4, lock=True))


def bank_for(alignment: Alignment) -> CaptionBank:
    return CaptionBank(TEXTS, VECTORS, alignment=alignment_fingerprint(alignment))


def test_top_and_consensus() -> None:
    alignment = identity_alignment()
    z = unit([0.7, 0, 0, 0.72])[None]  # nearest: the bird; but three vehicles agree nearby
    top = RetrievalCaptioner(bank_for(alignment), alignment, combine="top")
    assert top.caption_vectors(z) == ["a blue bird"]
    assert [t for t, _ in top.nearest(z, k=2)[0]] == ["a blue bird", "a red car"]
    consensus = RetrievalCaptioner(bank_for(alignment), alignment, combine="consensus", k=4)
    assert consensus.caption_vectors(z) == ["a red car"]
    # With one neighbour, consensus is the nearest caption.
    one = RetrievalCaptioner(bank_for(alignment), alignment, combine="consensus", k=1)
    assert one.caption_vectors(z) == ["a blue bird"]
    alone = unit([0, 0, 0.1, 1])[None]
    assert consensus.caption_vectors(alone) == ["a blue bird"]


def test_bad_settings_are_config_errors() -> None:
    alignment = identity_alignment()
    with pytest.raises(ConfigError, match="combine"):
        RetrievalCaptioner(bank_for(alignment), alignment, combine="vote")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="k must be"):
        RetrievalCaptioner(bank_for(alignment), alignment, k=0)


def test_bank_refuses_another_alignment(tmp_path: Path) -> None:
    alignment = identity_alignment()
    bank = bank_for(alignment)
    other = identity_alignment(width=8)
    with pytest.raises(ConfigError, match="rebuild"):
        RetrievalCaptioner(bank, other)


def test_bank_round_trip(tmp_path: Path) -> None:
    alignment = identity_alignment()
    bank_for(alignment).save(tmp_path / "bank")
    loaded = CaptionBank.load(tmp_path / "bank")
    assert loaded.texts == TEXTS and loaded.vectors.dtype == np.float16
    assert np.allclose(loaded.vectors, VECTORS, atol=1e-3)
    loaded.check(alignment)
    with pytest.raises(ConfigError, match="not a saved caption bank"):
        CaptionBank.load(tmp_path)
    (tmp_path / "bank" / "vectors.safetensors").write_bytes(b"broken")
    with pytest.raises(ConfigError, match="cannot read bank vectors"):
        CaptionBank.load(tmp_path / "bank")


def test_captions_of_files_are_bank_texts(tmp_path: Path) -> None:
    from polymodal.encoders.registry import build_encoder

    torch.manual_seed(0)
    encoder = build_encoder("efficientnet-lite0", tiny=True)
    alignment = identity_alignment(width=encoder.info.width)
    captioner = RetrievalCaptioner(bank_for(alignment), alignment, encoder=encoder)
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(np.full((24, 24, 3), 80 * i, np.uint8)).save(paths[-1])
    got = captioner.caption(paths)
    assert len(got) == 3 and set(got) <= set(TEXTS)
    assert captioner.caption([]) == []
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(InputError) as err:
        captioner.caption([paths[0], bad])
    assert err.value.path == str(bad) and err.value.row == 1


def test_hubness_is_the_mean_of_the_k_nearest_images() -> None:
    captions = np.array([[1.0, 0.0], [0.0, 1.0]])
    images = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    assert caption_hubness(captions, images, k=2).tolist() == pytest.approx([0.8, 0.9])
    assert caption_hubness(captions, images, k=10).tolist() == pytest.approx([1.6 / 3, 1.8 / 3])


def test_hubness_penalty_moves_retrieval_off_a_hub(tmp_path: Path) -> None:
    alignment = identity_alignment()
    hubness = np.array([0.0, 0.0, 0.0, 0.5])  # the bird is near every image
    bank = CaptionBank(TEXTS, VECTORS, alignment=alignment_fingerprint(alignment), hubness=hubness)
    bank.save(tmp_path / "bank")
    loaded = CaptionBank.load(tmp_path / "bank")
    assert loaded.hubness is not None and loaded.hubness.tolist() == [0.0, 0.0, 0.0, 0.5]
    z = unit([0.7, 0, 0, 0.72])[None]
    assert RetrievalCaptioner(loaded, alignment, combine="top").caption_vectors(z) == ["a red car"]
    plain = RetrievalCaptioner(loaded, alignment, combine="top", hub_weight=0.0)
    assert plain.caption_vectors(z) == ["a blue bird"]
    with pytest.raises(ValueError, match="hubness"):
        CaptionBank(TEXTS, VECTORS, alignment="x", hubness=np.zeros(3))

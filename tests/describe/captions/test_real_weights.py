"""The shipped caption bank and decoder on a real Tux Paint stamp (values recorded once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from polymodal.describe.captions import DEFAULT, build_captioner, weights_dir

FROG = Path("/usr/share/tuxpaint/stamps/animals/amphibians/frog.png")  # "A frog"

pytestmark = pytest.mark.real_weights


@pytest.fixture(scope="module")
def encoder() -> object:
    if not FROG.is_file():
        pytest.skip(f"{FROG} is absent: apt-get install tuxpaint-stamps-default")
    if not (weights_dir("caption-bank") / "bank.json").is_file():
        pytest.skip("no caption bank shipped: run scripts/train_caption_decoder.py")
    from polymodal.encoders.image_efficientnet import efficientnet_lite0

    # Eager torch: a one-image test should not pay for an ONNX export into a fresh home.
    return efficientnet_lite0(use_onnx=False)


def test_retrieval_caption_of_a_frog(encoder: object) -> None:
    captioner = build_captioner("retrieval", encoder=encoder)  # type: ignore[arg-type]
    assert captioner.info.kind == "retrieval"
    (caption,) = captioner.caption([FROG])
    assert caption in captioner.bank.texts  # type: ignore[attr-defined]
    assert "frog" in caption.lower()


def test_decoder_caption_of_a_frog(encoder: object) -> None:
    captioner = build_captioner("decoder", encoder=encoder)  # type: ignore[arg-type]
    assert captioner.info.kind == "decoder"
    (caption,) = captioner.caption([FROG])
    assert "frog" in caption.lower()


def test_default_captions_a_frog(encoder: object) -> None:
    assert DEFAULT in ("retrieval", "decoder", "hybrid")
    captioner = build_captioner("default", encoder=encoder)  # type: ignore[arg-type]
    assert captioner.info.kind == DEFAULT
    (caption,) = captioner.caption([FROG])
    assert "frog" in caption.lower()

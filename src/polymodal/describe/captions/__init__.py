"""Image captions: retrieval from a caption bank, a small trained decoder, or a HF checkpoint.

    from polymodal.describe.captions import build_captioner
    captioner = build_captioner()              # the shipped default (see DEFAULT)
    captioner.caption(["cat.png"])             # -> ["A cat"]

``build_captioner`` takes ``"default"``, ``"retrieval"`` (nearest captions of the shipped bank
in the default image-text alignment's space), ``"decoder"`` (the caption decoder trained by
``scripts/train_caption_decoder.py``), ``"hybrid"`` (the decoder's caption unless the retrieved
one fits the image clearly better in the aligned space), a folder (a saved polymodal caption
decoder, or a Hugging Face VisionEncoderDecoder / BLIP / GIT checkpoint) or a hub id (from the
local Hugging Face cache; downloaded only when ``POLYMODAL_ALLOW_DOWNLOAD=1``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from polymodal.describe.captions.base import Captioner, CaptionerInfo
from polymodal.errors import ConfigError

if TYPE_CHECKING:
    from polymodal.describe.captions.decoder import DecoderCaptioner
    from polymodal.describe.captions.hybrid import HybridCaptioner
    from polymodal.describe.captions.retrieval import Combine, RetrievalCaptioner
    from polymodal.encoders.base import Encoder

__all__ = [
    "DEFAULT",
    "Captioner",
    "CaptionerInfo",
    "build_captioner",
    "decoder_captioner",
    "hybrid_captioner",
    "retrieval_captioner",
    "weights_dir",
]

# benchmarks/describe_captions.py (BENCHMARKS.md, "Captions"): on held-out drawings the hybrid
# scores within noise of the decoder (CIDEr-D 0.64 vs 0.67) and above retrieval (0.58); on real
# clothing photos it names the garment as often as retrieval (60% vs 56%), the decoder 18%.
DEFAULT = "hybrid"
BUILT_IN = ("default", "retrieval", "decoder", "hybrid")
HYBRID_MARGIN = 0.05  # chosen on validation by benchmarks/describe_captions.py


def weights_dir(kind: str) -> Path:
    """Where a shipped caption part lives: ``caption-bank`` or ``caption-decoder``."""
    return Path(str(resources.files("polymodal.describe").joinpath("weights", kind)))


def retrieval_captioner(
    *,
    encoder: Encoder | None = None,
    combine: Combine = "consensus",
    k: int = 20,
    bank: str | Path | None = None,
) -> RetrievalCaptioner:
    """Nearest captions of the shipped bank (or the bank folder ``bank``) under the default
    image-text alignment; ``encoder`` shares an already built default image encoder. Consensus
    over the 20 nearest was the best setting on validation (benchmarks/describe_captions.py)."""
    from polymodal.align.default import load_default
    from polymodal.describe.captions.bank import CaptionBank
    from polymodal.describe.captions.retrieval import RetrievalCaptioner

    folder = Path(bank) if bank is not None else weights_dir("caption-bank")
    return RetrievalCaptioner(
        CaptionBank.load(folder), load_default("image-text"), encoder=encoder, combine=combine, k=k
    )


def decoder_captioner(
    folder: str | Path | None = None, *, encoder: Encoder | None = None
) -> DecoderCaptioner:
    """The shipped caption decoder, or a decoder folder saved by the training script."""
    from polymodal.describe.captions.decoder import DecoderCaptioner

    root = Path(folder) if folder is not None else weights_dir("caption-decoder")
    return DecoderCaptioner.load(root, encoder=encoder, name=str(folder or "decoder"))


def hybrid_captioner(
    *, encoder: Encoder | None = None, margin: float = HYBRID_MARGIN
) -> HybridCaptioner:
    """The shipped decoder and retrieval captioners, choosing per image (see ``hybrid``)."""
    from polymodal.describe.captions.hybrid import HybridCaptioner

    decoder = decoder_captioner(encoder=encoder)
    retrieval = retrieval_captioner(encoder=decoder.encoder)
    return HybridCaptioner(retrieval, decoder, margin=margin)


def build_captioner(name: str | Path = "default", *, encoder: Encoder | None = None) -> Captioner:
    """A captioner by name, folder or hub id (see the module docstring).

    ``encoder`` is the default image encoder, already built, for the built-in captioners to
    share (the Describer passes its own); Hugging Face checkpoints bring their own.
    """
    key = str(name)
    if key == "default":
        key = DEFAULT
    if key == "retrieval":
        return retrieval_captioner(encoder=encoder)
    if key == "decoder":
        return decoder_captioner(encoder=encoder)
    if key == "hybrid":
        return hybrid_captioner(encoder=encoder)
    from polymodal.describe.captions.decoder import is_decoder_folder
    from polymodal.describe.captions.hf import HFCaptioner

    folder = Path(key).expanduser()
    if folder.is_dir():
        if is_decoder_folder(folder):
            return decoder_captioner(folder, encoder=encoder)
        return HFCaptioner(folder, name=key)
    if "/" not in key:
        raise ConfigError(
            f"unknown captioner {key!r}: use {', '.join(map(repr, BUILT_IN))}, a checkpoint "
            "folder, or a Hugging Face hub id (org/name)"
        )
    from polymodal.encoders.huggingface import resolve_hub

    return HFCaptioner(resolve_hub(key.removeprefix("hf-hub:")), name=key)

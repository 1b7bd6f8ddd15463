"""The alignments shipped inside the package: image-text and audio-text.

They live in ``polymodal/align/weights/<kind>/`` (``config.json`` + ``model.safetensors``) and
are trained by ``scripts/train_default_alignment.py`` on real pairs available offline.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from polymodal.align.model import CONFIG_FILE, WEIGHTS_FILE, Alignment
from polymodal.errors import ConfigError
from polymodal.modality import Modality

KINDS = ("image-text", "audio-text")


def default_kind(modality: Modality | str) -> str:
    """The shipped alignment that pairs ``modality`` with text."""
    kind = f"{Modality(modality)}-text"
    if kind not in KINDS:
        raise ConfigError(
            f"no default alignment pairs {modality} with text (there are: {', '.join(KINDS)})"
        )
    return kind


def default_dir(kind: str) -> Path:
    """The folder a shipped alignment lives in (it may not be installed)."""
    if kind not in KINDS:
        raise ConfigError(f"unknown default alignment {kind!r}: use one of {', '.join(KINDS)}")
    return Path(str(resources.files("polymodal.align").joinpath("weights", kind)))


def is_installed(kind: str) -> bool:
    folder = default_dir(kind)
    return (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file()


def load_default(kind: str = "image-text") -> Alignment:
    """Load a shipped alignment; a clear ConfigError when none is installed."""
    if not is_installed(kind):
        raise ConfigError(
            f"no default {kind} alignment is installed in this polymodal "
            f"({default_dir(kind)} is missing). Train one with "
            "`python scripts/train_default_alignment.py`, or pass your own alignment folder "
            "(from `polymodal align`) or a CLIP checkpoint folder"
        )
    return Alignment.load(default_dir(kind))

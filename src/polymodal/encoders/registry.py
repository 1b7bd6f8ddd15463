"""Named encoder builders, and the one function that turns a name or a folder into an encoder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from polymodal.encoders.base import Encoder
from polymodal.errors import ConfigError
from polymodal.modality import Modality

Builder = Callable[..., Encoder]


@dataclass(frozen=True)
class RegisteredEncoder:
    """A builder registered under a name. ``builder(tiny=True)`` gives a random tiny version."""

    name: str
    modality: Modality
    builder: Builder
    default: bool
    licence: str
    description: str
    package: str  # the pip package that ships the weights


_REGISTRY: dict[str, RegisteredEncoder] = {}


def register_encoder(
    name: str,
    *,
    modality: Modality,
    licence: str,
    description: str,
    package: str,
    default: bool = False,
) -> Callable[[Builder], Builder]:
    """Register ``builder`` under ``name``; it must accept ``tiny: bool = False``."""

    def wrap(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"encoder {name!r} registered twice")
        _REGISTRY[name] = RegisteredEncoder(
            name, modality, builder, default, licence, description, package
        )
        return builder

    return wrap


def _load_builtin() -> None:
    # Importing the modules runs their @register_encoder decorators.
    from polymodal.encoders import (  # noqa: F401
        audio_whisper,
        image_efficientnet,
        text_minilm,
        video_frames,
    )


def registered_encoders() -> list[RegisteredEncoder]:
    """Every registered encoder, defaults first."""
    _load_builtin()
    return sorted(_REGISTRY.values(), key=lambda r: (not r.default, r.modality, r.name))


def default_encoder_name(modality: Modality) -> str:
    """The name of the default encoder for ``modality``."""
    for reg in registered_encoders():
        if reg.default and reg.modality == modality:
            return reg.name
    raise ConfigError(f"no default encoder for modality {modality!s}")


def build_encoder(
    name: str | Path, *, modality: Modality | None = None, tiny: bool = False
) -> Encoder:
    """Build an encoder from a registered name, a local folder or a Hugging Face hub id.

    Registered names need no network. A folder is loaded with no network. A hub id is resolved
    through the local Hugging Face cache only, unless the user has allowed downloads; a clear error
    says what to do when it is not there.
    """
    _load_builtin()
    key = str(name)
    if key in _REGISTRY:
        reg = _REGISTRY[key]
        if modality is not None and reg.modality != modality:
            raise ConfigError(f"encoder {key!r} encodes {reg.modality}, not {modality}")
        return reg.builder(tiny=tiny)
    from polymodal.encoders import huggingface

    if Path(key).expanduser().is_dir():
        return huggingface.from_folder(Path(key).expanduser(), modality=modality)
    if "/" in key or key.count("-") >= 1:
        return huggingface.from_hub(key, modality=modality)
    known = ", ".join(sorted(_REGISTRY))
    raise ConfigError(
        f"unknown encoder {key!r}: not a registered name ({known}), a local folder, or a hub id"
    )

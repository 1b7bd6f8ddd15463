"""Parsing of the options several verbs share."""

from __future__ import annotations

from polymodal.errors import ConfigError
from polymodal.modality import Modality


def parse_assignments(items: list[str] | None, what: str) -> dict[str, str]:
    """Turn ``["photo=image", "zip=categorical"]`` into a dict, with a clear error on bad syntax."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ConfigError(f"{what} must look like NAME=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def parse_modalities(items: list[str] | None) -> dict[str, Modality]:
    """``--column NAME=MODALITY`` overrides."""
    out = {}
    for name, value in parse_assignments(items, "--column").items():
        try:
            out[name] = Modality(value.lower())
        except ValueError:
            choices = ", ".join(m.value for m in Modality)
            raise ConfigError(
                f"--column {name}={value}: unknown modality; use one of {choices}"
            ) from None
    return out


def parse_encoders(items: list[str] | None) -> dict[Modality, str]:
    """``--encoder MODALITY=NAME_OR_FOLDER`` choices."""
    out = {}
    for key, value in parse_assignments(items, "--encoder").items():
        try:
            out[Modality(key.lower())] = value
        except ValueError:
            raise ConfigError(f"--encoder {key}={value}: {key!r} is not a modality") from None
    return out

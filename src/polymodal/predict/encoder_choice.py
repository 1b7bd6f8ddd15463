"""Which encoder embeds each modality: chosen at fit time, recorded in a saved model, and rebuilt
offline (and checked to embed the same way) when the model is loaded."""

from __future__ import annotations

from collections.abc import Mapping

from polymodal.data.schema import Schema
from polymodal.encoders.base import Encoder
from polymodal.errors import ConfigError
from polymodal.modality import Modality


def resolve_encoders(
    schema: Schema, given: Mapping[str, str | Encoder] | None
) -> dict[Modality, Encoder]:
    """One encoder per text/media modality of ``schema``: the one ``given`` for it (a name,
    folder or :class:`Encoder`), else the registry's default."""
    from polymodal.encoders.registry import build_encoder, default_encoder_name

    chosen: dict[Modality, str | Encoder] = {}
    for key, choice in (given or {}).items():
        try:
            chosen[Modality(str(key).lower())] = choice
        except ValueError:
            names = ", ".join(m.value for m in Modality if not m.is_tabular)
            raise ConfigError(f"encoders: {key!r} is not a modality; use {names}") from None
    out: dict[Modality, Encoder] = {}
    for modality in schema.modalities:
        if modality.is_tabular:
            continue
        choice = chosen.get(modality) or default_encoder_name(modality)
        encoder = (
            choice if isinstance(choice, Encoder) else build_encoder(choice, modality=modality)
        )
        if encoder.info.modality != modality:
            raise ConfigError(
                f"encoder {encoder.info.name!r} encodes {encoder.info.modality}, not {modality}"
            )
        out[modality] = encoder
    return out


def encoder_entry(encoder: Encoder) -> dict[str, str]:
    """What a saved model records about an encoder, enough to rebuild and check it."""
    info = encoder.info
    return {
        "name": info.name,
        "cache_id": info.cache_id,
        "source": info.source.kind,
        "location": info.source.location,
    }


def rebuild_encoder(entry: Mapping[str, str], given: Mapping[str, str | Encoder] | None) -> Encoder:
    """Build the encoder a saved model was trained with, and check it still embeds the same way."""
    from polymodal.encoders.registry import build_encoder, registered_encoders

    for value in (given or {}).values():
        if isinstance(value, Encoder) and value.info.cache_id == entry["cache_id"]:
            return value
    registered = {r.name for r in registered_encoders()}
    name = entry["name"]
    if name in registered:
        encoder = build_encoder(name)
    elif entry["source"] == "random" and name.removesuffix("-tiny") in registered:
        encoder = build_encoder(name.removesuffix("-tiny"), tiny=True)
    elif entry["source"] in ("folder", "hub"):
        encoder = build_encoder(entry["location"])
    else:
        raise ConfigError(
            f"cannot rebuild encoder {name!r} ({entry['source']}: {entry['location']})"
        )
    if encoder.info.cache_id != entry["cache_id"]:
        raise ConfigError(
            f"encoder {name!r} is not the one this model was trained with (its embeddings id "
            f"is {encoder.info.cache_id}, the model expects {entry['cache_id']})"
        )
    return encoder

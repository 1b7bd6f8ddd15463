"""A caption bank: real captions and their unit vectors in an image-text aligned space.

Saved as a folder: ``bank.json`` (format, the captions, the alignment they were embedded by,
where they came from) and ``vectors.safetensors`` (float16 unit vectors, one row per caption,
and optionally each caption's *hubness*). The vectors only mean something in the space of the
alignment that made them, so the bank records a fingerprint of that alignment's heads and
refuses any other.

Hubness: in a trained space a few captions (short names, here) lie close to very many images
and would be everyone's nearest caption. A caption's hubness is its mean cosine similarity to
its ``hub_k`` nearest training images; retrieval subtracts it (the text half of CSLS, Conneau
et al. 2018, "Word translation without parallel data").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from polymodal.atomic import atomic_output, atomic_write_bytes
from polymodal.errors import ConfigError
from polymodal.formats import read_format_config
from polymodal.modality import Modality

if TYPE_CHECKING:
    from polymodal.align.model import Alignment

FORMAT = "polymodal-caption-bank"
FORMAT_VERSION = 1
CONFIG_FILE = "bank.json"
VECTORS_FILE = "vectors.safetensors"


def alignment_fingerprint(alignment: Alignment) -> str:
    """A short hash of an alignment's head weights, its text encoder and its recorded ConSE mix
    (the mix moves the image vectors, so the captions' hubness with them)."""
    h = hashlib.sha256(alignment.sides[alignment.side_of(Modality.TEXT)].cache_id.encode())
    mix = alignment.record.get("combine_with_conse")
    h.update(json.dumps(mix, sort_keys=True).encode())
    for name, tensor in sorted(alignment.heads.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class CaptionBank:
    """Captions (``texts``) with their unit vectors (``vectors``, (N, dim) float16)."""

    def __init__(
        self,
        texts: Sequence[str],
        vectors: np.ndarray,
        *,
        alignment: str,
        hubness: np.ndarray | None = None,
        record: Mapping[str, Any] | None = None,
    ) -> None:
        if len(texts) != len(vectors) or vectors.ndim != 2:
            raise ValueError(f"{len(texts)} captions but vectors of shape {vectors.shape}")
        if hubness is not None and np.shape(hubness) != (len(texts),):
            raise ValueError(f"{len(texts)} captions but hubness of shape {np.shape(hubness)}")
        if not texts:
            raise ValueError("a caption bank needs at least one caption")
        self.texts = list(texts)
        self.vectors = np.asarray(vectors, dtype=np.float16)
        self.alignment = alignment
        self.hubness = None if hubness is None else np.asarray(hubness, dtype=np.float16)
        self.record: dict[str, Any] = dict(record or {})

    def __len__(self) -> int:
        return len(self.texts)

    @classmethod
    def build(
        cls,
        texts: Sequence[str],
        alignment: Alignment,
        *,
        images: np.ndarray | None = None,
        hub_k: int = 50,
        record: Mapping[str, Any] | None = None,
    ) -> CaptionBank:
        """Embed ``texts`` (deduplicated, order kept) through the alignment's text side; with
        ``images`` (aligned unit vectors of training images) also each caption's hubness."""
        unique = list(dict.fromkeys(t.strip() for t in texts if t and t.strip()))
        z = alignment.encode_values(alignment.side_of(Modality.TEXT), unique)
        hubness = None if images is None else caption_hubness(z, images, k=hub_k)
        return cls(
            unique, z, alignment=alignment_fingerprint(alignment), hubness=hubness, record=record
        )

    def check(self, alignment: Alignment) -> None:
        """Raise ConfigError unless the bank was embedded by ``alignment``."""
        found = alignment_fingerprint(alignment)
        if found != self.alignment:
            raise ConfigError(
                f"this caption bank was embedded by alignment {self.alignment}, not {found}: "
                "rebuild it for this alignment (scripts/train_caption_decoder.py --bank-only)"
            )

    def save(self, folder: str | Path) -> Path:
        """Write ``bank.json`` and ``vectors.safetensors`` (each atomically)."""
        from safetensors.numpy import save_file

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {"vectors": np.ascontiguousarray(self.vectors)}
        if self.hubness is not None:
            tensors["hubness"] = self.hubness
        with atomic_output(out / VECTORS_FILE) as tmp:
            save_file(tensors, str(tmp))
        config = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "alignment": self.alignment,
            "dim": int(self.vectors.shape[1]),
            "record": self.record,
            "texts": self.texts,
        }
        atomic_write_bytes(out / CONFIG_FILE, (json.dumps(config, indent=1) + "\n").encode())
        return out

    @classmethod
    def load(cls, folder: str | Path) -> CaptionBank:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        root = Path(folder).expanduser()
        config = read_format_config(
            root, CONFIG_FILE, fmt=FORMAT, version=FORMAT_VERSION, what="caption bank"
        )
        try:
            tensors = load_file(str(root / VECTORS_FILE))
            vectors = tensors["vectors"]
        except (OSError, SafetensorError, KeyError) as err:
            raise ConfigError(f"{root / VECTORS_FILE}: cannot read bank vectors: {err}") from None
        try:
            return cls(
                config["texts"],
                vectors,
                alignment=config["alignment"],
                hubness=tensors.get("hubness"),
                record=config["record"],
            )
        except ValueError as err:
            raise ConfigError(f"{root}: {err}") from None


def caption_hubness(captions: np.ndarray, images: np.ndarray, *, k: int = 50) -> np.ndarray:
    """Each caption's mean cosine similarity to its ``k`` nearest images (unit vectors)."""
    captions = np.asarray(captions, dtype=np.float32)
    images = np.asarray(images, dtype=np.float32)
    k = min(k, len(images))
    if k < 1:
        raise ValueError("hubness needs at least one image")
    out = np.empty(len(captions), dtype=np.float32)
    for start in range(0, len(captions), 1024):  # (1024, n_images) at a time: bounded memory
        sims = captions[start : start + 1024] @ images.T
        out[start : start + 1024] = np.partition(sims, -k, axis=1)[:, -k:].mean(axis=1)
    return out

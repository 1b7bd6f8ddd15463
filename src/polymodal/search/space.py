"""A search space: one alignment that maps a media modality and text into one vector space.

The image-text space holds images, videos (the mean of their frames' image vectors) and text
files (text side); the audio-text space holds audio files, videos' sound tracks and text files.
Vectors are what the alignment's ``embed`` gives: the shipped image-text alignment mixes its
trained head 0.5/0.5 with ConSE itself, which on clothing *train* retrieved far better by text
than the trained head alone (P@10 0.67 vs 0.44; ``benchmarks/search_clothing.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from polymodal.errors import ConfigError, InputError
from polymodal.modality import Modality

if TYPE_CHECKING:
    from polymodal.align.model import Alignment
    from polymodal.cache.store import EmbeddingCache
    from polymodal.encoders.base import Encoder

DEFAULT_SPACES = ("image-text", "audio-text")
TEXT_FILE_MAX_BYTES = 1 << 20  # a text file's first MiB is embedded (the encoder reads less)


@dataclass
class Embedded:
    """Vectors for the items that embedded, by input position; the rest with their reasons."""

    vectors: np.ndarray  # (len(ok), dim)
    ok: list[int]
    failed: list[tuple[int, str]]


class Space:
    """One alignment as a search space: embeds files and queries into unit vectors."""

    def __init__(
        self,
        name: str,
        alignment: Alignment,
        *,
        source: str = "default",
        cache: EmbeddingCache | None = None,
    ) -> None:
        self.name = name
        self.alignment = alignment
        self.source = source
        self.cache = cache
        self.text_side = alignment.side_of(Modality.TEXT)
        media = [s for s in ("a", "b") if s != self.text_side]
        self.media_side = media[0]
        media_modality = alignment.sides[self.media_side].modality
        if media_modality not in (Modality.IMAGE, Modality.AUDIO):
            raise ConfigError(
                f"space {name}: its alignment pairs text with {media_modality}; "
                "a search space pairs text with image or audio"
            )
        self.media: Modality = media_modality
        self._encoders: dict[Modality, Encoder] = {}

    # ------------------------------------------------------------------ identity
    @property
    def modalities(self) -> frozenset[Modality]:
        """The file modalities this space holds."""
        return frozenset({self.media, Modality.VIDEO, Modality.TEXT})

    @property
    def dim(self) -> int:
        return self.alignment.dim

    @cached_property
    def space_id(self) -> str:
        """Changes whenever the vectors would: heads, encoders, or the recorded ConSE mix."""
        h = hashlib.sha256()
        h.update(json.dumps(self.alignment.config(), sort_keys=True, default=str).encode())
        for name, tensor in sorted(self.alignment.heads.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().numpy().tobytes())
        h.update(f"conse={self.alignment.conse_mix(self.media_side)}".encode())
        return h.hexdigest()[:16]

    # ------------------------------------------------------------------ encoders
    def encoder(self, modality: Modality) -> Encoder:
        """The encoder for files of ``modality`` (video: frames through the image encoder)."""
        if modality not in self._encoders:
            self._encoders[modality] = self._build_encoder(modality)
        return self._encoders[modality]

    def _build_encoder(self, modality: Modality) -> Encoder:
        if modality == Modality.TEXT:
            return self.alignment.sides[self.text_side].build_encoder()
        if modality == self.media:
            return self.alignment.sides[self.media_side].build_encoder()
        if modality == Modality.VIDEO and self.media == Modality.IMAGE:
            from polymodal.encoders.video_frames import FrameVideoEncoder

            return FrameVideoEncoder(self.encoder(Modality.IMAGE))
        if modality == Modality.VIDEO and self.media == Modality.AUDIO:
            return self.encoder(Modality.AUDIO)  # the audio reader takes a video's sound track
        raise ConfigError(f"space {self.name} holds no {modality} files")

    # ------------------------------------------------------------------ embedding
    def embed_files(self, paths: Sequence[Path], modality: Modality) -> Embedded:
        """Embed files of one modality; unreadable files are returned with their reason."""
        if modality == Modality.TEXT:
            texts: list[str] = []
            ok_read: list[int] = []
            failed: list[tuple[int, str]] = []
            for i, path in enumerate(paths):
                try:
                    texts.append(read_text_file(path))
                    ok_read.append(i)
                except InputError as err:
                    failed.append((i, err.problem))
            inner = self._embed_values(texts, Modality.TEXT)
            return Embedded(
                inner.vectors,
                [ok_read[i] for i in inner.ok],
                sorted(failed + [(ok_read[i], r) for i, r in inner.failed]),
            )
        return self._embed_values([str(p) for p in paths], modality)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of query texts; InputError for an empty one."""
        out = self._embed_values(list(texts), Modality.TEXT)
        if out.failed:
            raise InputError(f"text query unusable: {out.failed[0][1]}")
        return out.vectors

    def _embed_values(self, values: list[str], modality: Modality) -> Embedded:
        from polymodal.align.model import embed_values

        dim = self.dim
        if not values:
            return Embedded(np.zeros((0, dim), np.float32), [], [])
        encoder = self.encoder(modality)
        col, report = embed_values(encoder, values, cache=self.cache, progress=False)
        failed = {s.row: s.problem for s in report.skipped}
        for row in np.flatnonzero(~col.present):
            failed.setdefault(int(row), "empty")
        ok = [i for i in range(len(values)) if i not in failed]
        pooled = col.pooled[ok]
        return Embedded(self._project(pooled, modality), ok, sorted(failed.items()))

    def _project(self, pooled: np.ndarray, modality: Modality) -> np.ndarray:
        """Encoder vectors -> this space's unit vectors."""
        side = self.text_side if modality == Modality.TEXT else self.media_side
        if pooled.shape[0] == 0:
            return np.zeros((0, self.dim), np.float32)
        return self.alignment.embed(side, pooled).astype(np.float32)


def read_text_file(path: Path) -> str:
    """A text file's content (its first MiB), as UTF-8; InputError when it is not text."""
    try:
        with open(path, "rb") as f:
            data = f.read(TEXT_FILE_MAX_BYTES)
    except OSError as err:
        raise InputError(f"cannot read: {err.strerror}", path=path) from None
    if b"\x00" in data:
        raise InputError("not a text file (it holds NUL bytes)", path=path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        if len(data) == TEXT_FILE_MAX_BYTES and err.start >= len(data) - 3:
            text = data[: err.start].decode("utf-8")  # a character cut by the size limit
        else:
            raise InputError(f"not UTF-8 text (byte {err.start})", path=path) from None
    if not text.strip():
        raise InputError("empty text file", path=path)
    return text


def load_space(
    name: str, alignment: str | Path | None, *, cache: EmbeddingCache | None = None
) -> Space:
    """A space from a shipped alignment (``None`` or ``"default"``) or a saved alignment folder."""
    from polymodal.align.default import KINDS, load_default
    from polymodal.align.model import Alignment

    if alignment is None or str(alignment) == "default":
        if name not in KINDS:
            raise ConfigError(f"no shipped alignment for space {name!r}: give its folder")
        return Space(name, load_default(name), source="default", cache=cache)
    folder = Path(alignment).expanduser().resolve()
    return Space(name, Alignment.load(folder), source=str(folder), cache=cache)

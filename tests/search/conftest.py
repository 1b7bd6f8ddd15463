"""Tiny random alignments (no weights needed) and small generated collections for search tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_alignments(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """image-text and audio-text alignments over the tiny random encoders, saved to folders."""
    import torch

    from polymodal.align.heads import ProjectionHead
    from polymodal.align.model import Alignment, Side
    from polymodal.encoders.registry import build_encoder

    torch.manual_seed(0)
    text = build_encoder("minilm-l6", tiny=True)
    out = {}
    for space, media in (("image-text", "efficientnet-lite0"), ("audio-text", "whisper-tiny-en")):
        enc = build_encoder(media, tiny=True)
        alignment = Alignment(
            Side.of(enc),
            Side.of(text),
            ProjectionHead(enc.info.width, 16),
            ProjectionHead(text.info.width, 16),
        )
        folder = tmp_path_factory.mktemp(space)
        alignment.save(folder)
        out[space] = str(folder)
    return out


def write_png(path: Path, seed: int, size: int = 48) -> None:
    """A random-colour picture: blocks of colour so the tiny encoder sees some structure."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    pixels = np.kron(blocks, np.ones((size // 4, size // 4, 1), dtype=np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def write_wav(path: Path, freq: float, seconds: float = 0.5, rate: int = 16_000) -> None:
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)


def make_collection(root: Path) -> dict[str, int]:
    """Photos in two folders, two sounds, a text, a broken photo, a hidden file and a link."""
    for i in range(3):
        write_png(root / "red" / f"r{i}.png", seed=i)
        write_png(root / "blue" / f"b{i}.png", seed=10 + i)
    write_wav(root / "sounds" / "low.wav", 220.0)
    write_wav(root / "sounds" / "high.wav", 880.0)
    (root / "notes.txt").write_text("a red summer dress with flowers", encoding="utf-8")
    (root / "red" / "broken.jpg").write_bytes(b"this is not a jpeg at all")
    (root / ".hidden.png").write_bytes(b"x")
    (root / "readme.pdf").write_bytes(b"%PDF-1.4")
    os.symlink(root / "red" / "r0.png", root / "link.png")
    return {"good": 9, "broken": 1, "hidden": 1, "links": 1, "other": 1}


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    make_collection(root)
    return root


def open_indexed(root: Path, db: Path, alignments: dict[str, str]):
    from polymodal.search import SearchEngine

    eng = SearchEngine.open(db, create=True, root=root, alignments=alignments)
    eng.index(progress=False)
    return eng


@pytest.fixture
def engine(collection: Path, tmp_path: Path, tiny_alignments: dict[str, str]):
    """A freshly indexed store that the test may change."""
    return open_indexed(collection, tmp_path / "db", tiny_alignments)


@pytest.fixture(scope="module")
def shared_engine(tmp_path_factory: pytest.TempPathFactory, tiny_alignments: dict[str, str]):
    """One indexed store for read-only tests."""
    base = tmp_path_factory.mktemp("shared")
    make_collection(base / "media")
    return open_indexed(base / "media", base / "db", tiny_alignments)

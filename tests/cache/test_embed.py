"""The embed pipeline on tiny random encoders: shapes, masks, skipped cells, cache reuse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image

from polymodal.cache.embed import embed_table
from polymodal.cache.store import EmbeddingCache
from polymodal.data.schema import detect_schema
from polymodal.encoders.registry import build_encoder
from polymodal.modality import Modality


@pytest.fixture(scope="module")
def tiny_encoders() -> dict[Modality, object]:
    return {
        Modality.IMAGE: build_encoder("efficientnet-lite0", tiny=True),
        Modality.AUDIO: build_encoder("whisper-tiny-en", tiny=True),
        Modality.TEXT: build_encoder("minilm-l6", tiny=True),
    }


def _table(tmp_path: Path) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.jpg"
        )
        sf.write(
            tmp_path / f"{i}.wav", rng.normal(0, 0.1, 8000 + 800 * i).astype(np.float32), 16000
        )
        rows.append(
            {
                "photo": f"{i}.jpg",
                "sound": f"{i}.wav",
                "note": f"item number {i}",
                "price": float(i),
            }
        )
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello, I am not an image")
    rows += [
        {"photo": "missing.jpg", "sound": "0.wav", "note": "missing photo", "price": 1.0},
        {"photo": "empty.jpg", "sound": None, "note": None, "price": None},
        {"photo": "text.jpg", "sound": "1.wav", "note": "text posing as jpg", "price": 2.0},
        {"photo": "../../etc/passwd", "sound": "2.wav", "note": "escape", "price": 3.0},
        {"photo": "0.jpg", "sound": "0.wav", "note": "same photo as row 0", "price": 4.0},
    ]
    return pd.DataFrame(rows)


def test_embeds_every_row_and_reports_each_bad_cell(tmp_path: Path, tiny_encoders) -> None:
    frame = _table(tmp_path)
    schema = detect_schema(frame, base=tmp_path)
    cache = EmbeddingCache(tmp_path / "cache.sqlite3")
    out = embed_table(
        frame,
        schema,
        base=tmp_path,
        encoders=tiny_encoders,
        cache=cache,
        tokens=True,
        progress=False,
    )
    photo = out.columns["photo"]
    assert photo.pooled.shape == (len(frame), tiny_encoders[Modality.IMAGE].info.width)
    assert photo.present.tolist() == [True] * 6 + [False, False, False, False, True]
    assert not photo.pooled[~photo.present].any()  # absent rows carry no made-up values
    np.testing.assert_array_equal(photo.pooled[10], photo.pooled[0])  # same content, one encoding
    assert photo.tokens[0] is not None and photo.tokens[0].ndim == 2
    problems = {(s.row, s.column): s.problem for s in out.report.skipped}
    assert set(problems) == {(6, "photo"), (7, "photo"), (8, "photo"), (9, "photo")}
    assert "not found" in problems[(6, "photo")]
    assert "zero-byte" in problems[(7, "photo")]
    assert "escapes" in problems[(9, "photo")]
    assert out.report.missing == {"photo": 0, "sound": 1, "note": 1}
    assert out.report.encoded["photo"] == 6  # rows 0 and 10 share content
    assert out.columns["sound"].present.sum() == 10
    assert out.columns["note"].present.sum() == 10


def test_second_run_is_served_from_cache(tmp_path: Path, tiny_encoders) -> None:
    frame = _table(tmp_path)
    schema = detect_schema(frame, base=tmp_path)
    cache = EmbeddingCache(tmp_path / "cache.sqlite3")
    first = embed_table(
        frame, schema, base=tmp_path, encoders=tiny_encoders, cache=cache, progress=False
    )
    second = embed_table(
        frame, schema, base=tmp_path, encoders=tiny_encoders, cache=cache, progress=False
    )
    assert sum(second.report.encoded.values()) == 0
    assert second.report.cached == {c: first.report.encoded[c] for c in first.report.encoded}
    for col in first.columns:
        np.testing.assert_allclose(second.columns[col].pooled, first.columns[col].pooled, atol=1e-6)
    # Tokens were not kept the first time: asking for them re-encodes rather than serving nothing.
    third = embed_table(
        frame,
        schema,
        base=tmp_path,
        encoders=tiny_encoders,
        cache=cache,
        tokens=True,
        progress=False,
    )
    assert third.report.encoded["photo"] == 6


class _BrokenDecode:
    """Wraps a real tiny encoder; decode fails unexpectedly on chosen files (a reader bug)."""

    def __init__(self, inner, fail_on: str) -> None:
        self.inner, self.fail_on, self.info = inner, fail_on, inner.info

    def decode(self, value: str):
        if self.fail_on in value:
            raise RuntimeError("simulated library bug")
        return self.inner.decode(value)

    def encode(self, items, *, tokens: bool = False):
        return self.inner.encode(items, tokens=tokens)


def test_one_unexpected_decode_error_is_skipped_but_a_systematic_one_raises(
    tmp_path: Path, tiny_encoders
) -> None:
    frame = _table(tmp_path).iloc[:6][["photo"]]
    schema = detect_schema(frame, base=tmp_path)
    cache = EmbeddingCache(tmp_path / "cache.sqlite3")
    one = _BrokenDecode(tiny_encoders[Modality.IMAGE], fail_on="3.jpg")
    out = embed_table(
        frame, schema, base=tmp_path, encoders={Modality.IMAGE: one}, cache=cache, progress=False
    )
    assert [(s.row, s.problem) for s in out.report.skipped] == [
        (3, "cannot decode: RuntimeError: simulated library bug")
    ]
    every = _BrokenDecode(tiny_encoders[Modality.IMAGE], fail_on=".jpg")
    with pytest.raises(RuntimeError, match="simulated library bug"):
        embed_table(
            frame,
            schema,
            base=tmp_path,
            encoders={Modality.IMAGE: every},
            cache=EmbeddingCache(tmp_path / "c2.sqlite3"),
            progress=False,
        )

"""A second fit over the same table encodes nothing: every embedding comes from the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from polymodal.predict import Predictor


def digit_table(folder: Path, n: int = 60) -> pd.DataFrame:
    """``n`` of scikit-learn's 8x8 digits as PNG files, with a label and a number column."""
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    rows = []
    for i in range(n):
        pixels = (digits.images[i] * 255 / 16).astype(np.uint8)
        Image.fromarray(pixels).resize((32, 32), Image.NEAREST).save(folder / f"d{i}.png")
        rows.append(
            {"image": f"d{i}.png", "ink": float(pixels.mean()), "digit": int(digits.target[i])}
        )
    return pd.DataFrame(rows)


@pytest.mark.real_weights
def test_refit_over_cached_embeddings_encodes_nothing(tmp_path: Path) -> None:
    frame = digit_table(tmp_path)
    params = {"fusion": "early", "epochs": 5, "progress": False, "cache_dir": str(tmp_path)}
    first = Predictor("digit", **params).fit(frame, base=tmp_path)
    assert sum(first.embed_report_.encoded.values()) == 60
    second = Predictor("digit", **params).fit(frame, base=tmp_path)
    assert sum(second.embed_report_.encoded.values()) == 0
    assert sum(second.embed_report_.cached.values()) == 60
    # Same embeddings, same seed: the same model.
    assert np.array_equal(
        first.predict_proba(frame, base=tmp_path), second.predict_proba(frame, base=tmp_path)
    )

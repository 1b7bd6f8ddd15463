"""The caption decoder's training loop (scripts/train_caption_decoder.py) on random tokens."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scripts.train_caption_decoder import references, train_decoder


def test_train_decoder_runs_and_keeps_the_best_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    import scripts.train_caption_decoder as script

    monkeypatch.setattr(script, "MODEL", {**script.MODEL, "dim": 16, "ff": 32, "heads": 2})
    rng = np.random.default_rng(0)
    captions = ["a red car", "a blue bird", "a green frog", "a red bird"] * 4
    x = rng.normal(size=(len(captions), 4, 8)).astype(np.float16)
    val_refs = [[c] for c in captions[:4]]
    model, vocab, record = train_decoder(
        (x, captions),
        (x[:4], val_refs),
        vocab_captions=captions[:4],
        samples_per_epoch=12,
        epochs=2,
        minutes=10.0,
        seed=0,
        batch_size=8,
    )
    assert [h["epoch"] for h in record["history"]] == [1, 2]
    best = max(record["history"], key=lambda h: h["val_cider_d_greedy"])
    assert record["best_epoch"] == best["epoch"]
    # Words seen twice among the distinct captions, not among their 4x repeated copies.
    assert vocab.itos[4:] == ["a", "bird", "red"]
    assert model.args["token_width"] == 8 and not model.training


def test_references_are_every_caption_of_the_group() -> None:
    frame = pd.DataFrame(
        {"group": ["g1", "g1", "g2", "g1"], "text": ["a cat", "cat: animal", "a dog", "a cat"]}
    )
    assert references(frame) == [["a cat", "cat: animal"]] * 2 + [
        ["a dog"],
        ["a cat", "cat: animal"],
    ]

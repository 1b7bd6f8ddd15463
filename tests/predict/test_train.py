"""The training loop's parts: modality dropout, early stopping, class weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from polymodal.fusion.base import SlotSpec
from polymodal.modality import Modality
from polymodal.predict import Predictor
from polymodal.predict.features import FeatureSet, SlotData
from polymodal.predict.network import make_network
from polymodal.predict.problem import Target
from polymodal.predict.train import modality_dropout_masks, train_network


def features(present: np.ndarray, y: np.ndarray | None = None) -> FeatureSet:
    """Three one-dimensional slots whose presence is given per row, values = presence."""
    slots = {
        name: SlotData(present[:, i].copy(), pooled=present[:, i : i + 1].astype(np.float32))
        for i, name in enumerate(["a", "b", "c"])
    }
    return FeatureSet(len(present), slots, None, y)


SLOT_GROUP = {"a": "text", "b": "image", "c": "image"}


def test_modality_dropout_never_hides_every_group_a_row_has() -> None:
    rng = np.random.default_rng(0)
    present = rng.random((2000, 3)) < 0.6
    batch = features(present).tensors()
    keep = modality_dropout_masks(batch, SLOT_GROUP, 0.9, torch.Generator().manual_seed(0))
    assert keep is not None
    kept = {s: present[:, i] & keep[s].numpy() for i, s in enumerate("abc")}
    had_any = present.any(axis=1)
    still = kept["a"] | kept["b"] | kept["c"]
    assert np.array_equal(still, had_any)
    # Slots of one group are dropped together.
    assert np.array_equal(keep["b"].numpy(), keep["c"].numpy())
    # Roughly p of the present text cells are hidden (less: some are rescued).
    text_present = present[:, 0]
    hidden = text_present & ~keep["a"].numpy()
    assert 0.4 < hidden.sum() / text_present.sum() < 0.9


def test_modality_dropout_is_off_for_p_zero_or_one_group() -> None:
    batch = features(np.ones((4, 3), bool)).tensors()
    gen = torch.Generator().manual_seed(0)
    assert modality_dropout_masks(batch, SLOT_GROUP, 0.0, gen) is None
    assert modality_dropout_masks(batch, {"a": "text"}, 0.5, gen) is None


def test_early_stopping_keeps_the_best_epoch() -> None:
    rng = np.random.default_rng(0)
    present = np.ones((80, 3), bool)
    fs = features(present, rng.integers(0, 2, 80))  # labels are noise: nothing to learn
    for name, data in fs.slots.items():
        data.pooled = rng.normal(size=(80, 1)).astype(np.float32)
        fs.slots[name] = data
    slots = [SlotSpec(n, Modality.NUMERIC, 1, 1) for n in "abc"]
    target = Target("binary", [0, 1])
    torch.manual_seed(0)
    net = make_network(
        "early", slots, n_outputs=2, hidden=16, depth=1, dropout=0.0, tokens="pooled"
    )
    train, val = fs.take(np.arange(60)), fs.take(np.arange(60, 80))
    result = train_network(
        net,
        train.tensors(),
        val.tensors(),
        target=target,
        groups={"x": ["a", "b", "c"]},
        epochs=500,
        patience=5,
        batch_size=16,
        progress=False,
    )
    assert result.epochs_run == result.best_epoch + 5 < 500
    best = result.history[result.best_epoch - 1]
    assert result.val_loss == pytest.approx(best["val_loss"])
    # The network holds the best epoch's weights, not the last epoch's.
    from polymodal.predict.train import network_outputs, score_outputs

    again = score_outputs(target, val.y, network_outputs(net, val.tensors()))
    assert again["auroc"] == pytest.approx(result.val_metrics["auroc"])


def test_class_weights_raise_minority_recall() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 2))
    rare = x[:, 0] + rng.normal(0, 0.8, 600) > 1.8  # about 6% of rows
    frame = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "y": np.where(rare, "rare", "common")})
    recall = {}
    for weighting in ("balanced", None):
        model = Predictor(
            "y",
            fusion="early",
            class_weight=weighting,
            hidden=16,
            depth=1,
            epochs=40,
            batch_size=256,
            progress=False,
        ).fit(frame)
        pred = model.predict(frame)
        recall[weighting] = float((pred[rare] == "rare").mean())
    assert recall["balanced"] > recall[None] + 0.15


def test_frozen_networks_train_on_one_thread_and_fine_tuning_keeps_all() -> None:
    from types import SimpleNamespace

    from polymodal.predict.train import training_threads

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with training_threads(SimpleNamespace(encoders=[])):  # type: ignore[arg-type]
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with training_threads(SimpleNamespace(encoders=[object()])):  # type: ignore[arg-type]
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("best", "steps", "expected"),
    [
        (10, 8, 13),  # a floor of ~100 steps: 13 epochs of 8 steps
        (20, 12, 20),  # waits as long as the best took to find
        (57, 2, 30),  # never more than patience
        (3, 100, 10),  # never fewer than 10 epochs
        (0, 1, 30),  # one step per epoch: the full patience
    ],
)
def test_patience_grows_with_the_best_epoch_between_a_floor_and_the_cap(
    best: int, steps: int, expected: int
) -> None:
    from polymodal.predict.train import patience_now

    assert patience_now(best, 30, steps) == expected

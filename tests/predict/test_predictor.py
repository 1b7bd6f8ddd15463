"""Predictor end to end on tiny random encoders: fit, predict, evaluate, explain, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from polymodal.encoders.registry import build_encoder
from polymodal.errors import ConfigError, InputError
from polymodal.predict import Predictor
from polymodal.predict.problem import MISSING_LABEL

CLASSES = ("cat", "dog", "fish")
COLOURS = {"cat": (200, 40, 40), "dog": (40, 200, 40), "fish": (40, 40, 200)}
WORDS = {"cat": "purring whiskers", "dog": "barking leash", "fish": "water fins"}


def tiny_encoders() -> dict[str, object]:
    return {
        "text": build_encoder("minilm-l6", tiny=True),
        "image": build_encoder("efficientnet-lite0", tiny=True),
    }


def make_table(folder: Path, n: int = 90, seed: int = 0) -> pd.DataFrame:
    """Text, an image path, a number and a category, each carrying some of the label."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    labels = [CLASSES[i % 3] for i in range(n)]
    rows = []
    for i, label in enumerate(labels):
        colour = np.array(COLOURS[label]) + rng.integers(-30, 30, 3)
        pixels = np.clip(colour + rng.integers(-20, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
        rows.append(
            {
                "note": f"{WORDS[label]} number {rng.integers(100)}",
                "photo": f"{i}.png",
                "size": CLASSES.index(label) + rng.normal(0, 0.7),
                "shop": str(rng.choice(["north", "south"])),
                "label": label,
            }
        )
    return pd.DataFrame(rows)


def fast(**kw: object) -> dict[str, object]:
    """Small, quick training settings for tests."""
    params: dict[str, object] = {
        "epochs": 25,
        "patience": 8,
        "batch_size": 256,
        "hidden": 32,
        "depth": 1,
        "progress": False,
        "lr": 3e-3,
        "encoders": tiny_encoders(),
    }
    params.update(kw)
    return params


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    folder = tmp_path_factory.mktemp("table")
    return make_table(folder), folder


def test_tabular_binary_learns_and_evaluates() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "noise": x[:, 2]})
    frame["y"] = np.where(x[:, 0] + 0.5 * x[:, 1] > 0, "yes", "no")
    model = Predictor("y", fusion="early", **fast(epochs=60)).fit(frame)
    assert model.problem_ == "binary" and list(model.classes_) == ["no", "yes"]
    metrics = model.evaluate(frame)
    assert set(metrics) == {"accuracy", "balanced_accuracy", "macro_f1", "auroc", "log_loss"}
    assert metrics["accuracy"] > 0.9 and metrics["auroc"] > 0.95
    assert set(model.predict(frame.head(5))) <= {"yes", "no"}
    proba = model.predict_proba(frame.head(5))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_regression_predicts_on_the_label_scale() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 10, 300)
    frame = pd.DataFrame({"x": x, "y": 1000.0 + 50.0 * x + rng.normal(0, 5, 300)})
    model = Predictor("y", fusion="early", **fast(epochs=80)).fit(frame)
    assert model.problem_ == "regression" and not model.target_.log
    metrics = model.evaluate(frame)
    assert set(metrics) == {"mae", "rmse", "mape", "r2"}
    assert metrics["r2"] > 0.9
    pred = model.predict(frame.head(20))
    assert 900 < pred.mean() < 1600  # the label's own scale, not standardised
    with pytest.raises(ConfigError, match="classification"):
        model.predict_proba(frame)


@pytest.mark.parametrize("fusion", ["early", "late", "hybrid"])
def test_each_fusion_trains_on_text_image_and_numbers(
    fusion: str, table: tuple[pd.DataFrame, Path]
) -> None:
    frame, folder = table
    model = Predictor("label", fusion=fusion, **fast()).fit(frame, base=folder)
    assert model.fusion_ == fusion
    assert {s.name for s in model.slots_} == {"note", "photo", "tabular"}
    assert set(model.groups_) == {"text", "image", "tabular"}
    proba = model.predict_proba(frame, base=folder)
    assert proba.shape == (len(frame), 3)
    assert model.evaluate(frame, base=folder)["accuracy"] > 0.6


def test_hybrid_over_token_sequences(table: tuple[pd.DataFrame, Path]) -> None:
    frame, folder = table
    model = Predictor("label", fusion="hybrid", tokens="sequence", max_tokens=4, **fast())
    model.fit(frame, base=folder)
    by_name = {s.name: s for s in model.slots_}
    assert by_name["note"].max_tokens == 4  # text token states capped at 4
    assert by_name["photo"].max_tokens == 4  # the tiny encoder's 2x2 grid
    assert by_name["tabular"].max_tokens == 2  # size, shop
    assert model.predict(frame.head(4), base=folder).shape == (4,)


def test_auto_compares_single_modalities_and_fusions(table: tuple[pd.DataFrame, Path]) -> None:
    frame, folder = table
    model = Predictor("label", fusion="auto", **fast(epochs=10)).fit(frame, base=folder)
    names = [row["candidate"] for row in model.leaderboard_]
    assert sorted(names) == sorted(
        ["text only", "image only", "tabular only", "early", "late", "hybrid", "linear"]
    )
    chosen = [row for row in model.leaderboard_ if row["chosen"]]
    assert len(chosen) == 1 and chosen[0]["candidate"] == model.candidate_
    assert chosen[0]["val_score"] == max(row["val_score"] for row in model.leaderboard_)
    assert all(row["fit_seconds"] > 0 and row["metric"] == "accuracy" for row in model.leaderboard_)
    assert model.leaderboard_[0]["val_score"] >= model.leaderboard_[-1]["val_score"]


def test_auto_scores_every_candidate_on_test_data(table: tuple[pd.DataFrame, Path]) -> None:
    frame, folder = table
    model = Predictor("label", fusion="auto", **fast(epochs=3))
    model.fit(frame.iloc[:60], test=frame.iloc[60:], base=folder)
    assert all(row["test_score"] is not None for row in model.leaderboard_)
    # The kept model was retrained on train + val; its own test score is reported beside.
    chosen = next(row for row in model.leaderboard_ if row["chosen"])
    assert chosen["refit_rows"] == 60 and chosen["final_test_score"] is not None


def test_same_seed_same_model_other_seed_other_model(table: tuple[pd.DataFrame, Path]) -> None:
    frame, folder = table
    runs = [
        Predictor("label", fusion="early", seed=s, **fast(epochs=5))
        .fit(frame, base=folder)
        .predict_proba(frame, base=folder)
        for s in (3, 3, 4)
    ]
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_predict_with_missing_extra_columns_and_unseen_categories(
    table: tuple[pd.DataFrame, Path],
) -> None:
    frame, folder = table
    model = Predictor("label", fusion="early", **fast()).fit(frame, base=folder)
    test = frame.drop(columns=["photo", "label"]).head(6).assign(extra=1, shop="east")
    pred = model.predict(test, base=folder)
    assert pred.shape == (6,)
    notes = " | ".join(model.last_report_.notes)
    assert "'photo'" in notes and "missing in every row" in notes
    assert "'extra'" in notes
    assert "unseen" in notes and "'shop'" in notes
    # Only the number: every media slot absent, still a prediction per row.
    assert model.predict(frame[["size"]].head(3)).shape == (3,)


def test_a_table_with_none_of_the_input_columns_is_refused_not_predicted_constant() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    frame["y"] = np.where(frame["a"] > 0, "yes", "no")
    model = Predictor("y", fusion="early", **fast(epochs=2)).fit(frame)
    wrong = pd.DataFrame({"A": [1.0, 2.0], "B": [3.0, 4.0], "y": ["yes", "no"]})
    for call in (model.predict, model.evaluate):
        with pytest.raises(ConfigError, match=r"model reads 'a', 'b'; the table has 'A', 'B'$"):
            call(wrong)
    assert model.predict(wrong.assign(a=0.5)).shape == (2,)  # one input present: notes only
    assert "'b'" in " ".join(model.last_report_.notes)


def test_missing_labels_and_bad_files_are_reported_not_dropped_silently(
    table: tuple[pd.DataFrame, Path],
) -> None:
    frame, folder = table
    frame = frame.copy()
    frame.loc[[4, 7], "label"] = np.nan
    frame.loc[10, "photo"] = "gone.png"
    (folder / "broken.png").write_bytes(b"not a png")
    frame.loc[11, "photo"] = "broken.png"
    model = Predictor("label", fusion="early", **fast(epochs=3)).fit(frame, base=folder)
    reasons = {(s.row, s.column): s.problem for s in model.skipped_}
    assert reasons[(4, "label")] == MISSING_LABEL and reasons[(7, "label")] == MISSING_LABEL
    assert "not found" in reasons[(10, "photo")]
    assert (11, "photo") in reasons
    # Rows 10 and 11 still trained (their photo absent): only the 2 unlabelled rows left out.
    assert len(model.skipped_) == 4


def test_a_column_empty_everywhere_is_left_out_with_a_note(
    table: tuple[pd.DataFrame, Path],
) -> None:
    frame, folder = table
    frame = frame.assign(photo="nothing-here.png")
    model = Predictor("label", fusion="early", **fast(epochs=2)).fit(frame, base=folder)
    assert "photo" not in model.slot_columns_
    assert any("'photo' not used: no usable value" in n for n in model.notes_)
    only_bad = frame[["photo", "label"]]
    with pytest.raises(ConfigError, match="no input column has a usable value"):
        Predictor("label", **fast(epochs=2)).fit(only_bad, base=folder)


def test_explain_gives_each_modality_group_a_share(table: tuple[pd.DataFrame, Path]) -> None:
    frame, folder = table
    model = Predictor("label", fusion="early", **fast()).fit(frame, base=folder)
    attr = model.explain(frame.head(8), base=folder)
    assert list(attr.columns) == ["attr.text", "attr.image", "attr.tabular", "attr.base"]
    proba = model.predict_proba(frame.head(8), base=folder)
    # Efficiency: base + contributions = log-prob of the predicted class.
    np.testing.assert_allclose(attr.sum(axis=1), np.log(proba.max(axis=1)), atol=1e-4)


def test_fine_tuning_trains_only_the_last_blocks(table: tuple[pd.DataFrame, Path]) -> None:
    frame, folder = table
    text = build_encoder("minilm-l6", tiny=True)
    before = {k: v.clone() for k, v in text.module().state_dict().items()}
    model = Predictor(
        "label",
        fusion="early",
        columns={"note": "text"},
        exclude=["photo"],
        fine_tune_blocks=1,
        **fast(epochs=3, encoders={"text": text}),
    ).fit(frame.head(45), base=folder)
    tuned = model.network_.encoders[0].state_dict()
    changed = {k for k, v in tuned.items() if not np.array_equal(v.numpy(), before[k].numpy())}
    assert changed and all(".layer.1." in k for k in changed)  # the last of 2 layers only
    # The user's encoder object is untouched.
    assert all(np.array_equal(v, before[k]) for k, v in text.module().state_dict().items())


def test_bad_parameters_are_config_errors() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 0, 1]})
    with pytest.raises(ConfigError, match="fusion 'deep'"):
        Predictor("y", fusion="deep").fit(frame)
    with pytest.raises(ConfigError, match="label column 'z' is not in the table"):
        Predictor("z").fit(frame)
    with pytest.raises(ConfigError, match="not fitted"):
        Predictor("y").predict(frame)
    with pytest.raises(ConfigError, match="'photo' is not a modality"):
        Predictor("y", encoders={"photo": "efficientnet-lite0"}).fit(frame.assign(t="some text"))


def test_report_compares_models_and_shows_robustness(
    table: tuple[pd.DataFrame, Path], tmp_path: Path
) -> None:
    frame, folder = table
    model = Predictor("label", fusion="auto", **fast(epochs=3)).fit(frame.iloc[:70], base=folder)
    page = model.report(tmp_path / "fit.html").read_text()  # on the validation rows
    assert "image only" in page and "hybrid" in page and "Robustness" in page
    assert "data:image/png;base64," in page
    on_test = model.report(tmp_path / "test.html", frame.iloc[70:], base=folder).read_text()
    assert "Test scores of the kept model" in on_test and "No test data" not in on_test


def test_a_bad_number_is_named_by_its_row_in_the_users_table() -> None:
    frame = pd.DataFrame({"size": [str(float(i)) for i in range(60)], "y": ["a", "b"] * 30})
    frame.loc[[1, 2], "y"] = None  # dropped rows must not shift the row numbers in messages
    frame.loc[40, "size"] = "twelve"
    with pytest.raises(InputError, match=r"row 40, column 'size': not a number: 'twelve'"):
        Predictor("y", fusion="early", val_fraction=0.01, **fast(epochs=1)).fit(frame)

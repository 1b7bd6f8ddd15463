"""The HTML report: complete, self-contained, escaped, valid, written atomically."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from polymodal.errors import SkippedRow
from polymodal.predict.report import write_report

VOID = {"meta", "img", "br", "hr", "link", "input"}
EVIL = '<script>alert("x")</script>'


class _Checker(HTMLParser):
    """Tag balance, plus every <img> src and every attribute that could load something."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"unbalanced </{tag}>")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _board(metric: str) -> list[dict[str, object]]:
    return [
        {"model": "image", "kind": "single", "val": 0.71, "test": 0.69, "metric": metric},
        {"model": "text", "kind": "single", "val": 0.80, "test": 0.78, "metric": metric},
        {"model": "early", "kind": "fusion", "val": 0.88, "test": 0.86, "chosen": True},
        {"model": "late", "kind": "fusion", "val": 0.84, "test": None, "fit_s": 3.5},
        {"model": "hybrid <b>", "kind": "fusion", "val": 0.86, "test": 0.85},
    ]


def _robustness() -> pd.DataFrame:
    rows = []
    for group, slope in (("image", 0.05), ("text", 0.2)):
        for f in (0.0, 0.5, 1.0):
            rows.append((group, f, int(f * 10), f, 0.86 - slope * f))
    return pd.DataFrame(rows, columns=["group", "fraction", "n_dropped", "missing", "score"])


def _attributions(n: int, with_class: bool) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "attr.image": rng.normal(0.2, 0.1, n),
            "attr.text": rng.normal(0.8, 0.3, n),
            "attr.base": rng.normal(-1.6, 0.1, n),
        }
    )
    if with_class:
        frame["predicted"] = rng.choice(["cat", "dog", "<bird>"], n)
    return frame


def _check(path: Path) -> tuple[str, _Checker]:
    page = path.read_text(encoding="utf-8")
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert page.startswith("<!DOCTYPE html>")
    assert checker.errors == [] and checker.stack == []
    assert not re.search(r"https?://", page)
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)  # nothing loaded from outside
    for src in checker.images:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.removeprefix("data:image/png;base64,"), validate=True)
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 2000
        assert b"http" not in png
    return page, checker


def test_classification_report(tmp_path: Path) -> None:
    labels = ["cat", "dog", "<bird>"]
    matrix = np.array([[30, 3, 1], [4, 25, 2], [0, 1, 9]])
    skipped = [SkippedRow(3, "photo", "cannot decode image", "imgs/3.jpg")]
    path = write_report(
        tmp_path / "out" / "report.html",
        title="Pets <fit>",
        problem="multiclass",
        leaderboard=_board("accuracy"),
        test_scores={"accuracy": 0.86, "macro_f1": 0.83},
        robustness=_robustness(),
        attributions=_attributions(60, with_class=True),
        confusion=(labels, matrix),
        residuals=None,
        notes=["validation: 20% of rows, stratified", EVIL],
        skipped=skipped,
    )
    page, checker = _check(path)
    for title in (
        "Single modality vs fusion",
        "Test scores of the kept model",
        "Robustness to missing modalities",
        "Modality attribution",
        "Mean contribution per predicted class",
        "Confusion matrix",
        "Notes",
        "Skipped rows",
    ):
        assert f">{title}</h" in page
    assert "Residuals" not in page
    assert len(checker.images) == 4  # leaderboard, robustness, attribution, confusion
    assert "script" not in checker.tags and "b" not in checker.tags and "fit" not in checker.tags
    assert EVIL in "".join(checker.text)  # shown as text, not run
    assert "&lt;script&gt;" in page and "&lt;bird&gt;" in page and "hybrid &lt;b&gt;" in page
    assert "cannot decode image" in page and "imgs/3.jpg" in page
    # The best single-modality model on test is drawn as the reference for robustness.
    assert "best single-modality model (text), 0.78" in page
    assert "fit_s" in page and "(kept)" in page
    assert "nats" in page
    assert list(tmp_path.joinpath("out").iterdir()) == [path]  # no temporary file left behind


def test_regression_report(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(500_000, 100_000, 80)
    board = [
        {"model": "tabular", "kind": "single", "val": 146e3, "test": 150e3, "metric": "mae"},
        {"model": "photos", "kind": "single", "val": 242e3, "test": 250e3},
        {"model": "tabular x2", "kind": "control", "val": 141e3, "test": 143e3},
        {"model": "late", "kind": "fusion", "val": 130e3, "test": 133e3, "chosen": True},
    ]
    path = write_report(
        tmp_path / "r.html",
        title="Houses",
        problem="regression",
        leaderboard=board,
        test_scores=None,
        robustness=_robustness(),
        attributions=_attributions(80, with_class=False),
        confusion=None,
        residuals=(y, y + rng.normal(0, 50_000, 80)),
        notes=[],
        skipped=[],
    )
    page, checker = _check(path)
    assert ">Residuals</h2>" in page and "Confusion matrix" not in page
    assert "lower is better" in page and "target units" in page
    assert "No test data was given" in page
    # Without test data robustness is on validation, so the validation reference is drawn.
    assert "best single-modality model (tabular), 1.46e+05" in page
    assert "Mean contribution per predicted class" not in page
    assert len(checker.images) == 4
    assert "0 value(s) could not be used" in page


def test_missing_parts_say_so(tmp_path: Path) -> None:
    path = write_report(
        tmp_path / "r.html",
        title="t",
        problem="binary",
        leaderboard=[],
        test_scores=None,
        robustness=None,
        attributions=None,
        confusion=None,
        residuals=None,
        notes=[],
        skipped=[SkippedRow(i, "c", "bad") for i in range(1200)],
    )
    page, checker = _check(path)
    assert checker.images == []
    assert page.count("Not computed.") == 3
    assert "1200 value(s)" in page and "200 more" in page


def test_bad_inputs_are_refused_and_leave_no_file(tmp_path: Path) -> None:
    common = dict(
        title="t",
        leaderboard=[],
        test_scores=None,
        robustness=None,
        attributions=None,
        residuals=None,
        notes=[],
        skipped=[],
    )
    with pytest.raises(ValueError, match="problem"):
        write_report(tmp_path / "a.html", problem="ranking", confusion=None, **common)
    with pytest.raises(ValueError, match="does not match"):
        write_report(tmp_path / "a.html", problem="binary", confusion=(["a"], np.eye(2)), **common)
    assert list(tmp_path.iterdir()) == []


def test_predictor_leaderboard_rows_are_understood(tmp_path: Path) -> None:
    # The shape of Predictor.leaderboard_ rows (predict/auto.py leaderboard_row).
    def row(name: str, groups: list[str], val: float, chosen: bool = False) -> dict[str, object]:
        return {
            "candidate": name,
            "fusion": "early",
            "groups": groups,
            "metric": "auroc",
            "val_score": val,
            "test_score": val - 0.01,
            "fit_seconds": 1.2,
            "chosen": chosen,
            "val_metrics": {"auroc": val, "accuracy": 0.7},
        }

    board = [
        row("early", ["image", "text"], 0.9, chosen=True),
        row("text only", ["text"], 0.8),
        row("image only", ["image"], 0.75),
    ]
    path = write_report(
        tmp_path / "r.html",
        title="t",
        problem="binary",
        leaderboard=board,
        test_scores={"auroc": 0.89},
        robustness=_robustness(),
        attributions=None,
        confusion=(["no", "yes"], np.array([[40, 5], [6, 49]])),
        residuals=None,
        notes=[],
        skipped=[],
    )
    page, _ = _check(path)
    assert "<td>early <strong>(kept)</strong></td><td>fusion</td><td>0.9</td><td>0.89</td>" in page
    assert "<td>text only</td><td>single</td>" in page
    assert "<th>fit_seconds</th>" in page and "<td>image, text</td>" in page
    assert "<td>auroc 0.9, accuracy 0.7</td>" in page
    assert "best single-modality model (text only), 0.79" in page


def test_a_one_class_test_table_skips_robustness_with_a_note(tmp_path: Path) -> None:
    from polymodal.predict import Predictor
    from tests.predict.test_predictor import fast

    x = np.arange(40, dtype=np.float64)
    frame = pd.DataFrame({"x": x, "y": np.where(x % 2 == 0, "even", "odd")})
    model = Predictor("y", fusion="early", **fast(epochs=2)).fit(frame)
    path = model.report(tmp_path / "r.html", frame.head(6).assign(y="even"))
    page, _ = _check(path)
    assert "Not computed: the auroc is undefined on these rows" in page
    assert "robustness not computed: the auroc is undefined" in page  # in the notes too

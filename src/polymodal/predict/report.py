"""A self-contained HTML report of a fit: models compared, robustness, attributions, errors.

The file opens offline: no external CSS, scripts or fonts; plots are PNGs embedded as base64
data URIs, drawn with matplotlib's Agg canvas (no pyplot, so no global state and no display);
every value from the data is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import EngFormatter

from polymodal.atomic import atomic_output
from polymodal.errors import SkippedRow

# Scores where lower is better; every other metric is taken as higher-is-better.
LOWER_IS_BETTER = {"mae", "rmse", "mse", "mape", "log_loss", "logloss"}
MAX_SKIPPED_SHOWN = 1000
_PROBLEMS = ("binary", "multiclass", "regression")
_KIND_COLOURS = {"single": "#7f8c9a", "fusion": "#d9822b", "control": "#4c9a5f"}


def write_report(
    path: str | Path,
    *,
    title: str,
    problem: str,
    leaderboard: Sequence[Mapping[str, Any]],
    test_scores: Mapping[str, float] | None,
    robustness: pd.DataFrame | None,
    attributions: pd.DataFrame | None,
    confusion: tuple[Sequence[Any], np.ndarray] | None,
    residuals: tuple[np.ndarray, np.ndarray] | None,
    notes: Sequence[str],
    skipped: Sequence[SkippedRow],
    robustness_skipped: str | None = None,
) -> Path:
    """Write the report to ``path`` atomically and return the path.

    ``leaderboard``: one dict per trained model with ``model`` (name; or ``candidate``), ``val``
    (validation score; or ``val_score``), and optionally ``test`` (test score or None; or
    ``test_score``), ``kind`` ("single" for a one-modality baseline, "fusion", or "control" for
    a no-fusion comparison such as an ensemble of one modality's models; without it, a row whose
    ``groups`` list has one entry is "single"), ``metric`` (the score's name, e.g. "accuracy" or
    "mae") and ``chosen`` (True for the model kept); any other key becomes a table column.
    ``test_scores``: the kept model's metrics on test data. ``robustness``: the frame from
    :func:`~polymodal.predict.robustness.robustness_curve`. ``attributions``: the frame from
    :func:`~polymodal.predict.attribution.modality_attributions`, optionally with a
    ``predicted`` column (the predicted label) for a per-class summary. ``confusion``: class
    labels and the (L, L) count matrix, rows = true class. ``residuals``: (y_true, y_pred).
    ``robustness_skipped``: why ``robustness`` is None, shown in its section.
    """
    if problem not in _PROBLEMS:
        raise ValueError(f"problem must be one of {_PROBLEMS}, got {problem!r}")
    board = _normalise_board(leaderboard)
    metric = _metric_name(board)
    sections = [
        _models_section(board, metric),
        _test_section(test_scores),
        _robustness_section(
            robustness, board, metric, on_test=test_scores is not None, why=robustness_skipped
        ),
        _attribution_section(attributions, problem),
        _confusion_section(confusion) if problem != "regression" else _residuals_section(residuals),
        _notes_section(notes),
        _skipped_section(skipped),
    ]
    page = _page(title, problem, "\n".join(sections))
    target = Path(path)
    with atomic_output(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return target


# --- sections ----------------------------------------------------------------------------------


def _models_section(board: list[dict[str, Any]], metric: str) -> str:
    head = "<h2>Single modality vs fusion</h2>"
    if not board:
        return head + "<p>No models were compared.</p>"
    lower = metric.lower() in LOWER_IS_BETTER
    direction = "lower is better" if lower else "higher is better"
    extra = list(dict.fromkeys(k for row in board for k in row if k not in _BOARD_KEYS))
    rows = [
        [
            _esc(row["model"]) + (" <strong>(kept)</strong>" if row["chosen"] else ""),
            *(_cell(row.get(c)) for c in ("kind", "val", "test", *extra)),
        ]
        for row in board
    ]
    header = ["model", "kind", f"validation {metric}", f"test {metric}", *extra]
    return (
        f"{head}<p>Each model's {_esc(metric)} ({direction}) on validation and test data. "
        "Single-modality models see one modality group; controls combine models without "
        "fusing modalities, so a fusion gain above them is not mere ensembling.</p>"
        + _img(_leaderboard_plot(board, metric), "validation and test score per model")
        + _table(header, rows, raw=True)
    )


_BOARD_KEYS = {"model", "kind", "val", "test", "metric", "chosen"}
# The Predictor's leaderboard_ spells some keys its own way; both are accepted.
_BOARD_ALIASES = {"candidate": "model", "val_score": "val", "test_score": "test"}


def _normalise_board(leaderboard: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    board = []
    for raw in leaderboard:
        row = {_BOARD_ALIASES.get(k, k): v for k, v in raw.items()}
        if "model" not in row or "val" not in row:
            raise ValueError(f"a leaderboard row needs 'model' and 'val', got {dict(raw)}")
        if "kind" not in row:
            groups = row.get("groups")
            single = isinstance(groups, list | tuple) and len(groups) == 1
            row["kind"] = "single" if single else "fusion"
        row["chosen"] = bool(row.get("chosen", False))
        board.append(row)
    return board


def _test_section(test_scores: Mapping[str, float] | None) -> str:
    head = "<h2>Test scores of the kept model</h2>"
    if not test_scores:
        return head + "<p>No test data was given.</p>"
    return head + _table(["metric", "value"], [[k, v] for k, v in test_scores.items()])


def _robustness_section(
    curve: pd.DataFrame | None,
    leaderboard: list[dict[str, Any]],
    metric: str,
    *,
    on_test: bool,
    why: str | None = None,
) -> str:
    head = "<h2>Robustness to missing modalities</h2>"
    if curve is None or curve.empty:
        return head + f"<p>Not computed{': ' + _esc(why) if why else ''}.</p>"
    split = "test" if on_test else "val"
    reference = _best_single(leaderboard, split, metric)
    x = "missing" if "missing" in curve else "fraction"
    text = (
        f"<p>The kept model's {_esc(metric)} on {'test' if on_test else 'validation'} data when "
        "one modality group is removed from a growing share of rows (the same rows for every "
        "group), the model falling back on its learned missing-modality tokens. The x axis is "
        "the share of rows without the group, counting rows where it was already absent.</p>"
    )
    if reference is not None:
        text += (
            f"<p>Dashed line: the best single-modality model ({_esc(reference[0])}), "
            f"{_fmt(reference[1])}.</p>"
        )
    wide = curve.pivot_table(index="fraction", columns="group", values="score", sort=False)
    rows = [[f, *wide.loc[f].tolist()] for f in wide.index]
    return (
        head
        + text
        + _img(_robustness_plot(curve, x, metric, reference), "score vs share of rows missing")
        + _table(["share of rows dropped", *wide.columns], rows)
    )


def _attribution_section(frame: pd.DataFrame | None, problem: str) -> str:
    head = "<h2>Modality attribution</h2>"
    if frame is None or frame.empty:
        return head + "<p>Not computed.</p>"
    groups = [c for c in frame.columns if c.startswith("attr.") and c != "attr.base"]
    names = [c.removeprefix("attr.") for c in groups]
    unit = (
        "the prediction, in target units"
        if problem == "regression"
        else "the log-probability of the predicted class, in nats"
    )
    text = (
        "<p>Shapley values over modality groups, computed by forcing groups absent: each "
        f"group's contribution to {unit}, relative to the model's answer with every group "
        "absent (<code>attr.base</code>). Per row, the base plus the contributions equals the "
        "model's answer. A group missing from a row contributes 0 there.</p>"
    )
    magnitude = frame[groups].abs().mean().to_numpy()
    signed = frame[groups].mean().to_numpy()
    out = (
        head
        + text
        + _img(_attribution_plot(names, magnitude), "mean absolute contribution per group")
        + _table(
            ["group", "mean |contribution|", "mean contribution"],
            [[n, m, s] for n, m, s in zip(names, magnitude, signed, strict=True)],
        )
    )
    if problem != "regression" and "predicted" in frame:
        by_class = frame.groupby("predicted", sort=True)
        rows = [[label, len(part), *part[groups].mean().tolist()] for label, part in by_class]
        out += "<h3>Mean contribution per predicted class</h3>" + _table(
            ["predicted class", "rows", *names], rows
        )
    return out


def _confusion_section(confusion: tuple[Sequence[Any], np.ndarray] | None) -> str:
    head = "<h2>Confusion matrix</h2>"
    if confusion is None:
        return head + "<p>Not computed.</p>"
    labels, matrix = list(confusion[0]), np.asarray(confusion[1])
    if matrix.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion matrix {matrix.shape} does not match {len(labels)} labels")
    rows = [[label, *matrix[i].tolist()] for i, label in enumerate(labels)]
    return (
        head
        + "<p>Rows: true class; columns: predicted class. Colour: share of the true class.</p>"
        + _img(_confusion_plot(labels, matrix), "confusion matrix")
        + _table(["true \\ predicted", *labels], rows)
    )


def _residuals_section(residuals: tuple[np.ndarray, np.ndarray] | None) -> str:
    head = "<h2>Residuals</h2>"
    if residuals is None:
        return head + "<p>Not computed.</p>"
    y_true = np.asarray(residuals[0], dtype=np.float64).ravel()
    y_pred = np.asarray(residuals[1], dtype=np.float64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in length")
    error = y_pred - y_true
    stats = [
        ["rows", len(error)],
        ["mean error (bias)", error.mean()],
        ["MAE", np.abs(error).mean()],
        ["RMSE", math.sqrt((error**2).mean())],
    ]
    return (
        head + "<p>Left: prediction against truth (the diagonal is perfect). Right: error against "
        "prediction.</p>"
        + _img(_residual_plot(y_true, y_pred), "predicted vs true and residuals")
        + _table(["", "value"], stats)
    )


def _notes_section(notes: Sequence[str]) -> str:
    items = "".join(f"<li>{_esc(n)}</li>" for n in notes) or "<li>None.</li>"
    return f"<h2>Notes</h2><ul>{items}</ul>"


def _skipped_section(skipped: Sequence[SkippedRow]) -> str:
    head = f"<h2>Skipped rows</h2><p>{len(skipped)} value(s) could not be used.</p>"
    if not skipped:
        return head
    shown = skipped[:MAX_SKIPPED_SHOWN]
    rows = [[s.row, s.column, s.problem, s.path or ""] for s in shown]
    more = (
        f"<p>Showing the first {MAX_SKIPPED_SHOWN}; {len(skipped) - MAX_SKIPPED_SHOWN} more.</p>"
        if len(skipped) > MAX_SKIPPED_SHOWN
        else ""
    )
    return head + _table(["row", "column", "problem", "file"], rows) + more


# --- plots -------------------------------------------------------------------------------------


def _leaderboard_plot(board: list[dict[str, Any]], metric: str) -> Figure:
    n = len(board)
    fig = Figure(figsize=(7, 0.45 * n + 1.4), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(n)[::-1]
    colours = [_KIND_COLOURS.get(str(r["kind"]), "#555555") for r in board]
    val = [_num(r.get("val")) for r in board]
    test = [_num(r.get("test")) for r in board]
    has_test = any(not math.isnan(t) for t in test)
    h = 0.38 if has_test else 0.7
    ax.barh(y + (h / 2 if has_test else 0), val, h, color=colours, alpha=0.55)
    if has_test:
        ax.barh(y - h / 2, test, h, color=colours)
    ax.set_yticks(y, [str(r["model"]) + (" (kept)" if r["chosen"] else "") for r in board])
    ax.set_xlabel(metric)
    values = [v for v in val + test if not math.isnan(v)]
    _zoom(ax, values)
    _compact_ticks(ax.xaxis, values)
    kinds = dict.fromkeys(str(r["kind"]) for r in board)
    handles = [Patch(color=_KIND_COLOURS.get(k, "#555555"), label=k) for k in kinds]
    handles.append(Patch(color="#999999", alpha=0.55, label="validation (light)"))
    if has_test:
        handles.append(Patch(color="#999999", label="test (dark)"))
    ax.legend(handles=handles, loc="lower right", fontsize="small")
    ax.grid(axis="x", alpha=0.3)
    return fig


def _robustness_plot(
    curve: pd.DataFrame, x: str, metric: str, reference: tuple[str, float] | None
) -> Figure:
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    for group, part in curve.groupby("group", sort=False):
        ax.plot(part[x], part["score"], marker="o", label=str(group))
    if reference is not None:
        label = f"best single modality: {reference[0]}"
        ax.axhline(reference[1], color="black", linestyle="--", linewidth=1, label=label)
    ax.set_xlabel("share of rows missing the group")
    ax.set_ylabel(metric)
    ax.set_xlim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def _attribution_plot(names: list[str], magnitude: np.ndarray) -> Figure:
    fig = Figure(figsize=(6, 0.4 * len(names) + 1.2), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(names))[::-1]
    ax.barh(y, magnitude, color="#4c78a8")
    ax.set_yticks(y, names)
    ax.set_xlabel("mean |contribution|")
    ax.grid(axis="x", alpha=0.3)
    return fig


def _confusion_plot(labels: list[Any], matrix: np.ndarray) -> Figure:
    n = len(labels)
    side = min(max(3.5, 0.45 * n + 2), 14)
    fig = Figure(figsize=(side + 1, side), layout="constrained")
    ax = fig.add_subplot()
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, shrink=0.8)
    names = [str(label) for label in labels]
    ax.set_xticks(range(n), names, rotation=60, ha="right")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 30:  # beyond that the numbers no longer fit in their cells
        for i in range(n):
            for j in range(n):
                colour = "white" if share[i, j] > 0.5 else "black"
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color=colour, size=8)
    return fig


def _residual_plot(y_true: np.ndarray, y_pred: np.ndarray) -> Figure:
    fig = Figure(figsize=(9, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    alpha = 0.6 if len(y_true) < 500 else 0.25
    left.scatter(y_true, y_pred, s=10, alpha=alpha)
    lo, hi = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    left.plot([lo, hi], [lo, hi], color="black", linewidth=1)
    left.set_xlabel("true")
    left.set_ylabel("predicted")
    right.scatter(y_pred, y_pred - y_true, s=10, alpha=alpha)
    right.axhline(0, color="black", linewidth=1)
    right.set_xlabel("predicted")
    right.set_ylabel("predicted - true")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        _compact_ticks(ax.xaxis, [lo, hi])
        _compact_ticks(ax.yaxis, [lo, hi])
    return fig


def _zoom(ax: Axes, values: list[float]) -> None:
    # Scores often differ in the second decimal; starting bars at 0 would hide the differences.
    if not values:
        return
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.15, abs(hi) * 0.01, 1e-9)
    start = 0.0 if lo >= 0 and lo < 0.3 * hi else lo - pad
    ax.set_xlim(start, hi + pad)


def _compact_ticks(axis: Axis, values: Sequence[float]) -> None:
    # Prices like 450000 overlap as tick labels; "450k" does not.
    if values and max(abs(v) for v in values) >= 1e4:
        axis.set_major_formatter(EngFormatter(sep=""))


# --- helpers -----------------------------------------------------------------------------------


def _metric_name(board: list[dict[str, Any]]) -> str:
    for row in board:
        if row.get("metric"):
            return str(row["metric"])
    return "score"


def _best_single(board: list[dict[str, Any]], split: str, metric: str) -> tuple[str, float] | None:
    scored = [
        (str(r["model"]), _num(r.get(split)))
        for r in board
        if r.get("kind") == "single" and not math.isnan(_num(r.get(split)))
    ]
    if not scored:
        return None
    pick = min if metric.lower() in LOWER_IS_BETTER else max
    return pick(scored, key=lambda item: item[1])


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    # No Software tag: the report then carries no URL at all, even inside the images.
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(fig: Figure, alt: str) -> str:
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{_png(fig)}">'


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_fmt(v) for v in value)
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "—" if math.isnan(value) else f"{float(value):.4g}"
    return str(value)


def _cell(value: Any) -> str:
    return _esc(_fmt(value))


def _table(header: Sequence[Any], rows: Sequence[Sequence[Any]], *, raw: bool = False) -> str:
    """An HTML table of formatted, escaped cells; ``raw``: the cells are HTML built already."""
    head = "".join(f"<th>{_cell(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if raw else _cell(c)}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; display: block; margin: 0.6rem 0; }
code { background: #f3f3f3; padding: 0 0.2rem; }
.meta { color: #666; }
"""


def _page(title: str, problem: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        f'<h1>{_esc(title)}</h1><p class="meta">Problem: {_esc(problem)}</p>\n'
        f"{body}\n</body></html>\n"
    )

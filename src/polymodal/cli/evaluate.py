"""``polymodal evaluate model/ DATA``: the saved model's metrics on labelled data."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def evaluate(
    model_dir: Path = typer.Argument(..., help="A folder written by `polymodal fit`."),
    data: Path = typer.Argument(..., help="Labelled table to score."),
    base: Path | None = typer.Option(None, help="Folder that relative paths start from."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    quiet: bool = typer.Option(False, "-q", help="No progress bars."),
) -> None:
    """Print accuracy, balanced accuracy, macro-F1, AUROC, log-loss (or MAE, RMSE, MAPE, R2)."""
    from polymodal.cli.options import report_skipped_cells
    from polymodal.predict import Predictor
    from polymodal.predict.persistence import json_safe

    model = Predictor.load(model_dir)
    model.progress = not quiet
    metrics = model.evaluate(data, base=base)
    for note in model.last_report_.notes[:10]:
        typer.echo(f"note: {note}", err=True)
    report_skipped_cells(model.last_report_.skipped)
    if as_json:
        # An undefined metric (AUROC of one class) is null: NaN is not JSON.
        typer.echo(json.dumps(json_safe(metrics), indent=2, allow_nan=False))
        return
    width = max(len(k) for k in metrics)
    for name, value in metrics.items():
        typer.echo(f"{name.ljust(width)}  {value:.4f}")

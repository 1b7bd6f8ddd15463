"""``polymodal predict model/ DATA -o preds.csv``: predictions, probabilities, attributions."""

from __future__ import annotations

from pathlib import Path

import typer


def predict(
    model_dir: Path = typer.Argument(..., help="A folder written by `polymodal fit`."),
    data: Path = typer.Argument(..., help="Table to predict (any subset of the training columns)."),
    output: Path = typer.Option(..., "-o", "--output", help="CSV file to write."),
    explain: bool = typer.Option(True, help="Add per-modality attribution columns (attr.*)."),
    base: Path | None = typer.Option(None, help="Folder that relative paths start from."),
    quiet: bool = typer.Option(False, "-q", help="No progress bars."),
) -> None:
    """Write one row per input row: prediction, class probabilities, modality attributions."""
    import pandas as pd

    from polymodal.atomic import atomic_output, check_writable
    from polymodal.cli.options import report_skipped_cells
    from polymodal.predict import Predictor

    check_writable(output, inputs=(data,))  # before the model runs, not after
    model = Predictor.load(model_dir)
    model.progress = not quiet
    features = model.features(data, base=base)
    report = model.last_report_
    outputs = model.outputs(features)
    frame = pd.DataFrame({"prediction": model.predictions_from(outputs)})
    if model.target_.is_classification:
        from polymodal.predict.train import softmax

        proba = softmax(outputs)
        for k, cls in enumerate(model.target_.classes):
            frame[f"proba.{cls}"] = proba[:, k]
    if explain:
        attributions = model.explain_features(features)
        frame = pd.concat([frame, attributions.reset_index(drop=True)], axis=1)
    with atomic_output(output) as tmp:
        frame.to_csv(tmp, index=False)
    for note in report.notes[:10]:
        typer.echo(f"note: {note}", err=True)
    report_skipped_cells(report.skipped, output)
    typer.echo(f"wrote {output} ({len(frame)} rows)", err=True)

"""``polymodal fit DATA --label y -o model/``: train a predictor, print the leaderboard, save it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from polymodal.cli.options import parse_encoders, parse_modalities

if TYPE_CHECKING:
    import pandas as pd

FUSION_HELP = (
    "early, late, hybrid, linear (early without a hidden layer, for small tables), or auto "
    "(each modality alone and every fusion; the best on validation kept)."
)


def fit(
    data: Path = typer.Argument(..., help="Training table (CSV/TSV/Parquet/JSONL) or folder."),
    label: str = typer.Option(..., "--label", "-y", help="The column to predict."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder to save the model in."),
    fusion: str = typer.Option("auto", help=FUSION_HELP),
    val: Path | None = typer.Option(None, help="Validation table (default: 20% of DATA)."),
    test: Path | None = typer.Option(None, help="Test table, scored by every candidate."),
    report: Path | None = typer.Option(None, help="Write an HTML report here."),
    problem: str | None = typer.Option(None, help="binary, multiclass or regression."),
    column: list[str] | None = typer.Option(None, help="Force a modality: NAME=MODALITY."),
    exclude: list[str] | None = typer.Option(None, help="Leave a column out."),
    encoder: list[str] | None = typer.Option(None, help="MODALITY=NAME_OR_FOLDER."),
    tokens: str = typer.Option("pooled", help="pooled, or sequence (hybrid reads token states)."),
    epochs: int = typer.Option(200, min=1),
    patience: int = typer.Option(
        30, min=1, help="Stop after at most this many epochs without a new best."
    ),
    batch_size: int = typer.Option(
        256, min=1, help="Rows per step; large batches are fast on CPU."
    ),
    hidden: int = typer.Option(128, min=1, help="Width of the fusion network."),
    reduce_to: int = typer.Option(
        128, min=0, help="Reduce wider embeddings to this many principal components (0: don't)."
    ),
    seed: int = typer.Option(0),
    fine_tune_blocks: int = typer.Option(
        0, min=0, help="Fine-tune the last K encoder blocks (slow on CPU; small data only)."
    ),
    refit: bool = typer.Option(
        True, help="Retrain the chosen model on training + validation rows at the end."
    ),
    ensemble: int = typer.Option(1, min=1, help="Average this many refits (seeds)."),
    describe: bool = typer.Option(
        False, help="Add each image/audio/video column's caption, OCR text or transcript as text."
    ),
    video_sound: bool = typer.Option(True, help="Give a video's audio track its own column."),
    base: Path | None = typer.Option(None, help="Folder that relative paths start from."),
    cache_dir: Path | None = typer.Option(None, help="Embedding cache folder."),
    quiet: bool = typer.Option(False, "-q", help="No progress bars."),
) -> None:
    """Train a multi-modal predictor on DATA and save it to OUTPUT."""
    from polymodal.predict import Predictor
    from polymodal.predict.auto import format_leaderboard
    from polymodal.predict.persistence import check_model_output

    # Before fitting, so a folder the save would refuse does not cost the whole fit.
    check_model_output(output)
    start = time.perf_counter()
    model = Predictor(
        label,
        fusion=fusion,
        problem=problem,
        columns=parse_modalities(column),
        exclude=exclude or [],
        encoders={str(m): e for m, e in parse_encoders(encoder).items()},
        tokens=tokens,
        epochs=epochs,
        patience=patience,
        batch_size=batch_size,
        hidden=hidden,
        reduce_to=reduce_to,
        seed=seed,
        fine_tune_blocks=fine_tune_blocks,
        refit=refit,
        ensemble=ensemble,
        describe=describe,
        video_sound=video_sound,
        cache_dir=str(cache_dir) if cache_dir else None,
        progress=not quiet,
    )
    train_in, val_in, test_in, fit_base = folder_splits(data, val, test, base)
    model.fit(train_in, val_in, test=test_in, base=fit_base)
    model.save(output)  # first: a closed pipe (`fit ... | head`) must not lose the model
    typer.echo(format_leaderboard(model.leaderboard_))
    emb = model.embed_report_
    encoded, cached = sum(emb.encoded.values()), sum(emb.cached.values())
    typer.echo(f"embeddings: {encoded} encoded, {cached} from cache", err=True)
    for note in model.notes_[:15]:
        typer.echo(f"note: {note}", err=True)
    if len(model.notes_) > 15:
        typer.echo(f"note: ... and {len(model.notes_) - 15} more (in config.json)", err=True)
    if model.skipped_:
        typer.echo(f"{len(model.skipped_)} cells skipped (listed in config.json):", err=True)
        for s in model.skipped_[:5]:
            typer.echo(f"  row {s.row}, column {s.column!r}: {s.problem}", err=True)
    if report is not None:
        model.report(report, test_in, base=fit_base)
        typer.echo(f"wrote report {report}", err=True)
    elapsed = time.perf_counter() - start
    typer.echo(f"saved {model.candidate_} model to {output} in {elapsed:.1f} s", err=True)


_SPLITS = {
    "train": ("train", "training"),
    "val": ("val", "valid", "validation"),
    "test": ("test", "testing"),
}


def folder_splits(
    data: Path, val: Path | None, test: Path | None, base: Path | None
) -> tuple[
    Path | pd.DataFrame, Path | pd.DataFrame | None, Path | pd.DataFrame | None, Path | None
]:
    """A folder laid out as train/ validation/ test/ is fitted on its own splits.

    The listing's ``split`` column names where each file lies; as a feature it would only tell
    the network which folder a photo came from. With no ``--val``/``--test`` given, the rows of
    train/ are fitted on, validation/ validates and test/ is scored; otherwise the column is
    dropped and the tables are used as given. Anything else passes through unchanged.
    """
    from polymodal.data.table import load_table
    from polymodal.errors import ConfigError

    if not data.is_dir():
        return data, val, test, base
    frame = load_table(data)
    if "split" not in frame.columns:
        return data, val, test, base
    split = frame.pop("split").fillna("").str.lower()
    fit_base = base or data
    if val is not None or test is not None:
        typer.echo("note: the folder's train/validation/test split is ignored (--val/--test given)")
        return frame, val, test, fit_base
    parts = {
        name: frame[split.isin(names)].reset_index(drop=True) for name, names in _SPLITS.items()
    }
    if parts["train"].empty:
        raise ConfigError(f"{data}: the folder has a split layout but no train/ files")
    typer.echo(
        "note: fitting on the folder's own splits: "
        + ", ".join(f"{len(p)} {name}" for name, p in parts.items() if len(p)),
        err=True,
    )
    return (
        parts["train"],
        parts["val"] if len(parts["val"]) else None,
        parts["test"] if len(parts["test"]) else None,
        fit_base,
    )

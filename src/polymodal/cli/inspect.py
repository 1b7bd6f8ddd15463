"""``polymodal inspect DATA``: the detected schema and the rows a job would skip."""

from __future__ import annotations

from pathlib import Path

import typer

from polymodal.cli.options import parse_modalities


def inspect(
    data: Path = typer.Argument(
        ..., help="A CSV/TSV/Parquet/JSONL table or a folder of media files."
    ),
    base: Path | None = typer.Option(None, help="Folder that relative paths start from."),
    column: list[str] | None = typer.Option(None, help="Force a modality: NAME=MODALITY."),
    exclude: list[str] | None = typer.Option(None, help="Leave a column out (e.g. the label)."),
    deep: bool = typer.Option(False, help="Also open and decode every media file."),
    encoding: str = typer.Option("utf-8", help="Text encoding of a CSV/TSV file."),
    limit: int = typer.Option(20, min=0, help="How many bad cells to print."),
) -> None:
    """Show each column's detected modality (and why) and the cells that cannot be used."""
    from polymodal.data.dataset import load_dataset
    from polymodal.data.validate import find_bad_cells

    ds = load_dataset(
        data,
        base=base,
        overrides=parse_modalities(column),
        exclude=exclude or [],
        encoding=encoding,
    )
    typer.echo(f"{len(ds)} rows, base folder {ds.base}")
    for spec in ds.schema.columns:
        n_missing = int(ds.frame[spec.name].isna().sum())
        typer.echo(
            f"  {spec.name:<24} {spec.modality!s:<12} {spec.reason}"
            + (f"; {n_missing} empty" if n_missing else "")
        )
    for name, why in ds.schema.excluded:
        typer.echo(f"  {name:<24} {'(not used)':<12} {why}")
    bad = find_bad_cells(ds.frame, ds.schema, base=ds.base, deep=deep)
    typer.echo(f"\n{len(bad)} bad cells" + (":" if bad else ""))
    for s in bad[:limit]:
        typer.echo(
            f"  row {s.row}, column {s.column!r}: {s.problem}" + (f" ({s.path})" if s.path else "")
        )
    if len(bad) > limit:
        typer.echo(f"  ... and {len(bad) - limit} more")

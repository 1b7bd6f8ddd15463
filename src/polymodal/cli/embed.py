"""``polymodal embed DATA -o out.parquet``: embed every text and media column, with a cache."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from polymodal.cli.options import parse_encoders, parse_modalities


def embed(
    data: Path = typer.Argument(
        ..., help="A CSV/TSV/Parquet/JSONL table or a folder of media files."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Parquet file to write."),
    base: Path | None = typer.Option(None, help="Folder that relative paths start from."),
    column: list[str] | None = typer.Option(None, help="Force a modality: NAME=MODALITY."),
    only: list[str] | None = typer.Option(None, help="Embed only these columns."),
    exclude: list[str] | None = typer.Option(None, help="Leave a column out."),
    encoder: list[str] | None = typer.Option(
        None, help="MODALITY=NAME_OR_FOLDER, e.g. image=/models/clip (default: the shipped ones)."
    ),
    tokens: bool = typer.Option(
        False, help="Also cache token states (for cross-attention fusion)."
    ),
    batch_size: int = typer.Option(32, min=1),
    workers: int | None = typer.Option(None, min=1, help="Decoding threads (default: CPU count)."),
    cache_dir: Path | None = typer.Option(
        None, help="Embedding cache folder (default ~/.cache/polymodal)."
    ),
    encoding: str = typer.Option("utf-8", help="Text encoding of a CSV/TSV file."),
    quiet: bool = typer.Option(False, "-q", help="No progress bars."),
) -> None:
    """Embed DATA and write one vector column per text/media column (null where unusable)."""
    from polymodal.atomic import check_writable
    from polymodal.cache.embed import embed_table
    from polymodal.cache.store import EmbeddingCache
    from polymodal.data.dataset import load_dataset
    from polymodal.io.embeddings import write_embeddings

    t0 = time.perf_counter()
    check_writable(output, inputs=(data,))  # before the embedding, not after
    ds = load_dataset(
        data,
        base=base,
        overrides=parse_modalities(column),
        exclude=exclude or [],
        columns=only,
        encoding=encoding,
    )
    cache = EmbeddingCache(cache_dir / "embeddings.sqlite3" if cache_dir else None)
    result = embed_table(
        ds.frame,
        ds.schema,
        base=ds.base,
        encoders=parse_encoders(encoder),
        cache=cache,
        tokens=tokens,
        batch_size=batch_size,
        workers=workers,
        progress=not quiet,
    )
    skipped_path = write_embeddings(result, output)
    elapsed = time.perf_counter() - t0
    typer.echo(result.report.summary(), err=True)
    for note in result.report.notes[:10]:
        typer.echo(f"note: {note}", err=True)
    if len(result.report.notes) > 10:
        typer.echo(f"note: ... and {len(result.report.notes) - 10} more notes", err=True)
    if skipped_path is not None:
        n = len(result.report.skipped)
        typer.echo(
            f"{n} cells skipped (rows kept, marked absent); reasons in {skipped_path}", err=True
        )
        for s in result.report.skipped[:5]:
            typer.echo(f"  row {s.row}, column {s.column!r}: {s.problem}", err=True)
    typer.echo(f"wrote {output} ({len(ds)} rows) in {elapsed:.1f} s", err=True)

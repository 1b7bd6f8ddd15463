"""``polymodal index DIR --db store/``: build or update a search store over a folder."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import typer

from polymodal.cli.options import parse_assignments
from polymodal.modality import Modality

ALIGNMENT_HELP = (
    "SPACE=FOLDER: use your own alignment (from `polymodal align`) for a space "
    "(image-text or audio-text) instead of the shipped one."
)


def index(
    folder: Path = typer.Argument(..., help="The folder of photos, sounds, videos and texts."),
    db: Path = typer.Option(..., "--db", help="The search store folder (created if absent)."),
    alignment: list[str] | None = typer.Option(None, help=ALIGNMENT_HELP),
    batch_size: int = typer.Option(64, min=1, help="Files embedded and written per commit."),
    cache_dir: Path | None = typer.Option(
        None, help="Embedding cache folder (default ~/.cache/polymodal)."
    ),
    describe: bool = typer.Option(
        False,
        help="Store each new or changed file's caption, text in the image or transcript, "
        "for full-text matching beside vector search (seconds per file).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    quiet: bool = typer.Option(False, "-q", help="No progress bars."),
) -> None:
    """Index FOLDER into the store: only new or changed files are embedded, deleted ones leave.

    Safe to interrupt at any moment: run it again to continue.
    """
    from polymodal.cache.store import EmbeddingCache
    from polymodal.search.engine import SearchEngine
    from polymodal.search.store import REPORT_FILE

    engine = SearchEngine.open(
        db,
        create=True,
        root=folder,
        alignments=parse_assignments(alignment, "--alignment"),
        cache=EmbeddingCache(cache_dir / "embeddings.sqlite3") if cache_dir else None,
        batch_size=batch_size,
    )
    report = engine.index(progress=not quiet, describe=_describer() if describe else None)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        typer.echo(report.summary())
        for s in report.skipped[:10]:
            typer.echo(f"  skipped {s.path}: {s.reason}")
        if len(report.skipped) > 10:
            typer.echo(f"  ... and {len(report.skipped) - 10} more")
        typer.echo(f"report: {engine.store.folder / REPORT_FILE}")
    if report.skipped and not (report.added or report.updated or report.unchanged):
        # as classify and describe do: a run where every file failed is a failed run
        typer.echo(f"none of the {len(report.skipped)} files could be indexed", err=True)
        raise typer.Exit(1)


def _describer() -> Callable[[Path, Modality], str | None]:
    """The default describer as the search indexer's ``describe(path, modality)`` hook.

    Text files are left to the indexer, which stores their content (``describe_values`` takes
    text cells as the text itself, and here the cell would be the file's path).
    """
    from polymodal.describe import describe_values

    def describe(path: Path, modality: Modality) -> str | None:
        if Modality(modality) == Modality.TEXT:
            return None
        return describe_values([str(path)], modality)[0]

    return describe

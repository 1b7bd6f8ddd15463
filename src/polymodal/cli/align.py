"""``polymodal align PAIRS --a image --b text -o aligned/``: contrastive alignment of columns."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import typer

from polymodal.cli.options import parse_modalities

if TYPE_CHECKING:
    from polymodal.cache.embed import ColumnEmbeddings, EmbedReport
    from polymodal.cache.store import EmbeddingCache
    from polymodal.data.dataset import Dataset
    from polymodal.encoders.base import Encoder


def align(
    pairs: Path = typer.Argument(..., help="A table (CSV/TSV/Parquet/JSONL) with the two columns."),
    a: str = typer.Option(..., "--a", help="First column (e.g. the images)."),
    b: str = typer.Option(..., "--b", help="Second column (e.g. their captions)."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder to save the alignment in."),
    a_encoder: str | None = typer.Option(None, help="Encoder of column a (default: shipped one)."),
    b_encoder: str | None = typer.Option(None, help="Encoder of column b (default: shipped one)."),
    loss: str = typer.Option("infonce", help="infonce (CLIP's) or siglip (sigmoid)."),
    lock: str = typer.Option("auto", help="Side whose space is the target: auto, a, b, none."),
    epochs: int = typer.Option(100, min=1),
    patience: int = typer.Option(10, min=1, help="Stop after this many epochs without gain."),
    batch_size: int = typer.Option(1024, min=2),
    lr: float = typer.Option(1e-3, min=0.0),
    val_fraction: float = typer.Option(0.1, min=0.0, max=0.9, help="Pairs held out."),
    unfreeze: int = typer.Option(0, "--unfreeze", min=0, help="Also fine-tune the last K blocks."),
    seed: int = typer.Option(0),
    base: Path | None = typer.Option(None, help="Folder that relative paths start from."),
    column: list[str] | None = typer.Option(None, help="Force a modality: NAME=MODALITY."),
    cache_dir: Path | None = typer.Option(None, help="Embedding cache folder."),
    encoding: str = typer.Option("utf-8", help="Text encoding of a CSV/TSV file."),
    quiet: bool = typer.Option(False, "-q", help="No progress bars."),
) -> None:
    """Train heads that put columns A and B in one space; rows missing a side are skipped."""
    from polymodal.align.losses import build_loss
    from polymodal.align.retrieval import format_metrics
    from polymodal.align.train import Lock, train_alignment
    from polymodal.errors import ConfigError, PolymodalError

    t0 = time.perf_counter()
    if a == b:
        raise ConfigError(f"--a and --b name the same column {a!r}: align two different columns")
    # options and the output place are checked before minutes of embedding, not after
    build_loss(loss)
    if lock not in get_args(Lock):
        raise ConfigError(f"--lock must be one of {', '.join(get_args(Lock))}, not {lock!r}")
    check_output_folder(output)
    ds = load_pairs(pairs, a, b, base=base, column=column, encoding=encoding)
    cache = open_cache(cache_dir)
    encoders = {
        name: column_encoder(ds, name, choice) for name, choice in ((a, a_encoder), (b, b_encoder))
    }
    if unfreeze:
        inputs, skipped = _decoded_pairs(ds, a, b, encoders)
    else:
        cols = {name: embed_column(ds, name, encoders[name], cache, quiet) for name in (a, b)}
        inputs = (cols[a][0], cols[b][0])
        skipped = skipped_rows(cols[a], cols[b])
    report_skipped(skipped, len(ds), what="pairs")
    try:
        al, history = train_alignment(
            inputs[0],
            inputs[1],
            a_encoder=encoders[a],
            b_encoder=encoders[b],
            loss=loss,
            lock=lock,  # type: ignore[arg-type]
            epochs=epochs,
            patience=patience,
            batch_size=batch_size,
            lr=lr,
            val_fraction=val_fraction,
            unfreeze_blocks=unfreeze,
            seed=seed,
            checkpoint=output,
            progress=not quiet,
        )
    except PolymodalError:
        if skipped:  # the reasons matter most when too few pairs were left to train on
            typer.echo(f"skipped rows and reasons: {write_skipped(skipped, output)}", err=True)
        raise
    typer.echo(
        f"trained on {history.n_train} pairs, held out {history.n_val}; best epoch "
        f"{history.best_epoch} of {len(history.epochs)} ({history.seconds:.1f} s training)"
    )
    if history.best_metrics is not None:
        typer.echo(format_metrics(history.best_metrics, a=a, b=b))
    typer.echo(f"saved {al!r} to {output} in {time.perf_counter() - t0:.1f} s")
    if skipped:
        # every skipped row with its reason, so nothing given is lost from view
        typer.echo(f"skipped rows and reasons: {write_skipped(skipped, output)}", err=True)
    else:
        (output / "skipped.csv").unlink(missing_ok=True)  # a re-run's stale list would mislead


def report_skipped(skipped: list[tuple[int, str]], total: int, *, what: str) -> None:
    """One line with the count, then the first five rows and their reasons."""
    from polymodal.cli.options import print_skipped

    if skipped:
        print_skipped(
            f"{len(skipped)} of {total} {what} skipped (a side missing or unreadable)",
            [(f"row {row}", problem) for row, problem in skipped],
        )


def write_skipped(skipped: list[tuple[int, str]], folder: Path) -> Path:
    """``folder/skipped.csv``: every skipped row (0-based, as in the table) and its reason."""
    import pandas as pd

    from polymodal.atomic import atomic_output

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "skipped.csv"
    with atomic_output(path) as tmp:
        pd.DataFrame(skipped, columns=["row", "problem"]).to_csv(tmp, index=False)
    return path


def check_output_folder(output: Path) -> None:
    """Refuse an output that is a file, a folder holding something else, or cannot be made,
    before any work is done."""
    from polymodal.align.model import check_replaceable
    from polymodal.errors import ConfigError

    if output.is_dir():
        (output / "skipped.csv").unlink(missing_ok=True)  # ours, from an earlier run
    check_replaceable(output)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"-o {output}: cannot create the folder ({err.strerror})") from None


def load_pairs(
    pairs: Path,
    a: str,
    b: str,
    *,
    base: Path | None,
    column: list[str] | None,
    encoding: str,
) -> Dataset:
    """The table restricted to columns ``a`` and ``b``.

    A column of short repeated words (detected as categorical: class names, tags) is read as
    text, since that is what aligning it means; ``--column NAME=MODALITY`` still decides.
    """
    from polymodal.data.dataset import load_dataset
    from polymodal.errors import ConfigError
    from polymodal.modality import Modality

    overrides: dict[str, Modality] = dict(parse_modalities(column))
    ds = load_dataset(pairs, base=base, overrides=overrides, columns=[a, b], encoding=encoding)
    for name in (a, b):
        if name not in ds.schema.names():
            reasons = dict(ds.schema.excluded)
            raise ConfigError(f"column {name!r} cannot be used: {reasons.get(name, 'unused')}")
    words = [
        name
        for name in (a, b)
        if name not in overrides
        and ds.schema.modality(name) == Modality.CATEGORICAL
        and ds.frame[name].dropna().map(lambda v: isinstance(v, str)).all()
    ]
    if words:
        overrides.update({name: Modality.TEXT for name in words})
        ds = load_dataset(pairs, base=base, overrides=overrides, columns=[a, b], encoding=encoding)
    return ds


def open_cache(cache_dir: Path | None) -> EmbeddingCache:
    from polymodal.cache.store import EmbeddingCache

    return EmbeddingCache(cache_dir / "embeddings.sqlite3" if cache_dir else None)


def column_encoder(ds: Dataset, name: str, choice: str | None) -> Encoder:
    """The encoder for a column: ``choice`` (name or folder) or the modality's default."""
    from polymodal.encoders.registry import build_encoder, default_encoder_name
    from polymodal.errors import ConfigError

    modality = ds.schema.modality(name)
    if modality.is_tabular:
        raise ConfigError(
            f"column {name!r} holds {modality} values: alignment needs text, image, audio or video"
        )
    return build_encoder(choice or default_encoder_name(modality), modality=modality)


def embed_column(
    ds: Dataset, name: str, encoder: Encoder, cache: EmbeddingCache, quiet: bool
) -> tuple[ColumnEmbeddings, EmbedReport]:
    """One column's cached embeddings and the report of what was skipped."""
    from polymodal.cache.embed import embed_table
    from polymodal.data.schema import ColumnSpec, Schema

    spec = ColumnSpec(name, ds.schema.modality(name), "chosen")
    result = embed_table(
        ds.frame,
        Schema((spec,)),
        base=ds.base,
        encoders={spec.modality: encoder},
        cache=cache,
        progress=not quiet,
    )
    return result.columns[name], result.report


def skipped_rows(*columns: tuple[ColumnEmbeddings, EmbedReport]) -> list[tuple[int, str]]:
    """Rows missing on any side, with the first reason found."""
    reasons: dict[int, str] = {}
    for col, report in columns:
        for s in report.skipped:
            reasons.setdefault(s.row, f"column {s.column!r}: {s.problem}")
        for row in (~col.present).nonzero()[0]:
            reasons.setdefault(int(row), f"column {col.column!r}: empty")
    return sorted(reasons.items())


def _decoded_pairs(
    ds: Dataset, a: str, b: str, encoders: dict[str, Encoder]
) -> tuple[tuple[list[Any], list[Any]], list[tuple[int, str]]]:
    """Decoded items of both columns for fine-tuning; rows failing on either side skipped."""
    from polymodal.data.paths import resolve_path
    from polymodal.errors import InputError

    out: dict[str, list[Any]] = {a: [], b: []}
    skipped: list[tuple[int, str]] = []
    for row in range(len(ds)):
        items = {}
        for name in (a, b):
            value = ds.frame.at[row, name]
            if value is None or value != value or not str(value).strip():
                skipped.append((row, f"column {name!r}: empty"))
                break
            try:
                cell = str(value)
                if ds.schema.modality(name).is_media:
                    cell = str(resolve_path(cell, ds.base))
                items[name] = encoders[name].decode(cell)
            except InputError as err:
                skipped.append((row, f"column {name!r}: {err.problem}"))
                break
        else:
            for name in (a, b):
                out[name].append(items[name])
    return (out[a], out[b]), skipped

"""``polymodal eval zeroshot|retrieval``: accuracy and Recall@K with 95% confidence intervals."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import typer

from polymodal.cli.classify import ALIGNMENT_HELP, EXPAND_HELP, TRANSDUCTIVE_HELP

if TYPE_CHECKING:
    import pandas as pd

    from polymodal.align.zeroshot import Space
    from polymodal.cache.embed import EmbedReport
    from polymodal.data.dataset import Dataset
    from polymodal.data.schema import Schema
    from polymodal.modality import Modality

eval_app = typer.Typer(
    help="Evaluate zero-shot classification and cross-modal retrieval.", no_args_is_help=True
)


@eval_app.command("zeroshot")
def zeroshot(
    data: Path = typer.Argument(..., help="A table, or a folder of media (class subfolders)."),
    label: str = typer.Option(..., help="Column holding the true class (a folder: 'folder')."),
    column: str | None = typer.Option(None, help="The image/audio column (default: the only one)."),
    labels: str | None = typer.Option(None, help="Class names (default: the label column's)."),
    template: list[str] | None = typer.Option(None, "--template", "--templates"),
    alignment: str = typer.Option("default", help=ALIGNMENT_HELP),
    clip: Path | None = typer.Option(None, help="A CLIP/CLAP checkpoint folder."),
    transductive: bool = typer.Option(False, help=TRANSDUCTIVE_HELP.replace("files", "rows")),
    expand_labels: bool = typer.Option(True, help=EXPAND_HELP),
    base: Path | None = typer.Option(None, help="Folder that relative paths start from."),
    cache_dir: Path | None = typer.Option(None, help="Embedding cache folder."),
    encoding: str = typer.Option("utf-8", help="Text encoding of a CSV/TSV file."),
    quiet: bool = typer.Option(False, "-q", help="No progress bars."),
) -> None:
    """Zero-shot accuracy on a labelled set: each row's media against every class name."""
    from polymodal.align.retrieval import proportion
    from polymodal.align.transductive import enough_inputs
    from polymodal.align.zeroshot import ZeroShotClassifier, check_labels, media_encoder
    from polymodal.cli.align import embed_column, open_cache
    from polymodal.cli.classify import load_space, probabilities
    from polymodal.data.dataset import load_dataset
    from polymodal.data.paths import resolve_path
    from polymodal.errors import ConfigError

    t0 = time.perf_counter()
    ds = load_dataset(data, base=base, exclude=[label], encoding=encoding)
    name = _media_column(ds.schema, column)
    truth = class_names(ds.frame[label])
    has_label = truth != ""
    names = check_labels(labels) if labels else check_labels(sorted(set(truth[has_label])))
    unknown = sorted(set(truth[has_label]) - set(names))
    if unknown:
        raise ConfigError(f"label column {label!r} holds classes not in --labels: {unknown[:5]}")
    modality = ds.schema.modality(name)
    space = load_space(alignment, clip, modality)
    zs = ZeroShotClassifier(
        names, template or None, alignment=space, modality=modality, expand_labels=expand_labels
    )
    col, report = embed_column(
        ds, name, media_encoder(space, zs.side), open_cache(cache_dir), quiet
    )
    use = col.present & has_label.to_numpy()
    skipped = _zeroshot_skipped(ds.frame[name], has_label.to_numpy(), col.present, report)
    if not use.any():
        _report_skipped(skipped, len(ds))
        raise ConfigError("no row has both a usable file and a label")
    values = [
        str(resolve_path(v, ds.base)) if u else "" for v, u in zip(ds.frame[name], use, strict=True)
    ]
    probs = probabilities(zs, col, np.flatnonzero(use), values, transductive=transductive)
    pred = np.array(names)[probs.argmax(axis=1)]
    actual = truth.to_numpy()[use]
    acc = proportion(int((pred == actual).sum()), len(actual))
    how = "transductive " if transductive and enough_inputs(len(actual), len(names)) else ""
    typer.echo(f"{how}zero-shot accuracy on {len(actual)} rows ({len(names)} classes): {acc}")
    typer.echo(f"  chance {1 / len(names):.1%}; templates: {' | '.join(zs.templates)}")
    for cls in names:
        mask = actual == cls
        if mask.any():
            typer.echo(f"  {cls:<20} {proportion(int((pred[mask] == cls).sum()), int(mask.sum()))}")
    _report_skipped(skipped, len(ds))
    typer.echo(f"done in {time.perf_counter() - t0:.1f} s", err=True)


@eval_app.command("retrieval")
def retrieval(
    pairs: Path = typer.Argument(..., help="A table with the two columns."),
    a: str = typer.Option(..., "--a", help="Query column (e.g. images)."),
    b: str = typer.Option(..., "--b", help="Column to retrieve (e.g. captions)."),
    alignment: str = typer.Option("default", help=ALIGNMENT_HELP),
    clip: Path | None = typer.Option(None, help="A CLIP/CLAP checkpoint folder."),
    k: list[int] | None = typer.Option(None, "-k", help="Recall@K cut-offs (default 1, 5, 10)."),
    base: Path | None = typer.Option(None, help="Folder that relative paths start from."),
    column: list[str] | None = typer.Option(None, help="Force a modality: NAME=MODALITY."),
    cache_dir: Path | None = typer.Option(None, help="Embedding cache folder."),
    encoding: str = typer.Option("utf-8", help="Text encoding of a CSV/TSV file."),
    quiet: bool = typer.Option(False, "-q", help="No progress bars."),
) -> None:
    """Recall@K from A to B and back, every row's pair the target (equal cells count too)."""
    from polymodal.align.retrieval import duplicate_groups, format_metrics, retrieval_metrics
    from polymodal.align.zeroshot import media_encoder
    from polymodal.cli.align import (
        embed_column,
        load_pairs,
        open_cache,
        report_skipped,
        skipped_rows,
    )
    from polymodal.cli.classify import load_space
    from polymodal.errors import ConfigError
    from polymodal.modality import Modality

    if a == b:
        raise ConfigError(f"--a and --b name the same column {a!r}")
    ks = tuple(k or (1, 5, 10))
    if min(ks) < 1:
        raise ConfigError(f"-k must be at least 1 (Recall@K counts the first K), got {min(ks)}")
    ds = load_pairs(pairs, a, b, base=base, column=column, encoding=encoding)
    mods = {name: ds.schema.modality(name) for name in (a, b)}
    media = next((m for m in mods.values() if m != Modality.TEXT), Modality.TEXT)
    space = load_space(alignment, clip, media)
    sides = _sides(space, mods[a], mods[b])
    cache = open_cache(cache_dir)
    cols = {
        name: embed_column(ds, name, media_encoder(space, side), cache, quiet)
        for name, side in zip((a, b), sides, strict=True)
    }
    report_skipped(skipped_rows(cols[a], cols[b]), len(ds), what="pairs")
    use = cols[a][0].present & cols[b][0].present
    if use.sum() < 2:
        raise ConfigError(f"{int(use.sum())} rows have both columns: retrieval needs at least 2")
    z = [
        _space_vectors(space, side, ds, name, cols[name][0].pooled, use)
        for name, side in zip((a, b), sides, strict=True)
    ]
    # as in training: rows whose frozen vectors are equal (the same file under two names,
    # the same caption) are one answer
    groups = duplicate_groups(cols[a][0].pooled[use], cols[b][0].pooled[use])
    metrics = retrieval_metrics(z[0], z[1], ks=ks, groups=groups)
    typer.echo(format_metrics(metrics, a=a, b=b, what="pairs"))


def _space_vectors(
    space: Space, side: str, ds: Dataset, name: str, pooled: np.ndarray, use: np.ndarray
) -> np.ndarray:
    """Unit vectors of the used rows of one column: from its cached frozen vectors, or, where
    the alignment fine-tuned that side's encoder, through that encoder from the cells."""
    if side not in getattr(space, "tuned", {}):
        return space.embed(side, pooled[use])
    cells = [str(v) for v in ds.frame[name].to_numpy()[use]]
    return space.encode_values(side, cells, base=ds.base)


def class_names(column: pd.Series) -> pd.Series:
    """The label column as class-name strings, "" where absent. Whole numbers read as floats
    (pandas does that to an integer column with a blank) stay "3", not "3.0"."""
    import pandas as pd

    present = column.notna()
    if pd.api.types.is_float_dtype(column) and present.any():
        values = column[present]
        if bool((values == values.round()).all()):
            return column.map(lambda v: "" if pd.isna(v) else str(int(v)))
    return column.map(lambda v: "" if pd.isna(v) else str(v).strip())


def _zeroshot_skipped(
    media: pd.Series, has_label: np.ndarray, present: np.ndarray, report: EmbedReport
) -> list[tuple[str, str]]:
    """(where, why) of every row left out: named by its file when it has one, else its row."""
    unreadable = {s.row: s.problem for s in report.skipped}
    out = []
    for row, (value, labelled, ok) in enumerate(zip(media, has_label, present, strict=True)):
        if labelled and ok:
            continue
        where = f"row {row}" if not isinstance(value, str) or not value.strip() else value
        if not ok:
            out.append((where, unreadable.get(row, "no file")))
        else:
            out.append((where, "no label"))
    return out


def _report_skipped(skipped: list[tuple[str, str]], total: int, most: int = 20) -> None:
    """Every skipped row and why, up to ``most`` lines, then a count by reason."""
    from collections import Counter

    from polymodal.cli.options import print_skipped

    if not skipped:
        return
    rest = print_skipped(f"{len(skipped)} of {total} rows skipped", skipped, most=most)
    if rest:
        counts = Counter(why.split(":")[0] for _, why in rest)
        typer.echo(
            "  and " + ", ".join(f"{n} more {why}" for why, n in counts.most_common()), err=True
        )


def _media_column(schema: Schema, column: str | None) -> str:
    from polymodal.errors import ConfigError
    from polymodal.modality import Modality

    names = [c.name for c in schema.columns if c.modality in (Modality.IMAGE, Modality.AUDIO)]
    if column is not None:
        if column not in names:
            raise ConfigError(f"column {column!r} is not an image or audio column ({names})")
        return column
    if len(names) != 1:
        raise ConfigError(
            f"pass --column: the table has {len(names)} image/audio columns ({names})"
        )
    return names[0]


def _sides(space: Space, mod_a: Modality, mod_b: Modality) -> tuple[str, str]:
    """Which side of the space each column goes through (by modality, in order when equal)."""
    if mod_a == mod_b:
        return ("a", "b")
    return space.side_of(mod_a), space.side_of(mod_b)

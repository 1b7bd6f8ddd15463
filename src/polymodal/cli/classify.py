"""``polymodal classify FILES --labels "cat,dog"``: zero-shot classification of images or audio."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    import numpy as np

    from polymodal.align.zeroshot import Space, ZeroShotClassifier
    from polymodal.cache.embed import ColumnEmbeddings
    from polymodal.modality import Modality

ALIGNMENT_HELP = (
    "'default' (shipped), 'conse', a folder saved by `polymodal align`, or a CLIP folder."
)
EXPAND_HELP = (
    "Make folder-style labels readable ('longsleeve' -> 'long sleeve') and add each label's "
    "WordNet gloss as a second phrase; --no-expand-labels uses the labels as given."
)
TRANSDUCTIVE_HELP = (
    "Let the files, classified together, refine the classes from their own clusters "
    "(no labels; needs 5 files per label, else each file is classified on its own)."
)


def classify(
    files: list[Path] = typer.Argument(..., help="Image or audio files, or folders of them."),
    labels: str = typer.Option(..., help='Class names, comma-separated: "cat,dog,bird".'),
    template: list[str] | None = typer.Option(
        None, "--template", "--templates", help="Prompt with {} for the label; repeatable."
    ),
    alignment: str = typer.Option("default", help=ALIGNMENT_HELP),
    clip: Path | None = typer.Option(
        None, help="A CLIP/CLAP checkpoint folder (same as --alignment)."
    ),
    top: int = typer.Option(1, min=1, help="How many labels to print per file."),
    transductive: bool = typer.Option(False, help=TRANSDUCTIVE_HELP),
    expand_labels: bool = typer.Option(True, help=EXPAND_HELP),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    cache_dir: Path | None = typer.Option(None, help="Embedding cache folder."),
    quiet: bool = typer.Option(False, "-q", help="No progress bars."),
) -> None:
    """Print the most likely labels of each file; unreadable files are reported and skipped."""
    from polymodal.align.model import embed_values
    from polymodal.align.zeroshot import ZeroShotClassifier, check_labels, media_encoder
    from polymodal.cli.align import open_cache
    from polymodal.cli.options import expand_folders
    from polymodal.modality import modality_of_path

    names = check_labels(labels)  # before any model loads: a bad list fails fast
    paths = expand_folders(files, modality_of_path, "image, audio or video")
    modality = files_modality(paths)
    space = load_space(alignment, clip, modality)
    zs = ZeroShotClassifier(
        names, template or None, alignment=space, modality=modality, expand_labels=expand_labels
    )
    encoder = media_encoder(space, zs.side)
    col, report = embed_values(
        encoder, [str(p) for p in paths], cache=open_cache(cache_dir), progress=not quiet
    )
    for s in report.skipped:
        typer.echo(f"skipped {s.path or paths[s.row]}: {s.problem}", err=True)
    rows = col.present.nonzero()[0]
    if len(rows) == 0:
        typer.echo(f"none of the {len(paths)} files could be read", err=True)
        raise typer.Exit(1)
    probs = probabilities(zs, col, rows, [str(p) for p in paths], transductive=transductive)
    k = min(top, len(names))
    for r, p in zip(rows, probs, strict=True):
        best = p.argsort()[::-1][:k]
        if as_json:
            record = {
                "file": str(paths[r]),
                "labels": {names[i]: round(float(p[i]), 4) for i in best},
            }
            typer.echo(json.dumps(record))
        else:
            cells = "\t".join(f"{names[i]}\t{p[i]:.3f}" for i in best)
            typer.echo(f"{paths[r]}\t{cells}")
    if report.skipped:
        typer.echo(f"{len(report.skipped)} of {len(paths)} files skipped", err=True)


def files_modality(paths: list[Path]) -> Modality:
    """The one media modality the files' extensions say (image unless all are audio)."""
    from polymodal.errors import ConfigError
    from polymodal.modality import Modality, modality_of_path

    kinds = {modality_of_path(p.name) for p in paths} - {None}
    if len(kinds) > 1:
        raise ConfigError(
            f"the files mix {', '.join(sorted(map(str, kinds)))}: classify one modality at a time"
        )
    return kinds.pop() if kinds else Modality.IMAGE


def load_space(alignment: str, clip: Path | None, modality: Modality) -> Space:
    """The space ``--alignment`` or ``--clip`` names; both at once is refused, not guessed."""
    from polymodal.align.zeroshot import resolve_space
    from polymodal.errors import ConfigError

    if clip is not None and alignment != "default":
        raise ConfigError(
            f"--clip {clip} and --alignment {alignment} both name a space: give one of them"
        )
    return resolve_space(str(clip or alignment), modality)


def probabilities(
    zs: ZeroShotClassifier,
    col: ColumnEmbeddings,
    rows: np.ndarray,
    values: list[str],
    *,
    transductive: bool = False,
) -> np.ndarray:
    """Class probabilities of the given rows: from cached vectors, or through the fine-tuned
    encoder when the alignment fine-tuned that side (cached vectors are the frozen encoder's).
    A transductive run that falls back to inductive says so on stderr."""
    import warnings

    from polymodal.align.zeroshot import TransductiveFallback

    inputs = [values[r] for r in rows] if zs.side in getattr(zs.space, "tuned", {}) else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TransductiveFallback)
        if inputs is not None:
            probs = zs.predict_proba(inputs, transductive=transductive)
        else:
            probs = zs.predict_proba(col.pooled[rows], transductive=transductive)
    for w in caught:
        if issubclass(w.category, TransductiveFallback):
            typer.echo(str(w.message), err=True)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return probs

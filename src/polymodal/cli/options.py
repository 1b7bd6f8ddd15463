"""Parsing of the options several verbs share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from polymodal.errors import ConfigError
from polymodal.modality import Modality

if TYPE_CHECKING:
    from polymodal.cache.embed import SkippedRow


def parse_assignments(items: list[str] | None, what: str) -> dict[str, str]:
    """Turn ``["photo=image", "zip=categorical"]`` into a dict, with a clear error on bad syntax."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ConfigError(f"{what} must look like NAME=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def parse_modalities(items: list[str] | None) -> dict[str, Modality]:
    """``--column NAME=MODALITY`` overrides."""
    out = {}
    for name, value in parse_assignments(items, "--column").items():
        try:
            out[name] = Modality(value.lower())
        except ValueError:
            choices = ", ".join(m.value for m in Modality)
            raise ConfigError(
                f"--column {name}={value}: unknown modality; use one of {choices}"
            ) from None
    return out


def parse_encoders(items: list[str] | None) -> dict[Modality, str]:
    """``--encoder MODALITY=NAME_OR_FOLDER`` choices."""
    out = {}
    for key, value in parse_assignments(items, "--encoder").items():
        try:
            out[Modality(key.lower())] = value
        except ValueError:
            raise ConfigError(f"--encoder {key}={value}: {key!r} is not a modality") from None
    return out


def expand_folders(files: list[Path], handled: Callable[[str], object], kinds: str) -> list[Path]:
    """Files as given (unreadable ones too: the verb reports them); each folder replaced by the
    files under it whose names ``handled`` accepts, sorted; hidden files and everything in
    hidden folders (``.git``) skipped. A folder with none is an error naming it and the
    ``kinds`` looked for."""
    out: list[Path] = []
    for f in files:
        if not f.is_dir():
            out.append(f)
            continue
        found = sorted(
            p
            for p in f.rglob("*")
            if not any(part.startswith(".") for part in p.relative_to(f).parts)
            # a dangling link is kept, so that the verb reports it instead of losing it
            and (p.is_file() or (p.is_symlink() and not p.exists()))
            and handled(p.name)
        )
        if not found:
            raise ConfigError(f"{f}: no {kinds} files found")
        out.extend(found)
    return out


def report_skipped_cells(skipped: Sequence[SkippedRow], output: Path | None = None) -> None:
    """Say how many cells were skipped and show the first five; with ``output``, every one goes
    to ``<output stem>.skipped.csv`` beside it (a stale list from an earlier run is removed)."""
    import typer

    listed = None if output is None else output.with_name(output.stem + ".skipped.csv")
    if not skipped:
        if listed is not None:
            listed.unlink(missing_ok=True)
        return
    where = ""
    if listed is not None:
        import pandas as pd

        from polymodal.atomic import atomic_output

        with atomic_output(listed) as tmp:
            pd.DataFrame([s.__dict__ for s in skipped]).to_csv(tmp, index=False)
        where = f"; reasons in {listed}"
    rest = print_skipped(
        f"{len(skipped)} cells skipped (their modality absent){where}",
        [(f"row {s.row}, column {s.column!r}", s.problem) for s in skipped],
    )
    if rest and listed is None:
        typer.echo(f"  ... and {len(rest)} more", err=True)


def print_skipped(
    headline: str, items: Sequence[tuple[str, str]], *, most: int = 5
) -> Sequence[tuple[str, str]]:
    """On stderr: ``headline``, then the first ``most`` (where, why) items, one a line. Returns
    the items not shown, for the caller to sum up as it needs."""
    import typer

    typer.echo(headline, err=True)
    for where, why in items[:most]:
        typer.echo(f"  {where}: {why}", err=True)
    return items[most:]

"""``polymodal search "a red dress" --db store/``: query a search store by text, photo or sound."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import typer

from polymodal.errors import ConfigError


def search(
    query: str | None = typer.Argument(None, help="What to look for, in words."),
    db: Path = typer.Option(..., "--db", help="The search store folder (from `polymodal index`)."),
    text: str | None = typer.Option(None, help="Words (with --image/--audio: the change wanted)."),
    image: Path | None = typer.Option(None, help="A photo to search by."),
    audio: Path | None = typer.Option(None, help="A sound to search by."),
    k: int = typer.Option(10, "-k", min=1, max=1000, help="How many results."),
    weight: float | None = typer.Option(
        None, min=0.0, max=1.0, help="The text's share in a photo + text query."
    ),
    modality: list[str] | None = typer.Option(
        None, help="Only these kinds: image, audio, video, text (repeat or comma-separate)."
    ),
    folder: str | None = typer.Option(None, help="Only files under this sub-folder."),
    after: str | None = typer.Option(None, help="Only files modified on or after (2024-01-31)."),
    before: str | None = typer.Option(None, help="Only files modified before this date."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Print the best matches with their scores (cosine similarity)."""
    from polymodal.search.engine import SearchEngine

    if query is not None and text is not None:
        raise ConfigError("give the words either as the argument or with --text, not both")
    words = query if query is not None else text
    if weight is not None and (words is None or (image is None and audio is None)):
        typer.echo("note: --weight only mixes a photo or sound with words; ignored here", err=True)
    engine = SearchEngine.open(db)
    hits = engine.search(
        text=words,
        image=image,
        audio=audio,
        k=k,
        weight=weight,
        modality=modality or None,
        folder=folder,
        after=_date(after, "--after"),
        before=_date(before, "--before"),
    )
    if as_json:
        out = [dict(h.to_dict(), file=str(engine.root / h.path)) for h in hits]
        typer.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    if not hits:
        typer.echo("no results")
    for rank, h in enumerate(hits, 1):
        typer.echo(f"{rank:3d}  {h.score:6.3f}  {h.modality:<5}  {engine.root / h.path}")


def _date(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option} {value!r}: not a date; write it as 2024-01-31") from None

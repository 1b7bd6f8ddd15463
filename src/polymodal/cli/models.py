"""``polymodal models``: the encoders available offline, what each produces, and its licence."""

from __future__ import annotations

import importlib.util

import typer


def models(
    check: bool = typer.Option(False, "--check", help="Load each default and encode a sample."),
) -> None:
    """List the registered encoders: modality, widths, licence, and whether it is installed."""
    from polymodal.encoders.registry import build_encoder, registered_encoders

    rows = [
        ("name", "modality", "default", "width", "tokens", "licence", "weights package", "offline")
    ]
    for reg in registered_encoders():
        installed = importlib.util.find_spec(reg.package.replace("-", "_")) is not None
        width = tokens = "?"
        if installed:
            info = build_encoder(reg.name).info
            width, tokens = str(info.width), str(info.token_width)
        rows.append(
            (
                reg.name,
                str(reg.modality),
                "yes" if reg.default else "",
                width,
                tokens,
                reg.licence,
                reg.package,
                "yes" if installed else "not installed",
            )
        )
    rows.append(
        (
            "tabular",
            "numeric+categorical",
            "yes",
            "-",
            "1 per column",
            "-",
            "(fitted on your data)",
            "yes",
        )
    )
    _print_table(rows)
    typer.echo(
        "\nAny Hugging Face checkpoint folder (or a cached hub id) also works: "
        "--encoder image=/path/to/clip-folder"
    )
    if check:
        _check_defaults()


def _check_defaults() -> None:
    from polymodal.encoders.registry import build_encoder, registered_encoders

    for reg in registered_encoders():
        if not reg.default:
            continue
        enc = build_encoder(reg.name)
        out = enc.encode(enc.example_inputs(1))[0]
        typer.echo(
            f"check {reg.name}: loaded offline, pooled vector of {out.pooled.shape[0]} values"
        )


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            typer.echo("  ".join("-" * w for w in widths))

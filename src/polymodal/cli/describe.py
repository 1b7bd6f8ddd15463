"""``polymodal describe FILE_OR_DIR...``: captions, text in images, transcripts, sound tags and
video key frames as text (or JSON lines), with one outcome per file and a summary."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from polymodal.describe.description import Description

CAPTIONER_HELP = "'default', 'retrieval', 'decoder', a Hugging Face captioning folder, or 'none'."


def describe(
    files: list[Path] = typer.Argument(..., help="Files, or folders (searched recursively)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per file."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Also write one JSON object per file to this JSONL file."
    ),
    captioner: str = typer.Option("default", help=CAPTIONER_HELP),
    ocr: str = typer.Option("rapidocr", help="OCR engine: rapidocr or tesseract."),
    no_ocr: bool = typer.Option(False, "--no-ocr", help="Do not read text in images."),
    no_transcript: bool = typer.Option(False, "--no-transcript", help="Do not transcribe speech."),
    no_tags: bool = typer.Option(False, "--no-tags", help="No sound tags."),
    frame_every: float = typer.Option(
        5.0, min=0.1, help="Seconds between video key frames when the scene stays the same."
    ),
    quiet: bool = typer.Option(False, "-q", help="No progress bar."),
) -> None:
    """Describe each file; a file that cannot be read is reported, and the rest go on."""
    from polymodal.atomic import atomic_output, check_writable
    from polymodal.cli.options import expand_folders
    from polymodal.describe.describer import Describer, file_modality

    if out is not None:
        check_writable(out)  # before minutes of describing, not after
    describer = Describer(  # before the files: a bad option fails fast
        captioner=None if captioner.lower() == "none" else captioner,
        ocr=None if no_ocr else ocr,
        transcribe=not no_transcript,
        tags=not no_tags,
        frame_every=frame_every,
    )
    paths = expand_folders(files, file_modality, "image, audio, video or text")
    counts: Counter[str] = Counter()
    records = []
    for d in describer.describe_many(paths, progress=not quiet):
        counts[d.outcome] += 1
        record = d.to_dict()
        if out is not None:
            records.append(record)
        if as_json:
            typer.echo(json.dumps(record, ensure_ascii=False))
        else:
            typer.echo(render(d))
    if out is not None:
        with atomic_output(out) as tmp:
            # a file name that is not UTF-8 is written with its odd bytes escaped
            Path(tmp).write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                "utf-8",
                errors="backslashreplace",
            )
    summary = ", ".join(f"{counts[k]} {k}" for k in ("ok", "empty", "error") if counts[k])
    typer.echo(f"described {len(paths)} files: {summary}", err=True)
    if counts["error"] == len(paths):
        raise typer.Exit(1)


def render(d: Description) -> str:
    """The plain-text block of one file: a header line with its outcome, then its text."""
    head = f"== {d.path} [{d.modality}] {d.outcome}"
    if d.problem:
        head += f": {d.problem}"
    if d.notes:
        head += f" ({'; '.join(d.notes)})"
    body = d.as_text()
    return f"{head}\n{body}\n" if body else head + "\n"

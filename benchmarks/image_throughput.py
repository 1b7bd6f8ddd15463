"""Image encoding throughput from JPEG files, three ways, in one process.

(a) naive: eager PyTorch on 2 threads, Pillow decoding at full size (no draft) one file after
    another, batches of 32;
(b) model only: the same network in ONNX Runtime on pre-decoded tensors (the upper bound);
(c) polymodal end to end: ``EfficientNetEncoder.encode_files``: JPEG paths, decoding in a thread
    pool overlapped with ONNX Runtime inference.

Goals: (c) >= 0.8 x (b) and (c) >= 3 x (a). Usage:

    .venv/bin/python benchmarks/image_throughput.py --n 300 --json out.json
    .venv/bin/python benchmarks/image_throughput.py --n 96 --sweep   # batch/threads/workers grid
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from polymodal.encoders.image_efficientnet import (
    DEFAULT_BATCH_SIZE,
    EfficientNetEncoder,
    efficientnet_lite0,
)


def shared_data() -> Path:
    env = os.environ.get("POLYMODAL_SHARED")
    if env:
        return Path(env) / "data"
    return Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def jpeg_paths(folder: Path, n: int) -> list[Path]:
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg"})
    if len(paths) < n:
        sys.exit(f"need {n} JPEGs under {folder}, found {len(paths)}")
    # Spread over the classes (files are sorted by class folder) rather than the first n.
    step = len(paths) / n
    return [paths[int(i * step)] for i in range(n)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def timed(fn: Callable[[], object], n: int) -> dict[str, float]:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 3), "img_per_s": round(n / seconds, 2)}


def naive(enc: EfficientNetEncoder, paths: Sequence[Path], batch_size: int = 32) -> None:
    """Sequential full-size Pillow decoding, then eager torch, batch by batch."""
    module = enc.module().eval()
    for start in range(0, len(paths), batch_size):
        items = []
        for path in paths[start : start + batch_size]:
            with Image.open(path) as img:
                rgb = img.convert("RGB")
            items.append(enc.preprocess(rgb))
        with torch.inference_mode():
            module(enc.collate(items))


def model_only(enc: EfficientNetEncoder, decoded: Sequence[np.ndarray]) -> None:
    enc.encode(decoded)


def end_to_end(enc: EfficientNetEncoder, paths: Sequence[Path], workers: int) -> None:
    enc.encode_files(paths, workers=workers)


def run_main(args: argparse.Namespace, paths: list[Path]) -> dict:
    enc = efficientnet_lite0(batch_size=args.batch_size, intra_op_threads=args.threads)
    assert enc.runtime == "onnxruntime"  # exports the graph now, outside the timings
    decoded = [enc.decode(str(p)) for p in paths]
    enc.encode(decoded[: args.batch_size])  # warm ORT up
    naive(enc, paths[: args.batch_size])  # and torch
    n = len(paths)
    results: dict[str, dict[str, float]] = {}
    # Peak RSS only grows, so the cheap paths run first and each phase's peak is attributable.
    rss = {"after_setup": round(peak_rss_mb(), 1)}
    for _ in range(args.repeats):  # interleaved, best of: other processes share the CPUs
        for name, fn in (
            ("b_model_only_onnx", lambda: model_only(enc, decoded)),
            ("c_polymodal_end_to_end", lambda: end_to_end(enc, paths, args.workers)),
            ("a_naive_torch", lambda: naive(enc, paths)),
        ):
            r = timed(fn, n)
            rss.setdefault(f"after_{name[0]}", round(peak_rss_mb(), 1))
            if name not in results or r["img_per_s"] > results[name]["img_per_s"]:
                results[name] = r
    a, b, c = (results[k]["img_per_s"] for k in sorted(results))
    return {
        "n": n,
        "settings": {
            "batch_size": args.batch_size,
            "ort_intra_op_threads": args.threads or "one per core",
            "decode_workers": args.workers,
            "torch_threads": torch.get_num_threads(),
            "cpus": len(os.sched_getaffinity(0)),
        },
        "results": results,
        "ratio_c_over_b": round(c / b, 3),
        "ratio_c_over_a": round(c / a, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_rss_mb_by_phase": rss,
    }


def run_sweep(args: argparse.Namespace, paths: list[Path]) -> dict:
    """(b) and (c) over a grid of batch size, ORT threads and decode workers."""
    rows = []
    for batch, threads in itertools.product((8, 16, 32, 64), (1, 2)):
        enc = efficientnet_lite0(batch_size=batch, intra_op_threads=threads)
        decoded = [enc.decode(str(p)) for p in paths]
        enc.encode(decoded[:batch])
        b = timed(lambda e=enc, d=decoded: model_only(e, d), len(paths))["img_per_s"]
        for workers in (1, 2, 3):
            c = timed(lambda e=enc, w=workers: end_to_end(e, paths, w), len(paths))["img_per_s"]
            rows.append({"batch": batch, "threads": threads, "workers": workers, "b": b, "c": c})
            print(
                f"batch {batch:3d} threads {threads} workers {workers}: b {b:6.1f}  c {c:6.1f}",
                flush=True,
            )
    return {"n": len(paths), "sweep": rows, "peak_rss_mb": round(peak_rss_mb(), 1)}


def markdown(report: dict) -> str:
    res = report["results"]
    labels = {
        "a_naive_torch": "(a) naive: eager PyTorch, sequential full-size Pillow decode",
        "b_model_only_onnx": "(b) model only: ONNX Runtime on pre-decoded tensors",
        "c_polymodal_end_to_end": "(c) polymodal: JPEG paths, threaded decode + ONNX Runtime",
    }
    lines = ["| path | img/s | seconds |", "|---|---:|---:|"]
    for key, label in labels.items():
        lines.append(f"| {label} | {res[key]['img_per_s']:.1f} | {res[key]['seconds']:.2f} |")
    lines += [
        "",
        f"(c)/(b) = {report['ratio_c_over_b']:.2f} (goal >= 0.8); "
        f"(c)/(a) = {report['ratio_c_over_a']:.2f} (goal >= 3)",
        f"n = {report['n']} images; settings {report['settings']}",
        f"peak RSS {report['peak_rss_mb']:.0f} MB (running peak after each phase: "
        f"{report['peak_rss_mb_by_phase']})",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="number of JPEGs")
    parser.add_argument("--data", type=Path, default=None, help="folder of JPEGs")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="for (b), (c)")
    parser.add_argument("--threads", type=int, default=None, help="ORT intra-op threads")
    parser.add_argument("--workers", type=int, default=2, help="decode threads for (c)")
    parser.add_argument("--torch-threads", type=int, default=2, help="threads for (a)")
    parser.add_argument("--repeats", type=int, default=1, help="best of N interleaved rounds")
    parser.add_argument("--sweep", action="store_true", help="grid over batch/threads/workers")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.torch_threads)
    folder = args.data or shared_data() / "clothing"
    if not folder.is_dir():
        sys.exit(f"no data at {folder}: pass --data or set POLYMODAL_SHARED")
    paths = jpeg_paths(folder, args.n)
    report = run_sweep(args, paths) if args.sweep else run_main(args, paths)
    if not args.sweep:
        print(markdown(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

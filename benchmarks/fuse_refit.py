"""How much faster a second ``Predictor.fit`` over the same table is, once its embeddings are
cached (issue 3: at least 20x).

Each fit runs in a fresh Python process (imports, encoder construction and cache opening all
count, as they do for a user re-running a script), against a cache folder that starts empty:
fit 1 encodes every text/media cell, fit 2 reads them all from the cache. Same data, same
settings, same seed. Wall seconds and the process's CPU seconds are both reported: on a shared
machine the CPU ratio is the steadier one. ``--profile`` writes a cProfile of the warm fit.

    python benchmarks/fuse_refit.py --dataset houses --limit 120 --fusion early
    python benchmarks/fuse_refit.py --dataset tuxpaint --limit 200 --fusion auto
    python benchmarks/fuse_refit.py --dataset houses --limit 120 --profile out/bench/refit.prof
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
c0 = time.process_time()
sys.path.insert(0, {repo!r})
import torch
torch.set_num_threads({threads})
from benchmarks.datasets import build
from polymodal.predict import Predictor
data = build({dataset!r}, {work!r}, seed={seed}, **({limit!r} and {{"limit": {limit!r}}} or {{}}))
train, val = data.part("train"), data.part("val")
t1 = time.perf_counter()
c1 = time.process_time()
model = Predictor(data.label, fusion={fusion!r}, problem=data.problem,
                  columns=data.modalities(), cache_dir={cache!r}, progress=False, seed={seed})
if {profile!r}:
    import cProfile
    cProfile.run("model.fit(train, val)", {profile!r})
else:
    model.fit(train, val)
t2 = time.perf_counter()
c2 = time.process_time()
emb = model.embed_report_
train_s = sum(r["fit_seconds"] + r.get("refit_seconds", 0.0) for r in model.leaderboard_)
print(json.dumps({{"total_s": t2 - t0, "fit_s": t2 - t1, "train_s": train_s,
                  "total_cpu_s": c2 - c0, "fit_cpu_s": c2 - c1,
                  "encoded": sum(emb.encoded.values()), "cached": sum(emb.cached.values()),
                  "rows": len(train) + len(val)}}))
"""


def one_fit(args: argparse.Namespace, cache: Path, profile: str | None) -> dict[str, float]:
    code = _CHILD.format(
        repo=str(REPO),
        threads=args.threads,
        seed=args.seed,
        dataset=args.dataset,
        work=str(args.work),
        limit=args.limit,
        fusion=args.fusion,
        cache=str(cache),
        profile=profile,
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="houses")
    p.add_argument("--limit", type=int, default=None, help="rows (see each data set's builder)")
    p.add_argument("--fusion", default="early")
    p.add_argument("--work", type=Path, default=Path("out/bench"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="data split and training seed")
    p.add_argument("--profile", default=None, help="write a cProfile of the warm fit here")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cold = one_fit(args, Path(tmp), None)
        warm = one_fit(args, Path(tmp), args.profile)
    result = {
        "dataset": args.dataset,
        "limit": args.limit,
        "fusion": args.fusion,
        "seed": args.seed,
        "cold": cold,
        "warm": warm,
        "speedup_fit": cold["fit_s"] / warm["fit_s"],
        "speedup_process": cold["total_s"] / warm["total_s"],
        "speedup_fit_cpu": cold["fit_cpu_s"] / warm["fit_cpu_s"],
        "speedup_process_cpu": cold["total_cpu_s"] / warm["total_cpu_s"],
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

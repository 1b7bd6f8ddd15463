"""Run every benchmark in sequence (never in parallel: they measure speed) and collect results.

python benchmarks/run_all.py --out BENCHMARKS.results.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHMARKS: dict[str, list[str]] = {
    "image_throughput": ["image_throughput.py", "--n", "600", "--repeats", "2"],
    "text_throughput": ["text_throughput.py", "--n", "512", "--repeats", "3"],
    "audio_fsdd": ["audio_fsdd.py", "--naive-limit", "300"],
    "cache_rerun": ["cache_rerun.py"],
    "fuse": ["fuse_benchmark.py", "--dataset", "all", "--seeds", "0", "1", "2"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), default=None)
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.results.json"))
    args = parser.parse_args()
    collected: dict[str, object] = {}
    for name, argv in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "r.json"
            print(f"\n## {name}\n$ python benchmarks/{' '.join(argv)}", flush=True)
            subprocess.run(
                [sys.executable, str(HERE / argv[0]), *argv[1:], "--json", str(out)], check=True
            )
            collected[name] = json.loads(out.read_text()) if out.exists() else None
    args.out.write_text(json.dumps(collected, indent=2, default=str))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()

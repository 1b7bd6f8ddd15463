"""`polymodal embed` over a real folder twice, through the CLI as a user runs it.

The first run decodes and encodes everything (end-to-end throughput from files); the second is
served from the embedding cache. Each run is a fresh process with a fresh cache folder, so import
and start-up costs count, as they do for a user. Peak RSS is measured per run.

    python benchmarks/cache_rerun.py --data ../shared/data/clothing ../shared/data/fsdd
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_CHILD = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "subprocess.run(sys.argv[1:], check=True)\n"
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def timed_embed(data: Path, home: Path, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one `polymodal embed` process."""
    env = {**os.environ, "POLYMODAL_HOME": str(home), "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "polymodal", "embed", str(data), "-o", str(out), "-q"]
    res = subprocess.run(
        [sys.executable, "-c", _CHILD, *cmd], env=env, check=True, capture_output=True, text=True
    )
    seconds, rss_kib = res.stdout.split()[-2:]
    return float(seconds), float(rss_kib) / 1024


def count_rows(parquet: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(parquet).metadata.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    shared = Path(os.environ.get("POLYMODAL_SHARED", REPO.parent / "shared" / "data"))
    parser.add_argument(
        "--data", type=Path, nargs="+", default=[shared / "clothing", shared / "fsdd"]
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results = []
    for data in args.data:
        if not data.exists():
            print(f"skip {data}: absent")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            home, out = Path(tmp) / "home", Path(tmp) / "out.parquet"
            first, rss1 = timed_embed(data, home, out)
            second, rss2 = timed_embed(data, home, out)
            rows = count_rows(out)
        results.append(
            {
                "data": data.name,
                "rows": rows,
                "first_s": first,
                "second_s": second,
                "speedup": first / second,
                "items_per_s_first": rows / first,
                "peak_rss_mib_first": rss1,
                "peak_rss_mib_second": rss2,
            }
        )
    print(
        "| data | rows | first run (s) | items/s | cached run (s) | speed-up "
        "| peak RSS first / cached (MiB) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['data']} | {r['rows']} | {r['first_s']:.1f} | {r['items_per_s_first']:.0f} | "
            f"{r['second_s']:.2f} | {r['speedup']:.0f}x | "
            f"{r['peak_rss_mib_first']:.0f} / {r['peak_rss_mib_second']:.0f} |"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"when": time.strftime("%F %T"), "results": results}, indent=2)
        )


if __name__ == "__main__":
    main()

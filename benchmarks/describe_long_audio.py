"""Transcribing a long recording streams it: peak memory (RSS) for 10 and 65 minutes of audio.

The recording is silence with an espeak-ng sentence every minute, written block by block to a
16 kHz WAV. Each length runs in a fresh process that loads Whisper first, so its RSS before
transcribing is the baseline; ``ru_maxrss`` after transcribing is the peak. Also checks that
every sentence is found within a second of where it was put.

    .venv/bin/python benchmarks/describe_long_audio.py --minutes 10 65
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import describe_media as media

REPO = Path(__file__).resolve().parents[1]
SENTENCE = "A boxcar is used to carry livestock."


def measure(path: Path, starts: list[float], window: float) -> dict[str, float]:
    """Run in the child process: transcribe ``path`` and report memory and timing."""
    from polymodal.describe.transcribe import Transcriber
    from polymodal.describe.whisper import whisper_model

    whisper_model()
    base = _rss_mb()
    t0 = time.perf_counter()
    t = Transcriber(window_seconds=window).transcribe(path)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    found = [s.start for s in t.segments]
    hits = sum(any(abs(f - s) < 1.0 for f in found) for s in starts)
    return {
        "audio_min": t.seconds / 60,
        "baseline_mb": base,
        "peak_mb": peak,
        "seconds": seconds,
        "segments": len(t.segments),
        "placed": len(starts),
        "found": hits,
    }


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 65])
    parser.add_argument("--window", type=float, default=120.0)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        path, starts = Path(args.child[0]), json.loads(args.child[1])
        print(json.dumps(measure(path, starts, args.window)))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="describe-long-") as tmp:
        work = Path(tmp)
        speech = media.speech_samples(SENTENCE, work)
        for minutes in args.minutes:
            path = work / f"long{minutes:g}.wav"
            starts = media.long_recording(path, speech, minutes=minutes, every_s=60.0)
            size = path.stat().st_size / 1e6
            env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "2"}
            cmd = [sys.executable, __file__, "--window", str(args.window)]
            cmd += ["--child", str(path), json.dumps(starts)]
            res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            row = json.loads(res.stdout.strip().splitlines()[-1])
            row["file_mb"] = size
            rows.append(row)
            path.unlink()
            print(row)
    print("\n| audio | WAV size | RSS after loading | peak RSS | time | sentences found |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['audio_min']:.0f} min | {r['file_mb']:.0f} MB | {r['baseline_mb']:.0f} MB | "
            f"{r['peak_mb']:.0f} MB | {r['seconds']:.0f} s | {r['found']}/{r['placed']} |"
        )


if __name__ == "__main__":
    main()

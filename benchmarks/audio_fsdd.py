"""Whisper tiny.en audio embeddings on FSDD (spoken digits): speed and usefulness, two ways.

(a) naive: every clip's log-mel padded to Whisper's 30 s window (3000 frames, with zeros, as
    faster-whisper's ``pad_or_trim`` does), CTranslate2 int8, one clip at a time; pooled = mean
    of all 1500 states ("mean-all") or of the real states only ("mean-real").
(b) polymodal: ``whisper-tiny-en`` end to end: ``decode`` (read + log-mel) in a thread pool,
    ``encode`` at each clip's own length padded with silence to >= 3 s, batched.

Usefulness = leave-one-speaker-out (LOSO) accuracy of a logistic regression on standardised
pooled vectors (train on 5 speakers, test on the 6th, averaged over the 6 speakers). The naive
path costs ~1 s per clip, so its embeddings are computed for ``--naive-limit`` clips (a subset
balanced over digits and speakers) and cached under /tmp, and (b) is scored on the same subset
as well as on all ``--limit`` clips. Usage:

    .venv/bin/python benchmarks/audio_fsdd.py --naive-limit 3000 --json out.json  # ~35 min once
    .venv/bin/python benchmarks/audio_fsdd.py --json out.json                 # naive on 300 clips
    .venv/bin/python benchmarks/audio_fsdd.py --limit 600 --naive-limit 120   # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from polymodal.atomic import atomic_output
from polymodal.encoders.audio_whisper import (
    WINDOW_FRAMES,
    MelInput,
    WhisperAudioEncoder,
    real_states,
    whisper_tiny_en,
)

NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


def shared_data() -> Path:
    """``$POLYMODAL_SHARED`` (the shared data folder) or ``../shared/data`` beside the repo."""
    env = os.environ.get("POLYMODAL_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def fsdd_files(folder: Path, limit: int | None) -> list[Path]:
    """FSDD wavs; with ``limit``, the lowest recording indices, so every digit x speaker is kept."""
    files = sorted(p for p in folder.glob("*.wav") if NAME.match(p.name))
    if not files:
        raise SystemExit(f"no FSDD wavs ({{digit}}_{{speaker}}_{{index}}.wav) in {folder}")
    if limit is None or limit >= len(files):
        return files
    by_index = sorted(files, key=lambda p: (int(NAME.match(p.name)[3]), p.name))  # type: ignore[index]
    return sorted(by_index[:limit])


def labels(files: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(digit, speaker) per file."""
    parts = [NAME.match(p.name) for p in files]
    return np.array([int(m[1]) for m in parts]), np.array([m[2] for m in parts])  # type: ignore[index]


def loso(x: np.ndarray, digit: np.ndarray, speaker: np.ndarray) -> tuple[float, dict[str, float]]:
    """Mean leave-one-speaker-out accuracy, and each held-out speaker's accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    per: dict[str, float] = {}
    for held in sorted(set(speaker)):
        train, test = speaker != held, speaker == held
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        clf.fit(x[train], digit[train])
        per[held] = float((clf.predict(x[test]) == digit[test]).mean())
    return float(np.mean(list(per.values()))), per


# ---------------------------------------------------------------------------- (b) polymodal
def polymodal_embed(
    encoder: WhisperAudioEncoder, files: Sequence[Path], *, workers: int, chunk: int = 64
) -> tuple[np.ndarray, float]:
    """Pooled vectors of ``files`` end to end, and the seconds it took."""
    start = time.perf_counter()
    out: list[np.ndarray] = []
    with ThreadPoolExecutor(workers) as pool:
        # Decoding the next chunk overlaps with encoding this one.
        pending = pool.map(encoder.decode, [str(p) for p in files])
        items: list[MelInput] = []
        for item in pending:
            items.append(item)
            if len(items) == chunk:
                out.extend(e.pooled for e in encoder.encode(items))
                items = []
        if items:
            out.extend(e.pooled for e in encoder.encode(items))
    return np.stack(out), time.perf_counter() - start


# ---------------------------------------------------------------------------- (a) naive
def naive_states(encoder: WhisperAudioEncoder, path: Path) -> tuple[np.ndarray, int]:
    """All 1500 states of the clip padded to 30 s with log-mel zeros, and how many are real."""
    item = encoder.decode(str(path))
    mel = np.zeros((1, encoder.n_mels, WINDOW_FRAMES), dtype=np.float32)
    n = min(item.frames, WINDOW_FRAMES)
    mel[0, :, :n] = item.mel[:, :n]
    return encoder.states(mel)[0], real_states(n)


def naive_embed(encoder: WhisperAudioEncoder, files: Sequence[Path]) -> tuple[np.ndarray, float]:
    """(N, 2, width): mean-all and mean-real pooled vectors, and the seconds it took."""
    start = time.perf_counter()
    out = []
    for path in files:
        states, real = naive_states(encoder, path)
        out.append(np.stack([states.mean(0), states[:real].mean(0)]))
    return np.stack(out), time.perf_counter() - start


def naive_cached(encoder: WhisperAudioEncoder, files: Sequence[Path]) -> np.ndarray:
    """Naive pooled vectors, computed once per file and kept in /tmp across runs."""
    key = encoder.info.cache_id.replace("@", "-").replace("+", "-")
    cache = Path(tempfile.gettempdir()) / "polymodal-bench" / f"fsdd-naive-{key}.npz"
    known: dict[str, np.ndarray] = {}
    if cache.exists():
        with np.load(cache) as data:
            known = dict(zip(data["names"].tolist(), data["vectors"], strict=True))
    missing = [p for p in files if p.name not in known]
    if missing:
        print(f"naive path: embedding {len(missing)} clips (~1 s each), caching in {cache}")
        vectors, _ = naive_embed(encoder, missing)
        known.update(zip([p.name for p in missing], vectors, strict=True))
        with atomic_output(cache) as tmp, open(tmp, "wb") as f:
            np.savez(f, names=np.array(list(known)), vectors=np.stack(list(known.values())))
    return np.stack([known[p.name] for p in files])


# ---------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=shared_data() / "fsdd")
    ap.add_argument("--limit", type=int, default=None, help="clips scored (default: all)")
    ap.add_argument("--naive-limit", type=int, default=300, help="clips scored on the naive path")
    ap.add_argument("--speed-clips", type=int, default=200, help="clips timed, polymodal path")
    ap.add_argument("--naive-speed-clips", type=int, default=20, help="clips timed, naive path")
    ap.add_argument("--threads", type=int, default=2, help="CTranslate2 / torch threads")
    ap.add_argument("--workers", type=int, default=2, help="decoding threads")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    encoder = whisper_tiny_en(threads=args.threads)
    files = fsdd_files(args.data, args.limit)
    digit, speaker = labels(files)

    # Speed, on the same clips for both paths (the naive one on fewer: it is ~1 s per clip).
    timed = fsdd_files(args.data, args.speed_clips)
    polymodal_embed(encoder, timed[:8], workers=args.workers)  # load CTranslate2, warm up
    _, fast_s = polymodal_embed(encoder, timed, workers=args.workers)
    _, naive_s = naive_embed(encoder, timed[: args.naive_speed_clips])
    fast_rate = len(timed) / fast_s
    naive_rate = min(len(timed), args.naive_speed_clips) / naive_s

    # Usefulness.
    fast_x, _ = polymodal_embed(encoder, files, workers=args.workers)
    fast_acc, fast_per = loso(fast_x, digit, speaker)
    rows = [("polymodal (b)", len(files), fast_acc, fast_per)]
    if args.naive_limit > 0:
        subset = fsdd_files(args.data, min(args.naive_limit, len(files)))
        pos = {p: i for i, p in enumerate(files)}
        sub_idx = np.array([pos[p] for p in subset])
        naive_x = naive_cached(encoder, subset)
        sd, ss = digit[sub_idx], speaker[sub_idx]
        for label, column in (("naive (a), mean-all", 0), ("naive (a), mean-real", 1)):
            acc, per = loso(naive_x[:, column], sd, ss)
            rows.append((label, len(subset), acc, per))
        if len(subset) < len(files):
            acc, per = loso(fast_x[sub_idx], sd, ss)
            rows.append(("polymodal (b), same subset", len(subset), acc, per))

    speakers = sorted(set(speaker))
    print(f"\nFSDD, {args.threads} threads, {args.workers} decoding workers\n")
    print("| path | clips/s | clips timed |\n|---|---:|---:|")
    print(
        f"| naive (a): padded to 30 s | {naive_rate:.1f} | {len(timed[: args.naive_speed_clips])} |"
    )
    print(f"| polymodal (b) | {fast_rate:.1f} | {len(timed)} |")
    print(f"\nspeed-up (b)/(a): {fast_rate / naive_rate:.1f}x\n")
    print("| path | clips | LOSO accuracy | " + " | ".join(speakers) + " |")
    print("|---|---:|---:|" + "---:|" * len(speakers))
    for label, n, acc, per in rows:
        cells = " | ".join(f"{100 * per[s]:.1f}" for s in speakers)
        print(f"| {label} | {n} | {100 * acc:.2f}% | {cells} |")
    if args.json:
        result = {
            "threads": args.threads,
            "workers": args.workers,
            "naive_clips_per_s": naive_rate,
            "polymodal_clips_per_s": fast_rate,
            "speedup": fast_rate / naive_rate,
            "loso": [
                {"path": label, "clips": n, "accuracy": acc, "per_speaker": per}
                for label, n, acc, per in rows
            ],
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""polymodal end to end on real data that needs no network: spoken and handwritten digits.

Builds a small table whose rows pair a real handwritten digit (scikit-learn's bundled scans) with
real synthetic speech of the same digit's name (espeak-ng, several voices and speeds), plus one row
with a missing file and one with a corrupt file, to show how bad input is reported. Then runs the
CLI as a user would — ``polymodal inspect`` and ``polymodal embed`` (twice: the second run
comes from the cache) — and fits linear probes on each modality's embeddings and on both together.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
VOICES = ["en", "en-us", "en-gb-x-rp", "en+f3", "en+m3", "en-us+f2"]


def build_table(out: Path, per_class: int, seed: int = 0) -> Path:
    """Write digit PNGs, spoken-digit WAVs and ``table.csv`` under ``out``; return its path."""
    from sklearn.datasets import load_digits

    if shutil.which("espeak-ng") is None:
        sys.exit("the demo needs espeak-ng: sudo apt-get install espeak-ng (or run `make demo`)")
    rng = np.random.default_rng(seed)
    digits = load_digits()
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "speech").mkdir(parents=True, exist_ok=True)
    rows = []
    for label in range(10):
        idx = rng.choice(np.flatnonzero(digits.target == label), per_class, replace=False)
        for k, i in enumerate(idx):
            img = (255 - digits.images[i] * 16).clip(0, 255).astype(np.uint8)
            image_path = f"images/{label}_{k}.png"
            Image.fromarray(img).resize((64, 64), Image.NEAREST).save(out / image_path)
            speech_path = f"speech/{label}_{k}.wav"
            voice = VOICES[k % len(VOICES)]
            speed = int(rng.integers(120, 200))
            subprocess.run(
                [
                    "espeak-ng",
                    "-v",
                    voice,
                    "-s",
                    str(speed),
                    "-w",
                    str(out / speech_path),
                    WORDS[label],
                ],
                check=True,
                capture_output=True,
            )
            rows.append({"image": image_path, "speech": speech_path, "label": WORDS[label]})
    rows.append({"image": "images/does_not_exist.png", "speech": "speech/0_0.wav", "label": "zero"})
    (out / "images" / "corrupt.png").write_bytes(b"this is not a png")
    rows.append({"image": "images/corrupt.png", "speech": "speech/1_0.wav", "label": "one"})
    table = out / "table.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return table


def cli(*args: str) -> float:
    """Run the polymodal CLI as a user would; return the wall time."""
    cmd = [sys.executable, "-m", "polymodal", *args]
    print("\n$ polymodal " + " ".join(args), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def probe(parquet: Path) -> None:
    """5-fold linear probes on each modality's embeddings and on both concatenated."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_parquet(parquet)
    ok = frame["image.embedding"].notna() & frame["speech.embedding"].notna()
    frame = frame[ok]
    y = frame["label"].to_numpy()
    feats = {m: np.stack(frame[f"{m}.embedding"].to_numpy()) for m in ("image", "speech")}
    feats["image + speech"] = np.hstack([feats["image"], feats["speech"]])
    print(f"\nLinear probes, 5-fold accuracy on {len(y)} rows:")
    for name, x in feats.items():
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5))
        acc = cross_val_score(model, x, y, cv=5)
        print(f"  {name:<16} {acc.mean():.3f} ± {acc.std():.3f}  ({x.shape[1]}-d)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    parser.add_argument("--per-class", type=int, default=20)
    args = parser.parse_args()
    table = build_table(args.out, args.per_class)
    print(f"built {table} with {args.per_class * 10 + 2} rows (2 deliberately bad)")
    cli("inspect", str(table), "--exclude", "label", "--deep")
    parquet = args.out / "embeddings.parquet"
    first = cli("embed", str(table), "--exclude", "label", "-o", str(parquet), "-q")
    second = cli("embed", str(table), "--exclude", "label", "-o", str(parquet), "-q")
    print(
        f"\nfirst embed {first:.1f} s, second (cache) {second:.1f} s: {first / second:.0f}x faster"
    )
    probe(parquet)


if __name__ == "__main__":
    main()

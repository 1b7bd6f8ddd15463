"""polymodal end to end on real data that needs no network: spoken and handwritten digits.

Builds a small table whose rows pair a real handwritten digit (scikit-learn's bundled scans) with
real synthetic speech of the same digit's name (espeak-ng, several voices and speeds), plus one row
with a missing file and one with a corrupt file, to show how bad input is reported. Then runs the
CLI as a user would: ``polymodal inspect``, ``polymodal embed`` (twice: the second run comes from
the cache), then ``polymodal fit`` (each modality alone and every fusion, compared), ``predict``
(with each modality's contribution) and ``evaluate`` on held-out rows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SNR_DB = -12.0  # speech buried in noise: hard for audio alone, easy with the image beside it
VOICES = ["en", "en-us", "en-gb-x-rp", "en+f3", "en+m3", "en-us+f2"]


def add_noise(path: Path, snr_db: float, rng: np.random.Generator) -> None:
    """Mix white noise into a WAV at ``snr_db``, so that neither modality alone is perfect."""
    import soundfile as sf

    speech, rate = sf.read(path, dtype="float32")
    noise = rng.normal(0, 1, speech.shape).astype(np.float32)
    gain = np.sqrt(np.mean(speech**2) / (np.mean(noise**2) * 10 ** (snr_db / 10)))
    mixed = speech + gain * noise
    sf.write(path, mixed / max(1.0, float(np.abs(mixed).max())), rate)


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
            add_noise(out / speech_path, SNR_DB, rng)
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


def split(table: Path, seed: int = 0) -> tuple[Path, Path]:
    """A stratified 75/25 train/test split of the table, written beside it."""
    frame = pd.read_csv(table)
    rng = np.random.default_rng(seed)
    test_rows = [
        i
        for _, rows in frame.groupby("label").groups.items()
        for i in rng.choice(rows, size=max(1, len(rows) // 4), replace=False)
    ]
    test, train = frame.loc[sorted(test_rows)], frame.drop(test_rows)
    paths = table.with_name("train.csv"), table.with_name("test.csv")
    train.to_csv(paths[0], index=False)
    test.to_csv(paths[1], index=False)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    parser.add_argument("--per-class", type=int, default=20)
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    # A private cache, so the demo shows a first run and a cached run every time.
    os.environ["POLYMODAL_HOME"] = str(args.out / "cache")
    table = build_table(args.out, args.per_class)
    print(f"built {table} with {args.per_class * 10 + 2} rows (2 deliberately bad)")
    train, test = split(table)
    cli("inspect", str(table), "--exclude", "label", "--deep")
    parquet = args.out / "embeddings.parquet"
    first = cli("embed", str(table), "--exclude", "label", "-o", str(parquet), "-q")
    second = cli("embed", str(table), "--exclude", "label", "-o", str(parquet), "-q")
    print(
        f"\nfirst embed {first:.1f} s, second (cache) {second:.1f} s: {first / second:.0f}x faster"
    )
    model, report = args.out / "model", args.out / "report.html"
    cli(
        "fit",
        str(train),
        "--label",
        "label",
        "--fusion",
        "auto",
        "-o",
        str(model),
        "--test",
        str(test),
        "--report",
        str(report),
        "-q",
    )
    preds = args.out / "predictions.csv"
    cli("predict", str(model), str(test), "-o", str(preds))
    cli("evaluate", str(model), str(test))
    print(f"\nfirst predictions ({preds}):")
    print(pd.read_csv(preds).head(5).to_string(index=False))
    print(f"\nreport: {report}")


if __name__ == "__main__":
    main()

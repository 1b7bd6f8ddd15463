"""``polymodal describe`` over a folder of 100 mixed files: time and outcome per kind of file.

The folder is assembled in a temporary directory from real parts: clothing photos
(``shared/data/clothing``; Tux Paint stamps if absent), Tux Paint stamp drawings, signs rendered
with Pillow, FSDD spoken digits, Scratch sound effects (non-speech, so they get sound tags),
espeak-ng sentences, silence, slideshow videos with and without sound (ffmpeg), the stamps'
English descriptions as text files, and ten bad files (corrupt JPEG and MP4, garbage WAV, an
empty PNG, a Latin-1 text, an MP3 that is text).

    .venv/bin/python benchmarks/describe_folder.py [--captioner default|none|...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import describe_media as media
from benchmarks.describe_transcripts import fsdd_sample, sentences

REPO = Path(__file__).resolve().parents[1]
SCRATCH = Path("/usr/share/scratch/Media/Sounds")


def build_folder(root: Path) -> dict[str, str]:
    """Write the 100 files; returns file name -> what kind it is (for the report)."""
    kinds: dict[str, str] = {}
    shared = Path(os.environ.get("POLYMODAL_SHARED", REPO.parent / "shared" / "data"))
    photos = sorted((shared / "clothing" / "test").rglob("*.jpg"))[::15][:20]
    stamps = media.stamp_images(30)
    for i, p in enumerate(photos):
        shutil.copy(p, root / f"photo{i:02d}.jpg")
        kinds[f"photo{i:02d}.jpg"] = "image: photo"
    for i, p in enumerate(stamps[: 30 - len(photos) - 5]):
        media.on_white(p, (400, 300)).save(root / f"stamp{i:02d}.png")
        kinds[f"stamp{i:02d}.png"] = "image: drawing"
    lines = sentences(40)
    for i in range(5):
        media.text_image(lines[2 * i : 2 * i + 2], size=24, width=900).save(root / f"sign{i}.png")
        kinds[f"sign{i}.png"] = "image: text"
    for i, p in enumerate(fsdd_sample(15)):
        shutil.copy(p, root / f"digit{i:02d}.wav")
        kinds[f"digit{i:02d}.wav"] = "audio: spoken digit"
    effects = sorted(SCRATCH.rglob("*.wav"))[::9][:5]
    for i, p in enumerate(effects):
        shutil.copy(p, root / f"effect{i}.wav")
        kinds[f"effect{i}.wav"] = "audio: sound effect"
    for i in range(7):
        media.speak(lines[10 + i], root / f"sentence{i}.wav")
        kinds[f"sentence{i}.wav"] = "audio: speech"
    for i in range(3):
        media.silence(root / f"silence{i}.wav", 3.0 + i)
        kinds[f"silence{i}.wav"] = "audio: silence"
    for i in range(10):
        frames = [media.on_white(stamps[(3 * i + k) % len(stamps)]) for k in range(3)]
        name = f"clip{i}.mp4"
        if i < 8:
            audio = media.speak(lines[20 + i], root / f".a{i}.wav")
            media.slideshow(frames, root / name, seconds_each=2.0, audio=audio)
            audio.unlink()
            kinds[name] = "video: with speech"
        else:
            media.slideshow(frames, root / name, seconds_each=2.0)
            kinds[name] = "video: no audio track"
    for i, txt in enumerate(sorted(media.STAMPS.rglob("*.txt"))[::40][:20]):
        first = txt.read_text("utf-8", errors="replace").splitlines()[:1]
        (root / f"note{i:02d}.txt").write_text(first[0] if first else "", "utf-8")
        kinds[f"note{i:02d}.txt"] = "text"
    bad = {
        "bad0.jpg": b"\xff\xd8\xff\xe0" + os.urandom(400),
        "bad1.jpg": (root / "photo00.jpg").read_bytes()[:600],
        "bad2.jpg": b"this is not a photo",
        "bad3.mp4": (root / "clip0.mp4").read_bytes()[:2000],
        "bad4.mp4": os.urandom(3000),
        "bad5.wav": b"RIFF\x00\x00\x00\x00WAVEjunk" + os.urandom(100),
        "bad6.wav": os.urandom(2000),
        "bad7.png": b"",
        "bad8.txt": "caf\xe9 cr\xe8me".encode("latin-1"),
        "bad9.mp3": b"ID3 but nothing else here",
    }
    for name, data in bad.items():
        (root / name).write_bytes(data)
        kinds[name] = "bad file"
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captioner", default="default")
    parser.add_argument("--keep", type=Path, default=None, help="also copy the JSONL here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="describe-folder-") as tmp:
        root = Path(tmp) / "mixed"
        root.mkdir()
        t0 = time.perf_counter()
        kinds = build_folder(root)
        print(f"built {len(kinds)} files in {time.perf_counter() - t0:.0f} s")
        out = Path(tmp) / "out.jsonl"
        cmd = [sys.executable, "-m", "polymodal", "describe", str(root), "-q", "-o", str(out)]
        cmd += ["--captioner", args.captioner]
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        print(res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "(no summary)")
        if res.returncode not in (0,):
            print(res.stderr[-2000:])
        import json

        records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
        if args.keep:
            shutil.copy(out, args.keep)
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for r in records:
        table[kinds[Path(r["path"]).name]][r["outcome"]] += 1
    print(
        f"\n`polymodal describe` wall time: {wall:.0f} s for {len(records)} files "
        f"(model loading included)\n"
    )
    print("| files | n | ok | empty | error |")
    print("|---|---|---|---|---|")
    for kind in sorted(table):
        c = table[kind]
        print(f"| {kind} | {sum(c.values())} | {c['ok']} | {c['empty']} | {c['error']} |")
    total = Counter(r["outcome"] for r in records)
    print(f"| all | {len(records)} | {total['ok']} | {total['empty']} | {total['error']} |")
    print("\nexamples:")
    for r in records:
        name = Path(r["path"]).name
        if name in (
            "sign0.png",
            "effect0.wav",
            "clip0.mp4",
            "silence0.wav",
            "bad3.mp4",
            "digit00.wav",
            "photo00.jpg",
            "clip6.mp4",
            "bad9.mp3",
        ):
            print(
                f"  {name}: {r['outcome']} {r['problem'] or ''} notes={r['notes']} "
                f"caption={r['caption']!r} ocr={r['ocr_text']!r} "
                f"transcript={r['transcript']!r} tags={r['tags']}"
            )


if __name__ == "__main__":
    main()

"""Test and benchmark media for ``polymodal.describe``, assembled at run time from real parts:
espeak-ng speech (Debian ``espeak-ng``), Tux Paint stamps (Debian ``tuxpaint-stamps``), text
rendered with Pillow in installed fonts, and clips joined by ffmpeg (``/usr/bin/ffmpeg``)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image, ImageDraw, ImageFont

ESPEAK = "espeak-ng"
FFMPEG = "/usr/bin/ffmpeg"
STAMPS = Path("/usr/share/tuxpaint/stamps")
FONTS = Path("/usr/share/fonts/truetype")
SAMPLE_RATE = 16_000


class MissingTool(RuntimeError):
    """A Debian tool or data package the media needs is not installed."""


def require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise MissingTool(f"{tool} is not installed")
    return found


def speak(text: str, out: Path, *, voice: str = "en-us", speed: int = 160) -> Path:
    """``text`` said by espeak-ng, as a 16 kHz mono WAV."""
    raw = out.with_suffix(".raw.wav")
    subprocess.run(
        [require(ESPEAK), "-v", voice, "-s", str(speed), "-w", str(raw), text],
        check=True,
        capture_output=True,
    )
    audio, rate = sf.read(raw, dtype="float32")
    raw.unlink()
    sf.write(out, _resample(audio, rate), SAMPLE_RATE)
    return out


def speech_samples(text: str, work: Path, **kwargs: object) -> np.ndarray:
    """``text`` said by espeak-ng as float32 samples at 16 kHz."""
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        path = speak(text, Path(tmp) / "speech.wav", **kwargs)  # type: ignore[arg-type]
        audio, _ = sf.read(path, dtype="float32")
    return audio


def silence(out: Path, seconds: float) -> Path:
    sf.write(out, np.zeros(int(seconds * SAMPLE_RATE), np.float32), SAMPLE_RATE)
    return out


def long_recording(
    out: Path, speech: np.ndarray, *, minutes: float, every_s: float = 60.0
) -> list[float]:
    """A WAV of ``minutes`` silence with ``speech`` starting every ``every_s`` seconds, written
    block by block (it never sits whole in memory); returns the speech start times."""
    total = int(minutes * 60 * SAMPLE_RATE)
    period = int(every_s * SAMPLE_RATE)
    starts = []
    with sf.SoundFile(out, "w", SAMPLE_RATE, 1, subtype="PCM_16") as f:
        for at in range(0, total, period):
            block = np.zeros(min(period, total - at), np.float32)
            n = min(len(speech), len(block))
            block[:n] = speech[:n]
            starts.append(at / SAMPLE_RATE)
            f.write(block)
    return starts


def font_files(limit: int | None = None) -> list[Path]:
    """Regular-weight TrueType fonts installed under /usr/share/fonts/truetype."""
    wanted = (
        "dejavu/DejaVuSans.ttf",
        "dejavu/DejaVuSerif.ttf",
        "dejavu/DejaVuSansMono.ttf",
        "liberation/LiberationSans-Regular.ttf",
        "liberation/LiberationSerif-Regular.ttf",
        "liberation/LiberationMono-Regular.ttf",
        "freefont/FreeSans.ttf",
        "freefont/FreeSerif.ttf",
    )
    found = [FONTS / w for w in wanted if (FONTS / w).is_file()]
    return found[:limit] if limit else found


def text_image(
    lines: Sequence[str], *, font: Path | None = None, size: int = 28, width: int = 640
) -> Image.Image:
    """Black text on white, one line under another, with a margin."""
    face = ImageFont.truetype(str(font or font_files(1)[0]), size)
    height = int(len(lines) * size * 1.6 + 2 * size)
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((size, size + int(i * size * 1.6)), line, font=face, fill="black")
    return img


def stamp_images(n: int) -> list[Path]:
    """``n`` Tux Paint stamp PNGs (real drawings), in a fixed order."""
    found = sorted(STAMPS.rglob("*.png"))
    found = [p for p in found if "_mirror" not in p.name and "_flip" not in p.name]
    if len(found) < n:
        raise MissingTool(f"Tux Paint stamps not found under {STAMPS}: apt-get install tuxpaint")
    step = max(1, len(found) // n)
    return found[::step][:n]


def on_white(path: Path, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A stamp composited on white and fitted into ``size``."""
    img = Image.open(path).convert("RGBA")
    img.thumbnail(size)
    out = Image.new("RGB", size, "white")
    out.paste(img, ((size[0] - img.width) // 2, (size[1] - img.height) // 2), img)
    return out


def slideshow(
    images: Sequence[Image.Image],
    out: Path,
    *,
    seconds_each: float = 3.0,
    audio: Path | None = None,
    fps: int = 10,
) -> Path:
    """An H.264 MP4 showing each image for ``seconds_each``; with ``audio`` as its AAC track."""
    work = out.parent / f".{out.stem}-frames"
    work.mkdir(exist_ok=True)
    args = [require(FFMPEG), "-y", "-loglevel", "error"]
    for i, img in enumerate(images):
        frame = work / f"{i:03d}.png"
        img.convert("RGB").resize((320, 240)).save(frame)
        args += ["-loop", "1", "-t", str(seconds_each), "-i", str(frame)]
    n = len(images)
    graph = "".join(f"[{i}:v]" for i in range(n)) + f"concat=n={n}:v=1:a=0,format=yuv420p[v]"
    args += ["-filter_complex", graph, "-map", "[v]", "-r", str(fps), "-c:v", "libx264"]
    if audio is not None:
        args[args.index("-filter_complex") : args.index("-filter_complex")] = ["-i", str(audio)]
        args += ["-map", f"{n}:a", "-c:a", "aac"]
    args.append(str(out))
    subprocess.run(args, check=True, capture_output=True)
    shutil.rmtree(work)
    return out


def _resample(audio: np.ndarray, rate: int) -> np.ndarray:
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if rate == SAMPLE_RATE:
        return audio.astype(np.float32)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate, SAMPLE_RATE)
    return resample_poly(audio, SAMPLE_RATE // g, rate // g).astype(np.float32)

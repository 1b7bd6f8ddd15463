"""Speech: espeak-ng (Debian ``espeak-ng``) saying real captions, in several voices, with the text.

The sentences are the Tux Paint descriptions ("A guinea fowl", "Zero", ...), the emoji names and
the Scratch sound names; each is said by ``voices_per_text`` voices drawn (seeded by the text)
from English accents x voice variants x speeds x pitches, written as WAV under
``work/speech/`` and reused on later runs.

FSDD (``shared/data/fsdd``, people saying digits) is deliberately *not* used: it is the held-out
labelled sound set on which audio zero-shot accuracy is reported. Digit words reach training
only as they occur in the sources above (the Tux Paint "0".."9" stamps, emoji keycaps and clock
faces), spoken by espeak-ng or the Tux Paint speaker, never by an FSDD speaker.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from . import AUDIO_COLUMNS, MissingData, evenly, frame_of, stable_name

ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbcwmd")
VARIANTS = ("m1", "m2", "m3", "m4", "m7", "f1", "f2", "f3", "f4", "klatt2", "Andy", "Annie")
SPEEDS = (130, 150, 165, 180)
PITCHES = (30, 45, 55, 70)


def voice_for(text: str, k: int) -> tuple[str, int, int]:
    """The ``k``-th voice (``-v``, speed, pitch) for ``text``: random but fixed by text and k."""
    seed = int.from_bytes(hashlib.sha1(f"{k}\x1f{text}".encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    voice = f"{rng.choice(ACCENTS)}+{rng.choice(VARIANTS)}"
    return voice, int(rng.choice(SPEEDS)), int(rng.choice(PITCHES))


def say(text: str, voice: str, speed: int, pitch: int, out: Path) -> bool:
    """Synthesise ``text`` into the WAV ``out``; False when espeak-ng fails."""
    if out.is_file():
        return True
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.wav")
    cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(tmp), text]
    try:
        ok = subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        ok = False
    if ok and tmp.is_file() and tmp.stat().st_size > 1000:  # a header alone is no speech
        tmp.replace(out)
        return True
    tmp.unlink(missing_ok=True)
    return False


def sentences(work: Path) -> list[str]:
    """The captions to speak: Tux Paint descriptions, emoji names, Scratch sound names."""
    from . import emoji, scratch, tuxpaint

    texts = list(tuxpaint.descriptions().values())
    texts += [emoji.caption(e) for e in emoji.read_emoji_test()]
    texts += [t.split(", ")[0] for t in scratch.audio_pairs(work)["text"]]
    return list(dict.fromkeys(t for t in texts if t))  # unique, first-seen order


def audio_pairs(
    work: Path,
    *,
    limit: int | None = None,
    texts: Sequence[str] | None = None,
    voices_per_text: int = 2,
    workers: int = 2,
) -> pd.DataFrame:
    """Synthesised speech for each caption (``texts``, default :func:`sentences`)."""
    if shutil.which("espeak-ng") is None:
        raise MissingData("espeak-ng not found: apt-get install espeak-ng")
    chosen = evenly(list(texts) if texts is not None else sentences(work), limit)
    jobs = []
    for text in chosen:
        for k in range(voices_per_text):
            voice, speed, pitch = voice_for(text, k)
            out = work / "speech" / stable_name(text, voice, str(speed), str(pitch), suffix=".wav")
            jobs.append((text, voice, speed, pitch, out))
    with ThreadPoolExecutor(workers) as pool:
        done = list(pool.map(lambda j: say(*j), jobs))
    rows = [
        {"audio": str(out.resolve()), "text": text, "source": "speech", "group": f"speech:{text}"}
        for (text, *_, out), ok in zip(jobs, done, strict=True)
        if ok
    ]
    frame = frame_of(rows, AUDIO_COLUMNS)
    frame.attrs["skipped"] = {"espeak-ng failed": len(jobs) - sum(done)}
    return frame

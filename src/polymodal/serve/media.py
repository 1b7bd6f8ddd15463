"""What an uploaded file is (by its bytes, never its name), and thumbnails of indexed photos."""

from __future__ import annotations

import contextlib
import io
import re
import threading
from pathlib import Path

from polymodal.atomic import atomic_write_bytes

THUMBNAIL_SIDE = 256
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def sniff(data: bytes) -> tuple[str, str] | None:
    """(``"image"`` or ``"audio"``, the extension its format uses), or None, from the bytes."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = str(im.format or "")
            im.verify()
        return "image", _IMAGE_EXT.get(fmt, "." + fmt.lower())
    except Exception:  # Pillow raises many types for "not an image"
        pass
    import soundfile as sf

    try:
        fmt = sf.info(io.BytesIO(data)).format
        return "audio", _AUDIO_EXT.get(fmt, ".wav")
    except Exception:  # libsndfile's "format not recognised" and friends
        pass
    return _av_audio(data)


_IMAGE_EXT = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp", "BMP": ".bmp"}
_IMAGE_EXT |= {"TIFF": ".tif"}
_AUDIO_EXT = {"WAV": ".wav", "FLAC": ".flac", "OGG": ".ogg", "MP3": ".mp3"}


def _av_audio(data: bytes) -> tuple[str, str] | None:
    # mp3 / m4a: containers libsndfile may not read; an audio stream and no video.
    import av

    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.audio or container.streams.video:
                return None
            name = container.format.name
    except Exception:
        return None
    return "audio", ".mp3" if "mp3" in name else ".m4a"


def safe_name(name: str | None, ext: str) -> str:
    """A plain, visible file name for an upload, with the extension of its real format."""
    stem = Path(Path(name or "").name).stem
    stem = _SAFE_NAME.sub("-", stem).strip("-.") or "upload"
    return f"{stem[:80]}{ext}"


class Thumbnails:
    """JPEG thumbnails kept in memory (a few hundred) and on disk beside the store."""

    def __init__(self, folder: Path, *, side: int = THUMBNAIL_SIDE, memory_items: int = 512):
        self.folder = folder
        self.side = side
        self.memory_items = memory_items
        self._memory: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(self, key: str, source: Path) -> bytes:
        """The thumbnail of ``source``; ``key`` must change whenever the file does."""
        with self._lock:
            if key in self._memory:
                return self._memory[key]
        disk = self.folder / f"{key}.jpg"
        try:
            data = disk.read_bytes()
        except OSError:
            data = make_thumbnail(source, self.side)
            with contextlib.suppress(OSError):  # a read-only store still serves thumbnails
                atomic_write_bytes(disk, data)
        with self._lock:
            if len(self._memory) >= self.memory_items:
                self._memory.pop(next(iter(self._memory)))
            self._memory[key] = data
        return data


def make_thumbnail(source: Path, side: int = THUMBNAIL_SIDE) -> bytes:
    """A JPEG at most ``side`` pixels on its longer edge, upright per EXIF."""
    from PIL import Image, ImageOps

    with Image.open(source) as im:
        im.draft("RGB", (side, side))  # JPEG decodes at reduced scale: much faster
        im = ImageOps.exif_transpose(im)
        im = im.convert("RGB")
        im.thumbnail((side, side))
        out = io.BytesIO()
        im.save(out, "JPEG", quality=85)
    return out.getvalue()

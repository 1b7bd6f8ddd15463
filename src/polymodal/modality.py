"""The modalities polymodal understands, and the file extensions that signal them."""

from __future__ import annotations

from enum import StrEnum


class Modality(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"

    @property
    def is_media(self) -> bool:
        """True for modalities whose cells are file paths."""
        return self in (Modality.IMAGE, Modality.AUDIO, Modality.VIDEO)

    @property
    def is_tabular(self) -> bool:
        return self in (Modality.NUMERIC, Modality.CATEGORICAL)


EXTENSIONS: dict[Modality, frozenset[str]] = {
    Modality.IMAGE: frozenset(
        {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
    ),
    Modality.AUDIO: frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3", ".opus", ".aiff", ".aif"}),
    Modality.VIDEO: frozenset({".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg"}),
    Modality.TEXT: frozenset({".txt", ".md"}),
}


def modality_of_path(path: str) -> Modality | None:
    """The media modality a file name suggests by its extension, or None."""
    dot = path.rfind(".")
    if dot < 0:
        return None
    ext = path[dot:].lower()
    for modality, exts in EXTENSIONS.items():
        if ext in exts and modality.is_media:
            return modality
    return None

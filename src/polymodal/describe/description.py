"""What describing one file produces: plain data, turned into JSON or one block of text."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Outcome = Literal["ok", "empty", "error"]
"""``ok``: something was said about the file; ``empty``: it was read but holds no text, speech or
caption (a blank image, silence); ``error``: it could not be read (``problem`` says why)."""


@dataclass(frozen=True)
class Segment:
    """A stretch of speech, in seconds from the start of the file."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class FrameDescription:
    """One key frame of a video: its time, caption and the text read in it."""

    time: float
    caption: str | None = None
    ocr_text: str | None = None


@dataclass
class Description:
    """Everything said about one file; fields that do not apply to its modality stay empty."""

    path: str
    modality: str
    caption: str | None = None
    ocr_text: str | None = None
    transcript: str | None = None
    segments: list[Segment] = field(default_factory=list)
    tags: list[tuple[str, float]] = field(default_factory=list)
    frames: list[FrameDescription] = field(default_factory=list)
    text: str | None = None  # the content of a text file
    outcome: Outcome = "ok"
    problem: str | None = None
    notes: list[str] = field(default_factory=list)  # what was skipped or cut, in words
    seconds: float | None = None  # duration of audio or video

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tags as ``[label, probability]`` pairs)."""
        out = asdict(self)
        out["tags"] = [[label, round(p, 4)] for label, p in self.tags]
        return out

    def as_text(self) -> str:
        """One plain-text block: what a screen reader would say, what search and features read.

        Empty when nothing was found (outcome ``empty`` or ``error``).
        """
        lines: list[str] = []
        if self.caption:
            lines.append(self.caption)
        if self.ocr_text:
            lines.append(f"Text: {self.ocr_text}")
        if self.text:
            lines.append(self.text)
        for frame in self.frames:
            parts = [p for p in (frame.caption, _quoted(frame.ocr_text)) if p]
            if parts:
                lines.append(f"[{clock(frame.time)}] {'; '.join(parts)}")
        if self.segments:
            lines.append("Speech:")
            lines.extend(f"[{clock(s.start)}] {s.text}" for s in self.segments)
        elif self.transcript:
            lines.append(f"Speech: {self.transcript}")
        if self.tags:
            lines.append("Sounds: " + ", ".join(label for label, _ in self.tags))
        return "\n".join(lines)


def clock(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` past an hour)."""
    s = int(seconds)
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def _quoted(text: str | None) -> str | None:
    return f'text "{" / ".join(text.splitlines())}"' if text else None

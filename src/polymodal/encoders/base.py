"""The one contract every encoder follows.

An encoder turns decoded inputs of one modality into *token states* (for cross-attention) and a
*pooled vector*, and states both widths. Work is split in two stages so the data path can run them
on different workers:

* ``decode(value)``: a cell (file path or string) -> model-ready input. Pure CPU, thread-safe,
  raises :class:`~polymodal.errors.InputError` for bad input. Runs in a thread pool.
* ``encode(items)``: a batch of decoded inputs -> one :class:`Embedding` per item. Uses the fastest
  runtime available (ONNX Runtime, CTranslate2, or torch), frozen.

``module()`` exposes the same network as a torch :class:`EncoderModule` for fine-tuning and tests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from polymodal.encoders.weights import WeightSource
from polymodal.modality import Modality

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class EncoderInfo:
    """What an encoder is: its name, modality, output widths and where its weights come from."""

    name: str
    modality: Modality
    width: int
    token_width: int
    source: WeightSource
    description: str = ""
    # Bumped whenever decoding or preprocessing changes, so cached embeddings are invalidated.
    preprocess_version: str = "1"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cache_id(self) -> str:
        """Identity of the embeddings this encoder produces: name, weights and preprocessing."""
        checksum = self.source.checksum or "nochecksum"
        return f"{self.name}@{checksum[:16]}+p{self.preprocess_version}"


@dataclass
class Embedding:
    """One item's encoder output: a pooled vector and, when kept, its token states."""

    pooled: np.ndarray  # (width,) float32
    tokens: np.ndarray | None = None  # (n_tokens, token_width) float16 or float32


class Encoder(ABC):
    """A pre-trained encoder for one modality (see the module docstring for the contract)."""

    info: EncoderInfo

    @abstractmethod
    def decode(self, value: str) -> Any:
        """Read one cell (path or text) into model-ready input; raise InputError if unusable."""

    @abstractmethod
    def encode(self, items: Sequence[Any], *, tokens: bool = False) -> list[Embedding]:
        """Encode a batch of decoded items (frozen, no gradients)."""

    @abstractmethod
    def module(self) -> EncoderModule:
        """The network as a torch module, for fine-tuning and for forward/backward tests."""

    @abstractmethod
    def collate(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        """Stack decoded items into the tensors :meth:`EncoderModule.forward` takes."""

    @abstractmethod
    def example_inputs(self, n: int) -> list[Any]:
        """``n`` random decoded inputs of the right shape, for tests at tiny size."""

    def __repr__(self) -> str:
        info = self.info
        return f"{type(self).__name__}({info.name!r}, {info.modality}, width={info.width})"


def _torch_module_base() -> type:
    import torch

    return torch.nn.Module


class EncoderModule(_torch_module_base()):  # type: ignore[misc]
    """Torch side of an encoder: ``forward(batch) -> (tokens, token_mask, pooled)``.

    ``tokens`` is (B, T, token_width); ``token_mask`` (B, T) is True where a token is real;
    ``pooled`` is (B, width).
    """

    def set_trainable(self, last_blocks: int) -> None:
        """Freeze everything, then unfreeze the last ``last_blocks`` blocks (0 = fully frozen)."""
        for p in self.parameters():
            p.requires_grad_(False)
        if last_blocks > 0:
            for block in self.blocks()[-last_blocks:]:
                for p in block.parameters():
                    p.requires_grad_(True)

    def blocks(self) -> list[Any]:
        """The network's blocks in order, for partial unfreezing. Default: top-level children."""
        return list(self.children())

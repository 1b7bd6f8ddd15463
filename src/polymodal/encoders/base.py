"""The one contract every encoder follows.

An encoder turns decoded inputs of one modality into *token states* (for cross-attention) and a
*pooled vector*, and states both widths. Work is split in two stages so the data path can run them
on different workers:

* ``decode(value)``: a cell (file path or string) -> model-ready input. Pure CPU, thread-safe,
  raises :class:`~polymodal.errors.InputError` for bad input. Runs in a thread pool.
* ``encode(items)``: a batch of decoded inputs -> one :class:`Embedding` per item. Uses the fastest
  runtime available (ONNX Runtime, CTranslate2, or torch), frozen.

``module()`` exposes the same network as a torch :class:`EncoderModule` for fine-tuning and tests.

Nothing here imports torch: a run whose embeddings all come from the cache builds encoders and
reads their ``info`` only, and must not pay for torch. :class:`EncoderModule` lives in
:mod:`polymodal.encoders.module`; ``from polymodal.encoders.base import EncoderModule`` still
works and imports it on first use.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from polymodal.encoders.weights import WeightSource
from polymodal.modality import Modality

if TYPE_CHECKING:
    import torch

    from polymodal.encoders.module import EncoderModule

T = TypeVar("T")


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


class Lazy(Generic[T]):
    """What ``load()`` returns, computed on the first :meth:`get` only, once even if threads race.

    Encoders keep their networks, sessions and tokenizers behind one of these, so that building an
    encoder costs nothing until something is decoded or encoded. A ``load`` that raises is retried
    by the next :meth:`get`.
    """

    def __init__(self, load: Callable[[], T]) -> None:
        self._load = load
        self._value: T | None = None
        self._loaded = False
        self._lock = threading.Lock()

    @classmethod
    def of(cls, value: T) -> Lazy[T]:
        """An already loaded value."""
        lazy = cls(lambda: value)
        lazy.get()
        return lazy

    @property
    def loaded(self) -> bool:
        return self._loaded

    def get(self) -> T:
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self._value = self._load()
                    self._loaded = True
        return self._value  # type: ignore[return-value]


def __getattr__(name: str) -> Any:
    # PEP 562: ``EncoderModule`` moved to ``polymodal.encoders.module``; importing it from here
    # keeps working, and only then pays for torch.
    if name == "EncoderModule":
        from polymodal.encoders.module import EncoderModule

        return EncoderModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Align two modalities in one space: contrastive heads over frozen encoders, zero-shot, retrieval.

Data flow: cached pooled embeddings of two columns -> :func:`train_alignment` (projection heads,
InfoNCE or SigLIP loss with a learned temperature) -> :class:`Alignment` (saved as config JSON +
safetensors) -> :class:`ZeroShotClassifier` and :func:`retrieval_metrics`.
"""

from __future__ import annotations

from typing import Any

from polymodal.align.heads import ProjectionHead
from polymodal.align.losses import ContrastiveLoss, SigLipLoss, build_loss
from polymodal.align.model import Alignment, Side
from polymodal.align.retrieval import Estimate, retrieval_metrics, wilson_interval
from polymodal.align.train import TrainHistory, train_alignment

__all__ = [
    "Alignment",
    "ContrastiveLoss",
    "Estimate",
    "ProjectionHead",
    "Side",
    "SigLipLoss",
    "TrainHistory",
    "build_loss",
    "retrieval_metrics",
    "train_alignment",
    "wilson_interval",
]


def __getattr__(name: str) -> Any:
    # Zero-shot, ConSE and the shipped defaults load encoders: import them only when asked for.
    if name in ("ZeroShotClassifier", "build_zero_shot_classifier"):
        from polymodal.align import zeroshot

        return getattr(zeroshot, name)
    if name == "load_default":
        from polymodal.align.default import load_default

        return load_default
    if name == "ConSE":
        from polymodal.align.conse import ConSE

        return ConSE
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

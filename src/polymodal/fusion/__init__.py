"""Fusion modules: per-slot tensors with presence masks in, one fused tensor out."""

from polymodal.fusion.base import FusionModule, SlotBatch, SlotSpec
from polymodal.fusion.early import EarlyFusion
from polymodal.fusion.hybrid import HybridFusion
from polymodal.fusion.late import LateFusion
from polymodal.fusion.registry import FUSION_KINDS, build_fusion

__all__ = [
    "FUSION_KINDS",
    "EarlyFusion",
    "FusionModule",
    "HybridFusion",
    "LateFusion",
    "SlotBatch",
    "SlotSpec",
    "build_fusion",
]

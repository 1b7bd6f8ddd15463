"""Batching of tokenised text, shared by every text encoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def pad_token_ids(sequences: Sequence[np.ndarray], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad token id sequences to the longest: ``input_ids`` and ``attention_mask`` (B, T)."""
    import torch

    width = max(len(seq) for seq in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, seq in enumerate(sequences):
        ids[i, : len(seq)] = torch.from_numpy(np.asarray(seq, dtype=np.int64))
        mask[i, : len(seq)] = 1
    return {"input_ids": ids, "attention_mask": mask}

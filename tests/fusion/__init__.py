"""Tiny slots and batches shared by the fusion tests.

Three slots of different widths: an image slot with a 3x3 token grid, an audio slot with token
sequences of varying length, a tabular slot with one token per column. Six rows cover every path:
rows 0-1 have every slot, rows 2, 3 and 5 each lack one slot, row 4 has none.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from polymodal.fusion import FusionModule, SlotBatch, SlotSpec, build_fusion
from polymodal.modality import Modality

SLOTS = (
    SlotSpec("photo", Modality.IMAGE, width=12, token_width=6, max_tokens=9),
    SlotSpec("speech", Modality.AUDIO, width=10, token_width=5, max_tokens=7),
    SlotSpec("tabular", Modality.NUMERIC, width=8, token_width=8, max_tokens=3),
)

PRESENT = {
    "photo": [True, True, False, True, False, True],
    "speech": [True, True, True, False, False, True],
    "tabular": [True, True, True, True, False, False],
}
# Unmasked tokens per row; speech lengths vary so that pooling and padding are exercised.
LENGTHS = {
    "photo": [9, 9, 9, 9, 9, 9],
    "speech": [7, 3, 5, 0, 7, 2],
    "tabular": [3, 2, 3, 3, 3, 3],
}

# name -> build_fusion keyword arguments, at tiny size.
CONFIGS: dict[str, dict] = {
    "early": {"kind": "early"},
    "linear": {"kind": "linear"},
    "late-weights": {"kind": "late", "late_combiner": "weights"},
    "late-stacking": {"kind": "late", "late_combiner": "stacking"},
    "hybrid-pooled": {"kind": "hybrid", "tokens": "pooled"},
    # max_tokens 4: the 3x3 photo grid pools to 2x2, speech (7 tokens) to 4, tabular (3) stays.
    "hybrid-sequence": {"kind": "hybrid", "tokens": "sequence", "max_tokens": 4},
}
N_OUTPUTS = 3


def tiny_fusion(config: str, seed: int = 0, slots: tuple[SlotSpec, ...] = SLOTS) -> FusionModule:
    torch.manual_seed(seed)
    return build_fusion(
        slots=slots, n_outputs=N_OUTPUTS, hidden=16, heads=2, depth=2, **CONFIGS[config]
    )


def make_batch(seed: int = 0, rows: int = 6) -> dict[str, SlotBatch]:
    """Random values everywhere, absent rows and padding included."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for spec in SLOTS:
        present = torch.tensor(PRESENT[spec.name][:rows])
        lengths = torch.tensor(LENGTHS[spec.name][:rows])
        mask = torch.arange(spec.max_tokens) < lengths.unsqueeze(-1)
        out[spec.name] = SlotBatch(
            pooled=torch.randn(rows, spec.width, generator=gen),
            present=present,
            tokens=torch.randn(rows, spec.max_tokens, spec.token_width, generator=gen),
            token_mask=mask,
        )
    return out


def fill_hidden(
    batch: dict[str, SlotBatch], value: float | None, *, absent: bool = True, padding: bool = True
) -> dict[str, SlotBatch]:
    """A copy where absent rows and/or padded tokens hold ``value`` (None: large random garbage)."""

    def fill(x: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
        garbage = 1e4 * torch.randn_like(x) if value is None else torch.full_like(x, value)
        return torch.where(where.unsqueeze(-1), garbage, x)

    out = {}
    for name, b in batch.items():
        gone = ~b.present if absent else torch.zeros_like(b.present)
        hidden_tokens = gone.unsqueeze(-1) | (~b.token_mask if padding else False)
        out[name] = SlotBatch(
            pooled=fill(b.pooled, gone),
            present=b.present,
            tokens=fill(b.tokens, hidden_tokens),
            token_mask=b.token_mask,
        )
    return out


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads, and on shared, busy cores OpenMP's barrier
    waits make a millisecond step take tens of milliseconds."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

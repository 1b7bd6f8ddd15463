"""Hybrid fusion's token pooling: each row's own tokens, masked ones ignored."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from polymodal.fusion import SlotBatch
from polymodal.fusion.hybrid import pool_tokens
from tests.fusion import (
    make_batch,
    one_torch_thread,  # noqa: F401
    tiny_fusion,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_sequences_pool_over_each_rows_own_tokens() -> None:
    tokens = torch.arange(2 * 8 * 2, dtype=torch.float32).reshape(2, 8, 2)
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[1] = torch.tensor([True, False, True, False, False, True, False, False])
    tokens[1, ~mask[1]] = 1e6  # padding must not leak into any bin
    pooled, keep = pool_tokens(tokens, mask, 4)
    assert pooled.shape == (2, 4, 2)
    # Row 0: 8 tokens -> 4 pairs.
    assert_close(pooled[0], tokens[0].reshape(4, 2, 2).mean(1))
    # Row 1: 3 tokens fit in 4 bins, so each stays whole; one bin is empty and masked.
    assert keep[1].sum() == 3
    assert_close(pooled[1][keep[1]], tokens[1][mask[1]])
    assert keep[0].all()


def test_short_sequences_are_left_alone() -> None:
    tokens, mask = torch.randn(3, 4, 5), torch.rand(3, 4) > 0.5
    pooled, keep = pool_tokens(tokens, mask, 4)
    assert pooled is tokens and keep is mask


def test_square_image_grids_pool_in_space() -> None:
    grid = torch.randn(2, 49, 3)
    mask = torch.ones(2, 49, dtype=torch.bool)
    pooled, keep = pool_tokens(grid, mask, 16, grid=True)
    expected = F.adaptive_avg_pool2d(grid.transpose(1, 2).reshape(2, 3, 7, 7), 4)
    assert_close(pooled, expected.flatten(2).transpose(1, 2))
    assert pooled.shape == (2, 16, 3) and keep.all()
    # As a plain sequence the same grid would be pooled in runs along rows instead.
    as_sequence, _ = pool_tokens(grid, mask, 16)
    assert not torch.allclose(as_sequence, pooled)


def test_masked_grid_cells_are_ignored() -> None:
    grid = torch.randn(1, 9, 2)
    mask = torch.ones(1, 9, dtype=torch.bool)
    mask[0, 0] = False
    clean, keep = pool_tokens(grid, mask, 1, grid=True)
    grid[0, 0] = 1e6
    dirty, _ = pool_tokens(grid, mask, 1, grid=True)
    assert_close(dirty, clean)
    assert_close(clean[0, 0], grid[0, 1:].mean(0))
    assert keep.all()


def test_hybrid_pools_image_grids_in_space_and_audio_in_time() -> None:
    fusion = tiny_fusion("hybrid-sequence").eval()  # max_tokens 4
    batch = make_batch()
    pre = dict(batch)
    for name, grid in (("photo", True), ("speech", False)):
        b = batch[name]
        tokens, mask = pool_tokens(b.tokens, b.token_mask, 4, grid=grid)
        pre[name] = SlotBatch(b.pooled, b.present, tokens, mask)
    assert pre["photo"].tokens.shape[1] == 4  # 3x3 -> 2x2
    assert_close(fusion(batch), fusion(pre), rtol=1e-5, atol=1e-5)

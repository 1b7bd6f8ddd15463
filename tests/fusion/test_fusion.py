"""The fusion contract, checked on every kind at tiny size."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from polymodal.errors import ConfigError
from polymodal.fusion import FUSION_KINDS, SlotBatch, SlotSpec, build_fusion
from polymodal.modality import Modality
from tests.fusion import (
    CONFIGS,
    N_OUTPUTS,
    SLOTS,
    fill_hidden,
    make_batch,
    one_torch_thread,  # noqa: F401
    tiny_fusion,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ALL = pytest.mark.parametrize("config", sorted(CONFIGS))


def test_every_kind_is_tested() -> None:
    assert {c["kind"] for c in CONFIGS.values()} == set(FUSION_KINDS)


@ALL
def test_forward_shape(config: str) -> None:
    fusion = tiny_fusion(config).eval()
    out = fusion(make_batch())
    kind = CONFIGS[config]["kind"]
    assert fusion.produces_outputs is (kind == "late")
    # Linear fusion outputs every slot's (hidden-wide) projection side by side.
    expected = {"late": N_OUTPUTS, "linear": 16 * len(SLOTS)}.get(kind, 16)
    assert fusion.out_dim == expected
    assert out.shape == (6, fusion.out_dim)
    assert torch.isfinite(out).all()  # row 4 has no slot at all


@ALL
def test_backward_reaches_every_parameter(config: str) -> None:
    fusion = tiny_fusion(config).train()
    out = fusion(make_batch())
    (out * torch.randn_like(out)).sum().backward()
    for name, param in fusion.named_parameters():
        assert param.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"
        assert param.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


@ALL
def test_absent_slot_values_cannot_change_output(config: str) -> None:
    fusion = tiny_fusion(config).eval()
    batch = make_batch()
    zeros = fusion(fill_hidden(batch, 0.0, padding=False))
    garbage = fusion(fill_hidden(batch, None, padding=False))
    assert_close(garbage, zeros)
    # Not vacuous: the same change in a present row does move the output.
    moved = fill_hidden(batch, None, padding=False)
    moved["photo"].pooled[0] = torch.randn(12)
    moved["photo"].tokens[0] = torch.randn(9, 6)
    assert not torch.allclose(fusion(moved)[0], zeros[0])


@ALL
def test_padded_tokens_cannot_change_output(config: str) -> None:
    fusion = tiny_fusion(config).eval()
    batch = make_batch()
    zeros = fusion(fill_hidden(batch, 0.0, absent=False))
    garbage = fusion(fill_hidden(batch, None, absent=False))
    assert_close(garbage, zeros)


@ALL
def test_nan_in_absent_rows_never_reaches_output_or_gradients(config: str) -> None:
    fusion = tiny_fusion(config).train()
    torch.manual_seed(1)
    out = fusion(fill_hidden(make_batch(), float("nan")))
    out.sum().backward()
    assert torch.isfinite(out).all()
    for name, param in fusion.named_parameters():
        assert torch.isfinite(param.grad).all(), name


@ALL
def test_deterministic_given_seed(config: str) -> None:
    batch = make_batch()
    a = tiny_fusion(config, seed=3).eval()(batch)
    b = tiny_fusion(config, seed=3).eval()(batch)
    c = tiny_fusion(config, seed=4).eval()(batch)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


@ALL
def test_slot_left_out_of_inputs_is_absent(config: str) -> None:
    fusion = tiny_fusion(config).eval()
    batch = make_batch()
    marked = dict(batch)
    b = batch["speech"]
    marked["speech"] = SlotBatch(b.pooled, torch.zeros_like(b.present), b.tokens, b.token_mask)
    left_out = {k: v for k, v in batch.items() if k != "speech"}
    assert_close(fusion(left_out), fusion(marked))


@ALL
def test_rows_with_no_slot_are_finite(config: str) -> None:
    fusion = tiny_fusion(config).eval()
    batch = fill_hidden(make_batch(), 0.0)
    for b in batch.values():
        b.present.zero_()
    out = fusion(batch)
    assert torch.isfinite(out).all()
    assert_close(out, out[:1].expand_as(out))  # every row is the learned "nothing known" output


def test_present_slot_with_every_token_masked_counts_as_absent() -> None:
    fusion = tiny_fusion("hybrid-sequence").eval()
    batch = make_batch()
    no_tokens, absent = dict(batch), dict(batch)
    b = batch["speech"]
    no_tokens["speech"] = SlotBatch(b.pooled, b.present, b.tokens, torch.zeros_like(b.token_mask))
    absent["speech"] = SlotBatch(b.pooled, torch.zeros_like(b.present), b.tokens, b.token_mask)
    out = fusion(no_tokens)
    assert torch.isfinite(out).all()
    assert_close(out, fusion(absent))


def test_extra_padding_columns_cannot_change_output() -> None:
    fusion = tiny_fusion("hybrid-sequence").eval()
    batch = make_batch()
    longer = dict(batch)
    b = batch["speech"]
    pad = 5
    longer["speech"] = SlotBatch(
        b.pooled,
        b.present,
        torch.cat([b.tokens, 1e3 * torch.randn(6, pad, 5)], dim=1),
        torch.cat([b.token_mask, torch.zeros(6, pad, dtype=torch.bool)], dim=1),
    )
    assert_close(fusion(longer), fusion(batch), rtol=1e-5, atol=1e-5)


def test_half_precision_tokens_are_accepted() -> None:
    # The embedding cache stores token states as float16.
    fusion = tiny_fusion("hybrid-sequence").eval()
    batch = make_batch()
    half = {
        k: SlotBatch(b.pooled, b.present, b.tokens.half(), b.token_mask) for k, b in batch.items()
    }
    assert_close(fusion(half), fusion(batch), rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "middle"}, "unknown fusion 'middle'"),
        ({"kind": "hybrid", "heads": 3}, "divisible by heads"),
        ({"kind": "hybrid", "tokens": "grid"}, "tokens must be one of"),
        ({"kind": "late", "late_combiner": "vote"}, "combiner must be one of"),
        ({"kind": "early", "depth": -1}, "depth >= 0"),
    ],
)
def test_bad_configuration_is_a_config_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        build_fusion(slots=SLOTS, n_outputs=2, hidden=16, **kwargs)


def test_bad_slots_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        build_fusion("early", [], n_outputs=2)
    twice = [SLOTS[0], SLOTS[0]]
    with pytest.raises(ConfigError, match="unique"):
        build_fusion("early", twice, n_outputs=2)


@pytest.mark.parametrize("kind", FUSION_KINDS)
def test_inputs_that_do_not_match_the_slots_are_config_errors(kind: str) -> None:
    fusion = build_fusion(kind, SLOTS, n_outputs=2, hidden=16, tokens="pooled")
    batch = make_batch()
    with pytest.raises(ConfigError, match="no slot named 'video'"):
        fusion({**batch, "video": batch["photo"]})
    b = batch["photo"]
    with pytest.raises(ConfigError, match=r"slot 'photo': pooled has shape \(6, 11\)"):
        fusion({**batch, "photo": SlotBatch(b.pooled[:, :11], b.present, b.tokens, b.token_mask)})
    with pytest.raises(ConfigError, match="present must be a bool"):
        fusion({**batch, "photo": SlotBatch(b.pooled, b.present.float(), b.tokens, b.token_mask)})


def test_sequence_mode_needs_token_states() -> None:
    fusion = tiny_fusion("hybrid-sequence")
    batch = make_batch()
    b = batch["speech"]
    with pytest.raises(ConfigError, match="slot 'speech' has no token states"):
        fusion({**batch, "speech": SlotBatch(b.pooled, b.present)})


def test_one_wide_slot_keeps_its_signal() -> None:
    # A LayerNorm over one value would map every input to the same constant.
    slots = [SlotSpec("price", Modality.NUMERIC, width=1, token_width=1)]
    fusion = build_fusion("early", slots, n_outputs=1, hidden=8).eval()
    present = torch.ones(2, dtype=torch.bool)
    out = fusion({"price": SlotBatch(torch.tensor([[-1.0], [2.0]]), present)})
    assert not torch.allclose(out[0], out[1])

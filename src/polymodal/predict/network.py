"""The predictor's network: tabular tokenizer + (optionally fine-tuned) encoders + fusion + head.

Frozen encoders never appear here: their cached embeddings arrive in :class:`FeatureTensors`.
With fine-tuning, the encoder's torch module runs inside :meth:`PredictorNetwork.forward` on the
decoded inputs of the rows where the column is present.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from polymodal.encoders.base import Encoder
from polymodal.encoders.module import EncoderModule
from polymodal.encoders.tabular import (
    TabularEncoderModule,
    TabularPreprocessor,
    tabular_module_for,
)
from polymodal.errors import ConfigError
from polymodal.fusion.base import FusionModule, SlotBatch, SlotSpec
from polymodal.predict.features import FeatureTensors

Collate = Callable[[Sequence[Any]], dict[str, torch.Tensor]]
# One bool per slot for all rows, or a (B,) bool tensor: False forces the slot absent.
Keep = Mapping[str, bool | torch.Tensor]


class PredictorNetwork(nn.Module):
    """``forward(features, keep=None) -> (B, n_outputs)`` logits or standardised predictions."""

    def __init__(
        self,
        slots: Sequence[SlotSpec],
        fusion: FusionModule,
        *,
        n_outputs: int,
        tabular: TabularEncoderModule | None = None,
        tabular_slot: str | None = None,
        encoders: Mapping[str, EncoderModule] | None = None,
        collate: Mapping[str, Collate] | None = None,
    ) -> None:
        super().__init__()
        self.specs = {s.name: s for s in slots}
        self.fusion = fusion
        self.tabular = tabular
        self.tabular_slot = tabular_slot
        encoders = dict(encoders or {})
        self.encoder_slots = list(encoders)
        # Indexed by position: column names may hold dots, which ModuleDict keys may not.
        self.encoders = nn.ModuleList(encoders.values())
        self._collate = dict(collate or {})
        self.head = None if fusion.produces_outputs else nn.Linear(fusion.out_dim, n_outputs)
        self.n_outputs = n_outputs

    def train(self, mode: bool = True) -> PredictorNetwork:
        super().train(mode)
        # Fine-tuned encoders stay in eval mode: their frozen BatchNorm statistics must not drift
        # and the pre-trained dropout rates are not ours to apply.
        for module in self.encoders:
            module.eval()
        return self

    def forward(self, x: FeatureTensors, keep: Keep | None = None) -> torch.Tensor:
        fused = self.fusion(self.slot_batches(x, keep))
        return fused if self.head is None else self.head(fused)

    def slot_batches(self, x: FeatureTensors, keep: Keep | None = None) -> dict[str, SlotBatch]:
        """One :class:`SlotBatch` per slot, with ``keep`` applied to the presence masks."""
        out: dict[str, SlotBatch] = {}
        for name, spec in self.specs.items():
            if name == self.tabular_slot:
                batch = self._tabular_batch(spec, x)
            elif name in self.encoder_slots:
                batch = self._encoded_batch(spec, x)
            else:
                t = x.slots[name]
                tokens = t.get("tokens") if spec.max_tokens > 1 else None
                batch = SlotBatch(
                    t["pooled"],
                    t["present"],
                    None if tokens is None else tokens.float(),
                    None if tokens is None else t["token_mask"],
                )
            if keep is not None and name in keep:
                batch.present = batch.present & _as_mask(keep[name], batch.present)
            out[name] = batch
        return out

    def _tabular_batch(self, spec: SlotSpec, x: FeatureTensors) -> SlotBatch:
        if self.tabular is None or x.tabular is None:
            raise ConfigError("the network has a tabular slot but the features have no table")
        tokens, mask, pooled = self.tabular(x.tabular)
        if spec.max_tokens > 1:
            return SlotBatch(pooled, mask.any(dim=1), tokens, mask)
        return SlotBatch(pooled, mask.any(dim=1))

    def _encoded_batch(self, spec: SlotSpec, x: FeatureTensors) -> SlotBatch:
        module = self.encoders[self.encoder_slots.index(spec.name)]
        items = x.decoded[spec.name]
        present = x.slots[spec.name]["present"]
        rows = [i for i, item in enumerate(items) if item is not None]
        n = len(items)
        pooled = torch.zeros(n, spec.width)
        tokens = mask = None
        if spec.max_tokens > 1:
            tokens = torch.zeros(n, 1, spec.token_width)
            mask = torch.zeros(n, 1, dtype=torch.bool)
        if rows:
            toks, tmask, p = module(self._collate[spec.name]([items[i] for i in rows]))
            index = torch.tensor(rows, dtype=torch.long)
            pooled = pooled.index_copy(0, index, p.float())
            if tokens is not None:
                # Token states go to the fusion unpooled: hybrid fusion pools them to its cap.
                tokens = (
                    toks.new_zeros(n, *toks.shape[1:]).float().index_copy(0, index, toks.float())
                )
                mask = torch.zeros(n, toks.shape[1], dtype=torch.bool).index_copy(
                    0, index, tmask.bool()
                )
        return SlotBatch(pooled, present, tokens, mask)


class EnsembleNetwork(nn.Module):
    """Several :class:`PredictorNetwork` of one architecture, trained from different seeds; the
    output is their mean log-probabilities (classification) or mean prediction (regression), so
    it reads like one network's output everywhere (softmax, attribution, robustness).
    """

    def __init__(self, members: Sequence[PredictorNetwork], *, classification: bool) -> None:
        super().__init__()
        if not members:
            raise ConfigError("an ensemble needs at least one network")
        self.members = nn.ModuleList(members)
        self.classification = classification
        self.specs = members[0].specs
        self.n_outputs = members[0].n_outputs

    @property
    def encoders(self) -> nn.ModuleList:
        """The first member's fine-tuned encoders (every member has the same kind)."""
        return self.members[0].encoders

    def forward(self, x: FeatureTensors, keep: Keep | None = None) -> torch.Tensor:
        outs = torch.stack([m(x, keep) for m in self.members])
        if self.classification:
            outs = torch.log_softmax(outs, dim=-1)
        return outs.mean(dim=0)


# What a fitted predictor runs: one network or an ensemble of them.
Network = PredictorNetwork | EnsembleNetwork


def fine_tuned_modules(
    encoders: Mapping[str, Encoder], blocks: int
) -> tuple[dict[str, EncoderModule], dict[str, Collate]]:
    """A private copy of each encoder's torch module with its last ``blocks`` blocks trainable."""
    modules: dict[str, EncoderModule] = {}
    collate: dict[str, Collate] = {}
    for slot, encoder in encoders.items():
        module = copy.deepcopy(encoder.module())
        module.set_trainable(blocks)
        modules[slot] = module
        collate[slot] = encoder.collate
    return modules, collate


def _as_mask(value: bool | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.to(torch.bool)
    return torch.full_like(like, bool(value), dtype=torch.bool)


def make_network(
    kind: str,
    slots: Sequence[SlotSpec],
    *,
    n_outputs: int,
    hidden: int,
    depth: int,
    dropout: float,
    tokens: str,
    max_tokens: int = 16,
    tabular: TabularPreprocessor | None = None,
    tabular_slot: str | None = None,
    fine_tune: Mapping[str, Encoder] | None = None,
    fine_tune_blocks: int = 0,
) -> PredictorNetwork:
    """Build the fusion ``kind`` over ``slots`` and wrap it with the tabular module and head.

    ``fine_tune`` maps slots to encoders whose last ``fine_tune_blocks`` blocks train with it.
    A fresh tabular module sized for the fitted ``tabular`` preprocessor is built when
    ``tabular_slot`` is among ``slots``; its width is that slot's.
    """
    from polymodal.fusion import build_fusion

    fusion = build_fusion(
        kind,
        slots,
        n_outputs=n_outputs,
        hidden=hidden,
        dropout=dropout,
        depth=depth,
        tokens=tokens,
        max_tokens=max_tokens,
    )
    names = {s.name for s in slots}
    modules, collate = fine_tuned_modules(
        {s: e for s, e in (fine_tune or {}).items() if s in names}, fine_tune_blocks
    )
    module = None
    if tabular is not None and tabular_slot in names:
        width = next(s.width for s in slots if s.name == tabular_slot)
        module = tabular_module_for(tabular, width)
    return PredictorNetwork(
        slots,
        fusion,
        n_outputs=n_outputs,
        tabular=module,
        tabular_slot=tabular_slot if module is not None else None,
        encoders=modules,
        collate=collate,
    )

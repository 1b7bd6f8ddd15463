"""BLEU-4 and CIDEr-D on small cases worked out by hand."""

from __future__ import annotations

import math

import pytest

from polymodal.describe.captions.metrics import (
    bleu,
    bleu4,
    caption_scores,
    cider_d,
    cider_d_scores,
    ngrams,
)
from polymodal.describe.captions.text import detokenize, tokens, words


def test_words_drop_case_and_punctuation() -> None:
    assert words("Bored dog: mammal, animal.") == ["bored", "dog", "mammal", "animal"]
    assert words("A child's toy") == ["a", "child's", "toy"]
    assert tokens(": Bored dog: mammal") == ["bored", "dog", ":", "mammal"]
    assert detokenize(["bored", "dog", ":", "mammal", ",", "animal"]) == "Bored dog: mammal, animal"


def test_ngrams_counts_every_order() -> None:
    grams = ngrams(["a", "b", "a", "b"], 2)
    assert grams[("a",)] == 2 and grams[("a", "b")] == 2 and grams[("b", "a")] == 1


def test_bleu_exact_match_is_one() -> None:
    assert bleu4(["a dog runs on the grass"], [["A dog runs on the grass."]]) == pytest.approx(1.0)


def test_bleu_hand_computed() -> None:
    # p1 = 6/7, p2 = 4/6, p3 = 2/5, p4 = 1/4; same length, so no brevity penalty.
    got = bleu4(["a small red car on the road"], [["a small red car in the road"]])
    assert got == pytest.approx((6 / 7 * 4 / 6 * 2 / 5 * 1 / 4) ** 0.25, rel=1e-6)


def test_bleu_clips_repeats_and_penalises_brevity() -> None:
    # "the the the": unigram precision clipped to 2/3 by the reference's two "the".
    assert bleu(["the the the"], [["the cat on the mat"]], n=1)[0] == pytest.approx(
        2 / 3 * math.exp(1 - 5 / 3), rel=1e-6
    )


def test_bleu_uses_the_closest_reference_length() -> None:
    one = bleu(["a cat"], [["a cat", "a cat sat on a mat"]], n=1)[0]
    assert one == pytest.approx(1.0)  # the 2-word reference is the closest: no penalty


def test_bleu_with_no_four_gram_match_is_near_zero() -> None:
    assert bleu4(["the cat sat on the mat"], [["the cat is on the mat"]]) < 1e-3


def test_cider_hand_computed() -> None:
    refs = [["a red car"], ["a blue bird"]]
    # "a" is in every reference: idf 0. Every other 1-, 2-, 3-gram matches with cosine 1, no
    # 4-grams: (1 + 1 + 1 + 0) / 4 * 10 = 7.5.
    assert cider_d_scores(["a red car", "a blue bird"], refs).tolist() == pytest.approx([7.5, 7.5])
    # "red car": unigrams cosine 1, bigrams 1/sqrt(2), one bigram shorter: exp(-1 / 72).
    expected = (1 + 2**-0.5) / 4 * 10 * math.exp(-1 / 72)
    assert cider_d_scores(["red car", "a blue bird"], refs)[0] == pytest.approx(expected)
    assert cider_d(["a blue bird", "a red car"], refs) == pytest.approx(0.0)


def test_cider_with_one_image_is_zero() -> None:
    # With one image every n-gram is in every document: all idf weights are 0.
    assert cider_d(["a red car"], [["a red car"]]) == 0.0


def test_cider_averages_over_references() -> None:
    refs = [["a red car", "a blue bird"], ["a green frog"]]
    two = cider_d_scores(["a red car", "a green frog"], refs)
    # Against "a blue bird" the first candidate shares only "a" (idf 0): half of the score.
    assert two[0] == pytest.approx(two[1] / 2, rel=0.05)


def test_scores_reject_bad_shapes() -> None:
    with pytest.raises(ValueError, match="2 candidates but 1"):
        bleu4(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="non-empty list"):
        cider_d(["a"], ["a"])  # a bare string, not a list of references
    assert caption_scores(["a red car", "a blue bird"], [["a red car"], ["a blue bird"]])[
        "CIDEr-D"
    ] == pytest.approx(7.5)

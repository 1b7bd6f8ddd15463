"""Label names: WordNet reader, non-word splitting, expansion into weighted phrases."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from polymodal.align.labels import (
    LabelNote,
    check_distinct,
    expand_labels,
    label_phrases,
    label_senses,
    nearest_noun,
    readable_label,
    split_compound,
)
from polymodal.align.wordnet import WordNet, imagenet_synsets, load_wordnet
from polymodal.align.zeroshot import ZeroShotClassifier, build_zero_shot_classifier
from polymodal.errors import ConfigError


@pytest.fixture(scope="module")
def wn() -> WordNet:
    found = load_wordnet()
    if found is None:
        pytest.skip("WordNet 3.0 files absent (Debian package wordnet-base)")
    return found


def test_reader_finds_senses_bases_and_graph(wn: WordNet) -> None:
    shirt = wn.synsets("shirt")[0]
    assert shirt.wnid == "n04197391" and shirt.lemmas == ("shirt",)
    assert "upper half of the body" in shirt.gloss
    # morphy: "pants" also reaches "pant" (trousers); "t-shirt" is ImageNet's T-shirt class
    assert 4489008 in [s.offset for s in wn.synsets("pants")]
    tee = wn.synsets("t-shirt")[0]
    assert tee.wnid == "n03595614" and shirt.offset in tee.hypernyms
    assert tee.offset in wn.descendants(shirt.offset)
    garment = wn.synsets("garment")[0].offset
    assert garment in wn.ancestors(tee.offset)
    assert wn.synset(wn.synsets("sleeve")[0].offset).holonyms == (garment,)
    assert wn.synsets("notaword") == []


def test_imagenet_names_map_to_their_ids(wn: WordNet) -> None:
    from polymodal.encoders.image_efficientnet import imagenet_class_names

    names = imagenet_class_names()
    offsets = imagenet_synsets(wn, names)
    assert offsets[0] == 1440764 and offsets[1] == 1443537 and offsets[-1] == 15075141
    # the two cranes: the bird, then the machine
    assert names.index("crane bird") < names.index("construction crane")
    bird, machine = offsets[names.index("crane bird")], offsets[names.index("construction crane")]
    assert bird is not None and machine is not None and bird < machine
    assert offsets[names.index("T-shirt")] == 3595614
    assert sum(o is None for o in offsets) < 60


def test_split_compound_with_a_word_list() -> None:
    words = {"long", "sleeve", "cat", "dog", "out", "wear"}

    def known(w: str, *, compound: bool = False) -> bool:
        return not compound and w.lower() in words

    assert split_compound("longsleeve", known) == "long sleeve"
    assert split_compound("catdog", known) == "cat dog"
    assert split_compound("dog", known) == "dog"  # a word already
    assert split_compound("notaword", known) == "notaword"  # no split exists


def test_readable_label_normalises_separators_without_wordnet() -> None:
    words = frozenset({"long", "sleeve", "blue", "jeans", "outer", "wear"})
    assert readable_label("longsleeve", words=words) == "long sleeve"
    assert readable_label("blue_jeans", words=words) == "blue jeans"
    assert readable_label("Outer-Wear", words=words) == "Outer Wear"
    assert readable_label("  zebra  ", words=words) == "zebra"  # unknown, left as it is


def test_readable_label_uses_wordnet_nouns(wn: WordNet) -> None:
    assert readable_label("longsleeve", wordnet=wn) == "long sleeve"
    assert readable_label("outwear", wordnet=wn) == "outerwear"  # a verb; the noun lost "er"
    assert readable_label("tshirt", wordnet=wn) == "t-shirt"
    assert readable_label("t-shirt", wordnet=wn) == "t-shirt"
    assert nearest_noun("zzzzzzzz", wn) is None


def test_senses_follow_the_label_lists_domain(wn: WordNet) -> None:
    garments = label_senses(wn, ["skirt", "dress", "shirt"])
    assert garments[0] is not None and "garment" in garments[0].gloss  # not the woman
    assert label_senses(wn, ["notaword", "dog"])[0] is None
    # two rare senses must not pick each other: both are trousers here, not underwear
    pants, shorts = label_senses(wn, ["pants", "shorts", "shirt", "dress", "hat", "skirt"])[:2]
    assert pants is not None and "underpants" not in pants.gloss, pants.gloss
    assert shorts is not None and "underpants" not in shorts.gloss, shorts.gloss
    phrases = label_phrases("shirt", garments[2])
    assert phrases[0] == ("shirt", 1.0)
    assert any("upper half of the body" in p for p, _ in phrases[1:])


class WordSpace:
    """A text space whose vector depends on the words of a prompt (bag of hashed words)."""

    scale = 10.0

    def side_of(self, modality: Any) -> str:
        return "b" if str(modality) in ("text", "Modality.TEXT") else "a"

    def embed(self, side: str, embeddings: Any) -> np.ndarray:
        x = np.asarray(embeddings, dtype=np.float64)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def encode_values(self, side: str, values: Sequence[str], **_: Any) -> np.ndarray:
        out = np.zeros((len(values), 64))
        for i, v in enumerate(values):
            for w in v.replace(",", " ").split():
                out[i, sum(map(ord, w)) % 64] += 1.0
        return self.embed(side, out + 1e-3)


def test_expansion_changes_the_class_vectors(wn: WordNet) -> None:
    labels = ["longsleeve", "dress"]
    plain = ZeroShotClassifier(labels, ["{}"], alignment=WordSpace(), expand_labels=False)
    expanded = ZeroShotClassifier(labels, ["{}"], alignment=WordSpace())
    assert expanded.labels == labels  # predictions keep the user's names
    assert expanded.phrases is not None and expanded.phrases[0][0] == ("long sleeve", 1.0)
    assert not np.allclose(plain.weights, expanded.weights)
    np.testing.assert_allclose(np.linalg.norm(expanded.weights, axis=0), 1.0, atol=1e-6)
    # one phrase per label at weight 1 is the plain classifier
    same = build_zero_shot_classifier(
        WordSpace(), labels, ["{}"], phrases=[[(x, 1.0)] for x in labels]
    )
    np.testing.assert_allclose(same, plain.weights, atol=1e-7)


def test_without_wordnet_labels_stay_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLYMODAL_WORDNET", str(tmp_path))
    with pytest.warns(LabelNote, match="wordnet-base"):
        assert expand_labels(["longsleeve", "dress"]) == [[("longsleeve", 1.0)], [("dress", 1.0)]]


def test_labels_that_read_the_same_after_expansion_are_refused(wn: WordNet) -> None:
    with pytest.raises(ConfigError, match=r"labels 'T_Shirt' and 't-shirt' mean the same"):
        ZeroShotClassifier(["T_Shirt", "t-shirt"], ["{}"], alignment=WordSpace())
    with pytest.raises(ConfigError, match=r"'tshirt' and 'T_Shirt' mean the same \('t-shirt'\)"):
        expand_labels(["dress", "tshirt", "T_Shirt"])
    # used as given they are different prompts, and the raw check alone applies
    plain = ZeroShotClassifier(
        ["T_Shirt", "t-shirt"], ["{}"], alignment=WordSpace(), expand_labels=False
    )
    assert plain.labels == ["T_Shirt", "t-shirt"]


def test_check_distinct_compares_readable_names_ignoring_case() -> None:
    check_distinct(["long_sleeve", "dress"], ["long sleeve", "dress"])
    with pytest.raises(ConfigError, match=r"'long_sleeve' and 'Long-Sleeve' mean the same"):
        check_distinct(["long_sleeve", "Long-Sleeve"], ["long sleeve", "Long Sleeve"])

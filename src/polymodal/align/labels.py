"""Label names made readable and expanded into prompts, for any label list.

Data set labels are often folder names, not phrases a text encoder knows: ``longsleeve``,
``t_shirt``, ``Outer-Wear``. :func:`readable_label` normalises separators and splits a run-together
non-word into dictionary words (``/usr/share/dict/words``, Debian ``wamerican``), preferring
splits WordNet knows as a compound (``long_sleeve``). :func:`label_senses` picks each label's
WordNet noun sense, the one that shares the deepest ancestor with the other labels' senses (a
label list has a domain: "skirt" among garments is the garment, not the woman), and
:func:`label_phrases` turns a sense into weighted phrases: the name itself, its synonyms, and
the name with its gloss. Everything degrades to the plain name when the word list or WordNet is
absent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

from polymodal.align.wordnet import Synset, WordNet
from polymodal.errors import ConfigError

DEFAULT_WORDS = Path("/usr/share/dict/words")
MIN_PART = 3
MAX_DROPPED = 2  # split parts shorter than this are too often junk ("a", "el")
# chosen on clothing validation (synonyms 0-1, gloss 0-1): rare synonyms ("lid" for hat)
# pulled labels off; the gloss helped the transductive refinement
SYNONYM_WEIGHT = 0.0
GLOSS_WEIGHT = 0.5


@lru_cache(maxsize=2)
def _word_list(path: Path) -> frozenset[str]:
    if not path.is_file():
        return frozenset()
    with open(path, encoding="utf-8", errors="replace") as f:
        return frozenset(w.strip().lower() for w in f if w.strip() and "'" not in w)


def dictionary_words(path: str | Path | None = None) -> frozenset[str]:
    """Lower-case words of ``path`` (default ``$POLYMODAL_WORDS`` or /usr/share/dict/words);
    empty when absent."""
    return _word_list(Path(path or os.environ.get("POLYMODAL_WORDS") or DEFAULT_WORDS))


def readable_label(
    label: str, *, words: frozenset[str] | None = None, wordnet: WordNet | None = None
) -> str:
    """``label`` with ``_``/``-`` separators as spaces (unless the hyphenated form is a known word,
    like "t-shirt") and each run-together non-word split into known words."""
    words = dictionary_words() if words is None else words
    known = _known(words, wordnet)
    text = re.sub(r"\s+", " ", label.replace("_", " ")).strip()
    out = []
    for token in text.split(" "):
        if "-" in token and not known(token):
            out += [split_compound(t, known) for t in token.split("-") if t]
        else:
            out.append(split_compound(token, known))
    readable = " ".join(out)
    if wordnet is not None and readable == text and not wordnet.has_noun(text):
        # a word, but no noun ("outwear" is a verb): perhaps a noun with letters dropped
        return nearest_noun(text, wordnet) or text
    return readable


def nearest_noun(label: str, wordnet: WordNet) -> str | None:
    """The WordNet noun ``label`` is a clipped spelling of, or None: folder names drop letters and
    separators ("outwear" for "outerwear", "tshirt" for "t-shirt"). A noun qualifies when it
    starts with the same letter, holds the label's letters in order and has at most
    :data:`MAX_DROPPED` more; only a single closest candidate is taken (ties are ambiguous)."""
    key = "".join(label.lower().split())
    if len(key) < 2 * MIN_PART or not key.isalpha():
        return None
    found: dict[int, list[str]] = {}
    for noun in wordnet.lemmas():
        extra = len(noun) - len(key)
        if 0 < extra <= MAX_DROPPED and noun[0] == key[0] and _in_order(key, noun):
            found.setdefault(extra, []).append(noun)
    for extra in sorted(found):
        if len(found[extra]) == 1:
            return found[extra][0].replace("_", " ")
        return None
    return None


def _in_order(short: str, long: str) -> bool:
    it = iter(long)
    return all(c in it for c in short)


def split_compound(token: str, known: Callable[..., bool]) -> str:
    """``token`` as two or three words ``known`` accepts ("longsleeve" -> "long sleeve") when
    it is not one itself and such a split exists; else unchanged. Among splits, one that is a
    compound (``known(w, compound=True)``: WordNet lists it) wins, then the longest shortest part.
    """
    if known(token) or not token.isalpha() or len(token) < 2 * MIN_PART:
        return token
    best: tuple[tuple[int, int], str] | None = None
    for parts in _splits(token.lower(), 3):
        if all(known(p) for p in parts):
            compound = known("_".join(parts), compound=True)
            rank = (int(compound), min(map(len, parts)))
            if best is None or rank > best[0]:
                best = (rank, " ".join(parts))
    return best[1] if best else token


def _splits(word: str, most: int) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for i in range(MIN_PART, len(word) - MIN_PART + 1):
        head, tail = word[:i], word[i:]
        out.append((head, tail))
        if most > 2:
            out += [(head, *rest) for rest in _splits(tail, most - 1) if len(rest) > 1]
    return out


def _known(words: frozenset[str], wordnet: WordNet | None) -> Callable[..., bool]:
    def known(word: str, *, compound: bool = False) -> bool:
        w = word.lower()
        if compound:
            return wordnet is not None and wordnet.has_noun(w)
        return w in words or (wordnet is not None and wordnet.has_noun(w))

    return known


def label_senses(wordnet: WordNet, labels: Sequence[str]) -> list[Synset | None]:
    """Each label's noun sense, chosen with the other labels as context; None if WordNet has no
    noun for the label.

    Every label starts at its most frequent sense. Then, in turns, each label takes the sense
    sharing the deepest ancestors with the senses the other labels hold now (summed over them),
    ties to the more frequent sense, until nothing changes. Scoring a sense against all of the
    other labels' senses at once would let two rare senses pick each other: "pants" and "shorts"
    both have an underwear sense, and together they outweighed the trousers both mostly mean.
    """
    options = [wordnet.synsets(label) for label in labels]
    ancestors = {s.offset: wordnet.ancestors(s.offset) for opts in options for s in opts}
    depth: dict[int, int] = {}

    def depth_of(offset: int) -> int:
        if offset not in depth:
            depth[offset] = len(wordnet.ancestors(offset))
        return depth[offset]

    def shared(s: Synset, t: Synset) -> int:
        return max((depth_of(a) for a in ancestors[s.offset] & ancestors[t.offset]), default=0)

    chosen: list[Synset | None] = [opts[0] if opts else None for opts in options]
    for _ in range(10):  # settles in two or three turns; the cap guards against a cycle
        changed = False
        for i, opts in enumerate(options):
            if len(opts) < 2:
                continue
            context = [t for j, t in enumerate(chosen) if j != i and t is not None]
            scores = [sum(shared(s, t) for t in context) for s in opts]
            best = opts[scores.index(max(scores))]  # index(): the first, most frequent, on ties
            if best is not chosen[i]:
                chosen[i], changed = best, True
        if not changed:
            break
    return chosen


def label_phrases(label: str, sense: Synset | None) -> list[tuple[str, float]]:
    """Weighted phrases for one label: itself (weight 1), its sense's other lemmas, and
    "label, gloss" (the gloss's first clause)."""
    phrases = [(label, 1.0)]
    if sense is None:
        return phrases
    own = label.casefold()
    for lemma in sense.lemmas if SYNONYM_WEIGHT > 0 else ():
        if lemma.casefold() != own and lemma.casefold() not in (p.casefold() for p, _ in phrases):
            phrases.append((lemma, SYNONYM_WEIGHT))
    # a leading usage note ("(usually in the plural) a garment") is about the word, not the thing
    gloss = re.sub(r"^\([^)]*\)\s*", "", sense.gloss.split(";")[0].strip())
    if gloss:
        phrases.append((f"{label}, {gloss}", GLOSS_WEIGHT))
    return phrases


class LabelNote(UserWarning):
    """Label expansion ran without WordNet or the word list (the files are absent)."""


def expand_labels(labels: Sequence[str]) -> list[list[tuple[str, float]]]:
    """Weighted phrases for each label: its readable name (:func:`readable_label`), then, with
    WordNet, its sense's gloss (:func:`label_phrases`). Without WordNet (Debian ``wordnet-base``)
    it warns once and returns each label as it is, as zero-shot did before. Labels whose
    readable names coincide ("T_Shirt", "t-shirt") are refused: they would be one class twice."""
    import warnings

    from polymodal.align.wordnet import load_wordnet, wordnet_folder

    wordnet = load_wordnet()
    if wordnet is None:
        warnings.warn(
            f"no WordNet at {wordnet_folder()} (Debian package wordnet-base): "
            "labels are used as given",
            LabelNote,
            stacklevel=2,
        )
        return [[(label, 1.0)] for label in labels]
    readable = [readable_label(label, wordnet=wordnet) for label in labels]
    check_distinct(labels, readable)
    senses = label_senses(wordnet, readable)
    return [label_phrases(r, s) for r, s in zip(readable, senses, strict=True)]


def check_distinct(labels: Sequence[str], readable: Sequence[str]) -> None:
    """Raise ConfigError when two labels' readable names are the same (ignoring case)."""
    seen: dict[str, tuple[str, str]] = {}
    for label, name in zip(labels, readable, strict=True):
        key = name.casefold()
        if key in seen:
            first, first_name = seen[key]
            raise ConfigError(
                f"labels {first!r} and {label!r} mean the same ({first_name!r}): "
                "give distinct names"
            )
        seen[key] = (label, name)

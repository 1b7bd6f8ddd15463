"""A small offline reader of WordNet 3.0's noun files (Debian ``wordnet-base``).

WordNet's database is plain text: ``index.noun`` lists each lemma's synsets (by byte offset into
``data.noun``, most frequent sense first) and each ``data.noun`` line holds a synset's lemmas,
pointers (hypernyms ``@``, hyponyms ``~``, instances ``@i``/``~i``) and gloss. Offsets double as
ImageNet's ids (``n`` + eight digits), so the 1000 ImageNet classes sit in this graph too.

Only nouns are read: zero-shot labels name things. The folder is ``$POLYMODAL_WORDNET`` or
``/usr/share/wordnet``; :func:`load_wordnet` returns None when the files are absent, and callers
then behave as without WordNet.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DEFAULT_FOLDER = Path("/usr/share/wordnet")
# WordNet's own "morphy" detachment rules for nouns (suffix -> replacement)
_NOUN_SUFFIXES = (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"),
                  ("shes", "sh"), ("men", "man"), ("ies", "y"))  # fmt: skip


@dataclass(frozen=True)
class Synset:
    """One noun sense: its lemmas (spaces, not underscores), gloss and graph neighbours."""

    offset: int
    lemmas: tuple[str, ...]
    gloss: str
    hypernyms: tuple[int, ...]
    hyponyms: tuple[int, ...]
    holonyms: tuple[int, ...] = ()  # the wholes this is a part of ("sleeve" -> "garment")

    @property
    def wnid(self) -> str:
        """The ImageNet-style id, ``n`` + the eight-digit offset."""
        return f"n{self.offset:08d}"


class WordNet:
    """Noun lookups in a WordNet 3.0 folder (``index.noun``, ``data.noun``, ``noun.exc``)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._index = _read_index(self.folder / "index.noun")
        self._exceptions = _read_exceptions(self.folder / "noun.exc")
        self._data = self.folder / "data.noun"
        self._synsets: dict[int, Synset] = {}

    def base_forms(self, word: str) -> list[str]:
        """The word and its dictionary forms (``pants`` -> ``pant``), as WordNet's morphy."""
        key = _key(word)
        forms = [key, *self._exceptions.get(key, [])]
        for suffix, repl in _NOUN_SUFFIXES:
            if key.endswith(suffix) and len(key) > len(suffix):
                forms.append(key[: -len(suffix)] + repl)
        seen: list[str] = []
        for f in forms:
            if f in self._index and f not in seen:
                seen.append(f)
        return seen

    def lemmas(self) -> Iterable[str]:
        """Every noun lemma (lower case, ``_`` between words)."""
        return self._index.keys()

    def has_noun(self, word: str) -> bool:
        return bool(self.base_forms(word))

    def synsets(self, word: str) -> list[Synset]:
        """Noun senses of ``word`` (any base form), most frequent first, no repeats."""
        offsets: list[int] = []
        for form in self.base_forms(word):
            offsets += [o for o in self._index[form] if o not in offsets]
        return [self.synset(o) for o in offsets]

    def synset(self, offset: int) -> Synset:
        """The synset at ``offset`` in ``data.noun`` (read by seeking: the offset is a byte one)."""
        found = self._synsets.get(offset)
        if found is None:
            with open(self._data, "rb") as f:
                f.seek(offset)
                found = _parse_synset(f.readline().decode("utf-8"))
            if found.offset != offset:
                raise ValueError(f"{self._data}: no synset at byte {offset}")
            self._synsets[offset] = found
        return found

    def descendants(self, offset: int) -> set[int]:
        """Every synset below ``offset`` (hyponyms and instances, transitively), itself included."""
        return self._closure(offset, lambda s: s.hyponyms)

    def ancestors(self, offset: int) -> set[int]:
        """Every synset above ``offset`` (hypernyms, transitively), itself included."""
        return self._closure(offset, lambda s: s.hypernyms)

    def _closure(self, offset: int, step: Callable[[Synset], Iterable[int]]) -> set[int]:
        seen = {offset}
        todo = [offset]
        while todo:
            for nxt in step(self.synset(todo.pop())):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen


def wordnet_folder() -> Path:
    return Path(os.environ.get("POLYMODAL_WORDNET") or DEFAULT_FOLDER)


@lru_cache(maxsize=4)
def _load(folder: Path) -> WordNet | None:
    if not all((folder / n).is_file() for n in ("index.noun", "data.noun")):
        return None
    return WordNet(folder)


def load_wordnet(folder: str | Path | None = None) -> WordNet | None:
    """The WordNet at ``folder`` (default :func:`wordnet_folder`), or None when absent."""
    return _load(Path(folder) if folder is not None else wordnet_folder())


def _key(word: str) -> str:
    return "_".join(word.strip().lower().split())


def _read_index(path: Path) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith(" "):  # the licence header
                continue
            parts = line.split()
            n_senses = int(parts[2])
            out[parts[0]] = tuple(int(o) for o in parts[len(parts) - n_senses :])
    return out


def _read_exceptions(path: Path) -> dict[str, list[str]]:
    if not path.is_file():
        return {}
    out: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                out[parts[0]] = parts[1:]
    return out


def _parse_synset(line: str) -> Synset:
    head, _, gloss = line.partition(" | ")
    parts = head.split()
    n_words = int(parts[3], 16)
    lemmas = tuple(_lemma(parts[4 + 2 * i]) for i in range(n_words))
    at = 4 + 2 * n_words
    n_pointers = int(parts[at])
    hypernyms, hyponyms, holonyms = [], [], []
    for i in range(n_pointers):
        symbol, target, pos = parts[at + 1 + 4 * i : at + 4 + 4 * i]
        if pos != "n":
            continue
        if symbol in ("@", "@i"):
            hypernyms.append(int(target))
        elif symbol in ("~", "~i"):
            hyponyms.append(int(target))
        elif symbol == "#p":
            holonyms.append(int(target))
    return Synset(
        int(parts[0]), lemmas, gloss.strip(), tuple(hypernyms), tuple(hyponyms), tuple(holonyms)
    )


def _lemma(word: str) -> str:
    # adjective markers like "(a)" only occur on adjectives, but strip defensively
    return word.split("(")[0].replace("_", " ")


def imagenet_synsets(wn: WordNet, names: Sequence[str]) -> list[int | None]:
    """The WordNet offset of each of the 1000 ImageNet classes, from their names.

    ImageNet orders its classes by id, so the offsets increase along the list: among each name's
    senses the increasing path through the most names is chosen (a longest increasing
    subsequence), which settles ambiguous names ("crane" the bird, then "crane" the machine).
    A name no sense fits in order ("sneaker": ImageNet's is "running shoe") takes its most
    frequent sense, close enough for the hierarchy; names WordNet lacks stay None.
    """
    candidates = [_candidates(wn, n) for n in names]
    # dynamic programme over (position, offset): best chain length ending there
    best: list[dict[int, tuple[int, tuple[int, int] | None]]] = []
    for i, options in enumerate(candidates):
        here: dict[int, tuple[int, tuple[int, int] | None]] = {}
        for o in options:
            length, back = 1, None
            for j in range(max(0, i - 40), i):  # a missing name rarely spans far
                for po, (plen, _) in best[j].items():
                    if po < o and plen + 1 > length:
                        length, back = plen + 1, (j, po)
            here[o] = (length, back)
        best.append(here)
    end = max(
        ((i, o) for i, h in enumerate(best) for o in h),
        key=lambda io: best[io[0]][io[1]][0],
        default=None,
    )
    out: list[int | None] = [None] * len(names)
    while end is not None:
        i, o = end
        out[i] = o
        end = best[i][o][1]
    return [o if o is not None or not c else c[0] for o, c in zip(out, candidates, strict=True)]


def _candidates(wn: WordNet, name: str) -> list[int]:
    found: list[int] = []
    for variant in _name_variants(name):
        found += [s.offset for s in wn.synsets(variant) if s.offset not in found]
    return found


def _name_variants(name: str) -> Iterable[str]:
    # the readable names ("crane bird", "tights", "red wolf or maned wolf") are not all lemmas:
    # try the parts, then the name with words dropped from either end (a head noun, a qualifier)
    bare = re.sub(r"\s*\(.*?\)", "", name).replace("'s", "").strip()
    yield name
    yield bare
    for sep in (",", "/", " or "):
        if sep in bare:
            yield from (p.strip() for p in bare.split(sep) if p.strip())
    words = bare.replace("-", " ").split()
    yield " ".join(words)
    for k in range(1, len(words)):
        yield " ".join(words[:-k])
        yield " ".join(words[k:])

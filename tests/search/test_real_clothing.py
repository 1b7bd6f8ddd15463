"""The shipped alignments on a handful of real clothing photos (values recorded once)."""

from __future__ import annotations

import shutil

import pytest

from polymodal.search import SearchEngine
from tests.conftest import require_shared

CLASSES = ("hat", "shoes", "dress")
PER_CLASS = 4


@pytest.fixture(scope="module")
def clothing_engine(tmp_path_factory: pytest.TempPathFactory) -> SearchEngine:
    source = require_shared("clothing") / "test"
    root = tmp_path_factory.mktemp("clothing")
    for cls in CLASSES:
        (root / cls).mkdir()
        for path in sorted((source / cls).iterdir())[:PER_CLASS]:
            shutil.copy(path, root / cls / path.name)
    engine = SearchEngine.open(root.parent / f"{root.name}-db", create=True, root=root)
    engine.index(progress=False)
    return engine


# Recorded once (2026-11-28) with the shipped image-text alignment: (class, cosine) of the top 4.
RECORDED = {
    "a hat": [("hat", 0.3886), ("dress", 0.361), ("hat", 0.3254), ("hat", 0.325)],
    "shoes": [("shoes", 0.5675), ("shoes", 0.5384), ("shoes", 0.5155), ("hat", 0.5099)],
    "a dress": [("dress", 0.5573), ("dress", 0.4458), ("dress", 0.3933), ("hat", 0.3929)],
    "photo": [("hat", 1.0), ("hat", 0.6458), ("shoes", 0.5988), ("shoes", 0.5393)],
    "photo + shoes": [("hat", 0.7372), ("shoes", 0.6474), ("shoes", 0.5865), ("shoes", 0.5734)],
}


def _top(hits) -> list[tuple[str, float]]:
    return [(h.path.split("/")[0], h.score) for h in hits]


def _check(got: list[tuple[str, float]], want: list[tuple[str, float]]) -> None:
    assert [c for c, _ in got] == [c for c, _ in want]
    assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=0.01)


@pytest.mark.real_weights
@pytest.mark.shared_data
@pytest.mark.parametrize("query", ["a hat", "shoes", "a dress"])
def test_text_queries_match_recorded_results(clothing_engine: SearchEngine, query: str) -> None:
    _check(_top(clothing_engine.search(text=query, k=4)), RECORDED[query])


@pytest.mark.real_weights
@pytest.mark.shared_data
def test_photo_and_composed_queries_match_recorded_results(clothing_engine: SearchEngine) -> None:
    query = sorted((clothing_engine.root / "hat").iterdir())[0]
    hits = clothing_engine.search(image=query, k=4)
    assert hits[0].path == f"hat/{query.name}"
    _check(_top(hits), RECORDED["photo"])
    # The text moves the results from hats to shoes; the query photo itself stays first.
    composed = clothing_engine.search(image=query, text="shoes", weight=0.7, k=4)
    _check(_top(composed), RECORDED["photo + shoes"])

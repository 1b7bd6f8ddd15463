"""Search stores over tiny random alignments (from the search tests) for the server tests."""

from __future__ import annotations

from tests.search.conftest import (  # noqa: F401  (fixtures re-exported for this folder)
    collection,
    engine,
    shared_engine,
    tiny_alignments,
)

"""Shared test set-up: offline mode, a private cache folder, the path to the shared real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see polymodal/__init__.py
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    """``$POLYMODAL_SHARED`` or ``../shared/data`` beside the repository."""
    env = os.environ.get("POLYMODAL_SHARED")
    return Path(env) if env else REPO.parent / "shared" / "data"


def require_shared(name: str) -> Path:
    """The shared data set ``name``, or skip the test with a clear message."""
    path = shared_data() / name
    if not path.exists():
        pytest.skip(f"real data {path} is absent (set POLYMODAL_SHARED to the shared/data folder)")
    return path


@pytest.fixture(autouse=True, scope="session")
def _private_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Tests must never write into the user's real cache.
    os.environ["POLYMODAL_HOME"] = str(tmp_path_factory.mktemp("polymodal_home"))

"""Where polymodal keeps derived files (embedding cache, exported ONNX graphs)."""

from __future__ import annotations

import os
from pathlib import Path


def polymodal_home() -> Path:
    """``$POLYMODAL_HOME``, else ``$XDG_CACHE_HOME/polymodal``, else ``~/.cache/polymodal``."""
    env = os.environ.get("POLYMODAL_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "polymodal"

"""Reading the ``config.json`` of a saved artefact (alignment, caption bank, caption decoder).

Each names its ``format`` and ``format_version``; one reader checks both, so every artefact
fails the same clear way when it is absent, damaged, of another kind, or newer than this code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from polymodal.errors import ConfigError


def read_format_config(
    root: Path, filename: str, *, fmt: str, version: int, what: str
) -> dict[str, Any]:
    """The JSON object in ``root/filename``, checked to be a ``fmt`` no newer than ``version``.

    ``what`` names the artefact in messages ("alignment", "caption bank").
    """
    path = root / filename
    if not path.is_file():
        raise ConfigError(f"{root} is not a saved {what}: it has no {filename}")
    try:
        config = json.loads(path.read_text("utf-8"))
    except (ValueError, OSError) as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(config, dict) or config.get("format") != fmt:
        raise ConfigError(f"{path} does not describe a polymodal {what}")
    found = config.get("format_version", 0)
    if not isinstance(found, int) or found > version:
        raise ConfigError(
            f"{root} was saved in {what} format {found!r}, newer than this polymodal reads "
            f"({version}); upgrade polymodal"
        )
    return config

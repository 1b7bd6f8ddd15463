"""``polymodal serve --db store/``: the search API and web page over a search store."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from polymodal.errors import ConfigError

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def serve(
    db: Path = typer.Option(..., "--db", help="The search store folder (from `polymodal index`)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
    token: str | None = typer.Option(
        None,
        envvar="POLYMODAL_TOKEN",
        help="Bearer token that POST /index requires (indexing is off without one).",
    ),
    max_upload_mb: float = typer.Option(20.0, min=0.1, help="Largest upload accepted, in MiB."),
) -> None:
    """Serve the search page at http://HOST:PORT/ and the API (schema at /docs)."""
    import uvicorn

    from polymodal.search.engine import SearchEngine
    from polymodal.serve import create_app

    engine = SearchEngine.open(db)
    if token is not None and len(token) < 8:
        raise ConfigError("--token must be at least 8 characters")
    app = create_app(engine, token=token, max_upload_bytes=int(max_upload_mb * 2**20))
    if host not in _LOOPBACK:
        print(
            f"polymodal: serving {engine.root} to the network on {host}:{port}; "
            "every indexed file can be fetched by whoever reaches this port",
            file=sys.stderr,
        )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    uvicorn.run(app, host=host, port=port, log_level="info")

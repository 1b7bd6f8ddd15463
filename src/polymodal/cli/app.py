"""The ``polymodal`` command. Each verb lives in its own module; this file only assembles them."""

from __future__ import annotations

import os
import sys

import typer

from polymodal.errors import PolymodalError

app = typer.Typer(
    name="polymodal",
    help="Fuse, align, search and describe every modality you have — offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from polymodal.cli import align, classify, embed, evaluate, fit, inspect, models, predict
    from polymodal.cli import eval as eval_cli
    from polymodal.cli import index as index_cli
    from polymodal.cli import search as search_cli

    app.command("models")(models.models)
    app.command("inspect")(inspect.inspect)
    app.command("embed")(embed.embed)
    app.command("fit")(fit.fit)
    app.command("predict")(predict.predict)
    app.command("evaluate")(evaluate.evaluate)
    app.command("align")(align.align)
    app.command("classify")(classify.classify)
    from polymodal.cli import describe

    app.command("describe")(describe.describe)
    app.add_typer(eval_cli.eval_app, name="eval")
    app.command("index")(index_cli.index)
    app.command("search")(search_cli.search)
    from polymodal.cli import serve as serve_cli

    app.command("serve")(serve_cli.serve)


def main() -> None:
    """Entry point: run the app and turn polymodal's errors into one clear line, not a traceback."""
    # Offline by default: a hub lookup must never hang on a closed network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    _register()
    try:
        # standalone_mode=False hands back a typer.Exit code instead of exiting: pass it on
        code = app(standalone_mode=False)
    except PolymodalError as err:
        print(f"polymodal: error: {err}", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        sys.exit(130)
    except Exception as err:  # usage errors carry their own exit codes
        # Recent typer vendors its own click: its exceptions are not click's classes, so they
        # are known by shape (a message that shows itself and an exit code), not by type.
        code = getattr(err, "exit_code", None)
        if not isinstance(code, int):
            raise
        if callable(getattr(err, "show", None)):
            err.show()
        sys.exit(code)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()

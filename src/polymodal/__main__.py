"""``python -m polymodal`` runs the CLI."""

from polymodal.cli.app import main

main()

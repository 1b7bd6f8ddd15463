"""The search server: REST API and web page over a search store (``polymodal serve``)."""

from polymodal.serve.app import create_app

__all__ = ["create_app"]

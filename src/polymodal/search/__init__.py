"""Search a folder of photos, sounds, videos and texts by text, photo, sound, or photo + text.

``SearchEngine.open(db, create=True, root=folder).index()`` builds a persistent LanceDB store;
``engine.search(text=..., image=..., audio=...)`` queries it. See :mod:`polymodal.search.engine`.
"""

from polymodal.search.engine import Hit, Item, SearchEngine
from polymodal.search.indexer import IndexReport, Skipped

__all__ = ["Hit", "IndexReport", "Item", "SearchEngine", "Skipped"]

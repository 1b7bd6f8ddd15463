"""polymodal: one toolkit for every modality a user has — fuse, align, search, describe.

The library imports without the CLI; heavy runtimes (torch, onnxruntime, ctranslate2) load lazily.
"""

from polymodal.errors import InputError, PolymodalError, SkippedRow
from polymodal.modality import Modality

__version__ = "0.1.0"

__all__ = ["InputError", "Modality", "PolymodalError", "SkippedRow", "__version__"]

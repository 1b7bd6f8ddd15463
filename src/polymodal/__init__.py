"""polymodal: one toolkit for every modality a user has — fuse, align, search, describe.

The library imports without the CLI; heavy runtimes (torch, onnxruntime, ctranslate2) load lazily.
"""

import os

# torch's OpenMP threads spin while waiting for work. When decode threads, ONNX Runtime or another
# process share the cores, that spinning made training steps 20x slower (415 ms vs 18 ms, 2 cores).
# Set before torch loads; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from polymodal.errors import InputError, PolymodalError, SkippedRow
from polymodal.modality import Modality

__version__ = "0.1.0"

__all__ = ["InputError", "Modality", "PolymodalError", "SkippedRow", "__version__"]

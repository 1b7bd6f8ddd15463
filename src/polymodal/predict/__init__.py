"""Multi-modal prediction: :class:`Predictor` (fit / predict / evaluate / explain / save / load).

``Predictor`` is imported on first use, so importing a light submodule (metrics, attribution)
does not pay for torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from polymodal.predict.predictor import Predictor

__all__ = ["Predictor"]


def __getattr__(name: str) -> Any:
    if name == "Predictor":
        from polymodal.predict.predictor import Predictor

        return Predictor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""A saved predictor is a folder: ``config.json`` (parameters and learned state, plain JSON),
``model.safetensors`` (the network's weights), ``tabular.json`` (the fitted preprocessor) and,
when wide embeddings were reduced, ``reduce.safetensors`` (their principal components).

Written into a temporary sibling folder and renamed into place, so a crash leaves the old model
or the new one, never a mix. ``format_version`` guards against reading a newer format; fields
added later have defaults, so older folders keep loading.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

import polymodal
from polymodal.atomic import replace_dir
from polymodal.encoders.tabular import TabularPreprocessor
from polymodal.errors import ConfigError
from polymodal.predict.reduce import SlotReducer

FORMAT_VERSION = 2  # the newest this code reads; 2 added reduce.safetensors
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
TABULAR = "tabular.json"
REDUCER = "reduce.safetensors"


def write_model(
    directory: str | Path,
    config: dict[str, Any],
    network: nn.Module,
    tabular: TabularPreprocessor | None,
    *,
    reducer: SlotReducer | None = None,
) -> Path:
    """Save into ``directory``, replacing a model saved there before (never anything else)."""
    from safetensors.torch import save_model

    target = check_model_output(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        # Version 1 when nothing needs 2, so older polymodal keeps reading such models.
        config = {"format_version": 1 if reducer is None else 2, **config}
        (tmp / CONFIG).write_text(json.dumps(json_safe(config), indent=2))
        save_model(network, str(tmp / WEIGHTS))
        data = None if tabular is None else tabular.to_dict()
        (tmp / TABULAR).write_text(json.dumps(data, indent=2))
        if reducer is not None:
            from safetensors.numpy import save_file

            save_file(reducer.arrays(), str(tmp / REDUCER), metadata={"rank": str(reducer.rank)})
        replace_dir(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def check_model_output(directory: str | Path) -> Path:
    """``directory`` as a place to save a model: absent, an empty folder, or a saved model.

    Anything else is a ConfigError, since saving replaces the folder whole: a folder that merely
    holds a ``config.json`` (a Hugging Face checkpoint) must not lose its other files.
    """
    target = Path(directory).expanduser()
    if not target.exists():
        return target
    if not target.is_dir():
        raise ConfigError(f"{target} is a file, not a folder; a model is saved as a folder")
    if any(target.iterdir()) and not is_saved_model(target):
        raise ConfigError(
            f"{target} exists and is not a saved model (no polymodal {CONFIG}); refusing to "
            "replace it, as saving replaces the whole folder: choose a new or empty folder"
        )
    return target


def is_saved_model(directory: Path) -> bool:
    """Whether ``directory/config.json`` is one :func:`write_model` wrote."""
    try:
        config = json.loads((directory / CONFIG).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return (
        isinstance(config, dict)
        and isinstance(config.get("format_version"), int)
        and "polymodal_version" in config
    )


def read_model(
    directory: str | Path,
) -> tuple[dict[str, Any], TabularPreprocessor | None, Path, SlotReducer | None]:
    """The config, the tabular preprocessor, the weights file and the reducer of a saved model."""
    path = Path(directory).expanduser()
    config_file = path / CONFIG
    if not config_file.is_file():
        raise ConfigError(f"{path} is not a saved model: it has no {CONFIG}")
    try:
        config = json.loads(config_file.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{config_file} is not valid JSON: {err}") from None
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ConfigError(
            f"{path} was saved in model format {version!r}, newer than this polymodal "
            f"{polymodal.__version__} reads (format {FORMAT_VERSION}); upgrade polymodal"
        )
    try:
        tabular = json.loads((path / TABULAR).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _damaged(path, TABULAR, err) from None
    pre = None if tabular is None else TabularPreprocessor.from_dict(tabular)
    if not (path / WEIGHTS).is_file():
        raise _damaged(path, WEIGHTS, FileNotFoundError())
    return config, pre, path / WEIGHTS, _read_reducer(path / REDUCER)


def _damaged(folder: Path, name: str, err: Exception) -> ConfigError:
    problem = "missing" if isinstance(err, FileNotFoundError) else f"unreadable ({err})"
    return ConfigError(f"{folder / name} is {problem}: the model folder {folder} is damaged")


def _read_reducer(file: Path) -> SlotReducer | None:
    """The saved reducer; None for models saved without one (older ones too)."""
    if not file.is_file():
        return None
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(file), framework="numpy") as f:
            rank = int((f.metadata() or {}).get("rank", "0"))
            arrays = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    except (OSError, ValueError, SafetensorError) as err:
        raise _damaged(file.parent, file.name, err) from None
    return SlotReducer.from_arrays(rank, arrays)


def load_weights(network: nn.Module, weights: Path) -> nn.Module:
    """Load ``weights`` into ``network``; a ConfigError when they do not fit it exactly."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    try:
        missing, unexpected = load_model(network, str(weights), strict=False)
    except (OSError, SafetensorError) as err:
        raise _damaged(weights.parent, weights.name, err) from None
    if missing or unexpected:
        raise ConfigError(
            f"{weights} does not match the model described in {CONFIG} "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    return network.eval()


def json_safe(value: Any) -> Any:
    """NaN and infinities become None (strict JSON); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value

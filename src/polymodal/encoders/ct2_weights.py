"""Read the variables of a CTranslate2 ``model.bin`` into NumPy arrays, without CTranslate2.

The format (binary version 6, written by ``ctranslate2.specs.ModelSpec._serialize``) is a flat
little-endian list: version, spec name, revision, then for every variable its name, shape, dtype
id, byte count and raw bytes, then a list of aliases (name -> variable name). Strings are a
uint16 length (including a trailing NUL) followed by UTF-8 bytes.

Quantised models store ``<name>`` as int8 plus ``<name>_scale`` (float32, one per output row) with
``int8 = round(float * scale)``; :func:`dequantize` undoes that.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from polymodal.errors import ConfigError

# Order of CTranslate2's DataType enum as written to the file.
_DTYPES: tuple[str, ...] = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_SUPPORTED_VERSIONS = (5, 6)


def _read(f: BinaryIO, fmt: str) -> int:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise EOFError("truncated CTranslate2 model file")
    return struct.unpack("<" + fmt, data)[0]


def _read_string(f: BinaryIO) -> str:
    n = _read(f, "H")
    raw = f.read(n)
    if len(raw) != n:
        raise EOFError("truncated CTranslate2 model file")
    return raw[:-1].decode("utf-8")


def _to_numpy(raw: bytes, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype == "bfloat16":
        # bfloat16 is the top half of a float32.
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).copy()


def read_ct2_variables(path: str | Path, *, prefix: str = "") -> dict[str, np.ndarray]:
    """Every variable of ``model.bin`` whose name starts with ``prefix`` (aliases resolved).

    Variables outside ``prefix`` are skipped without being read, so loading only the encoder of a
    Whisper model reads a fraction of the file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _read_variables(f, prefix)
    except (EOFError, UnicodeDecodeError, ValueError) as err:
        raise ConfigError(f"{path}: not a readable CTranslate2 model file ({err})") from err


def _read_variables(f: BinaryIO, prefix: str) -> dict[str, np.ndarray]:
    version = _read(f, "I")
    if version not in _SUPPORTED_VERSIONS:
        raise ValueError(f"binary version {version}, expected one of {_SUPPORTED_VERSIONS}")
    _read_string(f)  # spec name, e.g. "WhisperSpec"
    _read(f, "I")  # spec revision
    out: dict[str, np.ndarray] = {}
    for _ in range(_read(f, "I")):
        name = _read_string(f)
        shape = tuple(_read(f, "I") for _ in range(_read(f, "B")))
        dtype_id = _read(f, "B")
        n_bytes = _read(f, "I")
        if not name.startswith(prefix):
            f.seek(n_bytes, 1)
            continue
        if dtype_id >= len(_DTYPES):
            raise ValueError(f"variable {name!r} has unknown dtype id {dtype_id}")
        raw = f.read(n_bytes)
        if len(raw) != n_bytes:
            raise EOFError("truncated CTranslate2 model file")
        out[name] = _to_numpy(raw, _DTYPES[dtype_id], shape)
    for _ in range(_read(f, "I")):
        alias, target = _read_string(f), _read_string(f)
        if alias.startswith(prefix) and target in out:
            out[alias] = out[target]
    return out


def dequantize(variables: dict[str, np.ndarray], name: str) -> np.ndarray:
    """Variable ``name`` as float32, dividing out its ``_scale`` when it was stored quantised."""
    value = variables[name]
    scale = variables.get(f"{name}_scale")
    if value.dtype in (np.int8, np.int16) and scale is not None:
        scale = scale.astype(np.float32).reshape(-1, *([1] * (value.ndim - 1)))
        return value.astype(np.float32) / scale
    return value.astype(np.float32)

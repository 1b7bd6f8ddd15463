"""Export a torch module to ONNX once, cache the graph, and run it with ONNX Runtime.

The graph is written to ``polymodal_home()/onnx/<cache_id>.onnx`` through :func:`atomic_output`,
so a second process (or a second build) finds a complete file or none. ``cache_id`` must name the
weights *and* the graph's inputs/outputs: a different module under the same id would be reused.
"""

from __future__ import annotations

import io
import logging
import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polymodal.atomic import atomic_output
from polymodal.home import polymodal_home

if TYPE_CHECKING:
    import onnxruntime
    import torch

log = logging.getLogger(__name__)

OPSET = 17
DynamicAxes = Mapping[str, Mapping[int, str]]


def onnx_cache_path(cache_id: str) -> Path:
    """Where the graph for ``cache_id`` is kept (characters unsafe in file names become ``_``)."""
    safe = re.sub(r"[^A-Za-z0-9._@+-]", "_", cache_id)
    return polymodal_home() / "onnx" / f"{safe}.onnx"


def export_onnx(
    module: torch.nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    target: str | Path | io.BytesIO,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: DynamicAxes | None = None,
) -> None:
    """Export ``module`` (in eval mode, no gradients) to an ONNX file or buffer.

    Uses the TorchScript exporter: the torch.export-based one needs ``onnxscript``, which we do
    not depend on. ``module`` is left in the training mode it had.
    """
    import torch

    was_training = [m.training for m in module.modules()]
    module.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # The exporter is chatty (deprecation of the TorchScript path, constant folding notes).
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                example_inputs,
                target,
                dynamo=False,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_axes={k: dict(v) for k, v in (dynamic_axes or {}).items()},
                opset_version=OPSET,
                do_constant_folding=True,
            )
    finally:
        # The exporter restores only the top module's mode, recursively; put every submodule back.
        for m, mode in zip(module.modules(), was_training, strict=True):
            m.training = mode


def cached_onnx(
    cache_id: str,
    make_module: Callable[[], torch.nn.Module],
    example_inputs: tuple[torch.Tensor, ...],
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: DynamicAxes | None = None,
    refresh: bool = False,
) -> Path:
    """The cached graph for ``cache_id``, exporting ``make_module()`` first if it is absent."""
    path = onnx_cache_path(cache_id)
    if path.is_file() and path.stat().st_size > 0 and not refresh:
        return path
    log.info("exporting %s to ONNX at %s (once)", cache_id, path)
    module = make_module()
    with atomic_output(path) as tmp:
        export_onnx(
            module,
            example_inputs,
            tmp,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
        )
    return path


def default_intra_op_threads() -> int:
    """One ONNX Runtime thread per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def inference_session(
    model: str | Path | bytes,
    *,
    intra_op_threads: int | None = None,
    spinning: bool = False,
) -> onnxruntime.InferenceSession:
    """A CPU InferenceSession with full graph optimisation and bounded threads.

    ``spinning=False`` stops idle ORT threads from busy-waiting between runs, which would take CPU
    from the threads that decode the next batch.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = intra_op_threads or default_intra_op_threads()
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    opts.log_severity_level = 3  # errors only
    source: Any = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])


def cached_session(
    cache_id: str,
    make_module: Callable[[], torch.nn.Module],
    example_inputs: tuple[torch.Tensor, ...],
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: DynamicAxes | None = None,
    intra_op_threads: int | None = None,
    spinning: bool = False,
) -> onnxruntime.InferenceSession:
    """Export once (see :func:`cached_onnx`) and open an InferenceSession on the graph.

    A cached file ONNX Runtime cannot load (written by an incompatible version) is exported again.
    """
    kwargs: dict[str, Any] = dict(
        input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes
    )
    path = cached_onnx(cache_id, make_module, example_inputs, **kwargs)
    try:
        return inference_session(path, intra_op_threads=intra_op_threads, spinning=spinning)
    except Exception as exc:  # ORT raises its own exception types for an unreadable graph
        log.warning("cached ONNX graph %s unusable (%s); exporting it again", path, exc)
        path = cached_onnx(cache_id, make_module, example_inputs, refresh=True, **kwargs)
        return inference_session(path, intra_op_threads=intra_op_threads, spinning=spinning)


def in_memory_session(
    module: torch.nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: DynamicAxes | None = None,
    intra_op_threads: int | None = None,
) -> onnxruntime.InferenceSession:
    """Export to memory and open a session: for weights with no stable identity to cache under."""
    buf = io.BytesIO()
    export_onnx(
        module,
        example_inputs,
        buf,
        input_names=input_names,
        output_names=output_names,
        dynamic_axes=dynamic_axes,
    )
    return inference_session(buf.getvalue(), intra_op_threads=intra_op_threads)

"""Create ONNX Runtime sessions with GUI-friendly threading and an honest provider report.

Threading: ``intra_op_num_threads`` = physical cores (hyper-threads slow
GEMMs down), and spinning is off (``session.intra_op.allow_spinning = 0``,
same for inter-op) so worker threads sleep after a call instead of burning
CPU that the GUI thread needs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from medviewer.inference.errors import NotOnnxError, ProviderUnavailableError
from medviewer.inference.providers import CPU, ProviderReport, finish_report, plan_providers


def physical_core_count() -> int:
    """Return the number of physical CPU cores this process may use (at least 1)."""
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    logical = logical or 1
    cores = None
    if sys.platform.startswith("linux"):
        cores = _linux_physical_cores()
    if cores is None:
        # Without topology information, assume two hyper-threads per core
        # when there are many logical CPUs.
        cores = logical // 2 if logical >= 8 else logical
    return max(1, min(cores, logical))


def _linux_physical_cores() -> int | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    pairs = set()
    physical = core = None
    for line in text.splitlines() + [""]:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            physical = value.strip()
        elif key == "core id":
            core = value.strip()
        elif not line.strip():
            if core is not None:
                pairs.add((physical, core))
            physical = core = None
    return len(pairs) or None


def session_options(threads: int | None = None) -> Any:
    """Return ``SessionOptions`` suited to a GUI process.

    Parameters
    ----------
    threads : int, optional
        Intra-op threads; default :func:`physical_core_count`.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or physical_core_count())
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    # Provider fallbacks are reported by ProviderReport; keep ORT's own log to errors.
    options.log_severity_level = 3
    return options


def create_session(
    model_path: str | Path,
    preference: str | list[str] | None = "auto",
    *,
    threads: int | None = None,
    strict: bool = False,
) -> tuple[Any, ProviderReport]:
    """Create an inference session on the best provider that really works.

    Parameters
    ----------
    model_path : str or Path
        The ONNX file.
    preference : str or list of str
        ``"auto"`` (TensorRT, CUDA, CoreML, DirectML, then CPU, each where it
        works), a provider (``"cuda"``, ``"cpu"``, ...) or a list of them.
    threads : int, optional
        Intra-op threads (default: physical cores).
    strict : bool
        Raise instead of falling back when the first preferred provider
        cannot run the model.

    Returns
    -------
    session : onnxruntime.InferenceSession
    report : ProviderReport
        ``report.message`` is the line to show, e.g.
        ``"CUDA not available: no NVIDIA driver (...); running on CPU"``.

    Raises
    ------
    NotOnnxError
        The file cannot be parsed.
    ProviderUnavailableError
        The preference names no known provider, or ``strict`` is set and the
        preferred provider is unusable.
    """
    import onnxruntime as ort

    try:
        providers, report = plan_providers(preference)
    except ValueError as exc:
        raise ProviderUnavailableError(
            str(exc), hint="use auto, cpu, cuda, tensorrt, coreml or directml"
        ) from exc
    attempted = [p if isinstance(p, str) else p[0] for p in providers]
    try:
        session = ort.InferenceSession(
            str(model_path), session_options(threads), providers=providers
        )
    except Exception as exc:  # onnxruntime's pybind exceptions have no common public base
        raise NotOnnxError(
            f"ONNX Runtime cannot load the model: {str(exc).strip().splitlines()[0][:200]}",
            path=model_path,
            hint="re-export the bundle with `python -m models.export`",
        ) from exc
    finish_report(report, attempted, session.get_providers())
    first = report.requested[0]
    if strict and first != CPU and report.provider != first:
        raise ProviderUnavailableError(
            report.message, path=model_path, hint="install the provider's runtime, or choose 'auto'"
        )
    return session, report

"""Choose ONNX Runtime execution providers, and say why a GPU one is not used.

An onnxruntime build lists the providers it was compiled with
(``get_available_providers``), but a listed provider may still be unusable:
``onnxruntime-gpu`` lists CUDA on a machine without an NVIDIA driver, and
ONNX Runtime then falls back to the CPU with only a log line.  MedViewer never
falls back silently: :func:`plan_providers` checks what each provider needs
before asking for it, and :class:`ProviderReport` records what really runs
(``session.get_providers()``) and why the others did not, in words for the UI.

TensorRT builds an engine the first time a model runs (minutes for a ViT-B);
engines are cached under the user cache folder so this happens once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from dataclasses import dataclass, field
from typing import Any

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
COREML = "CoreMLExecutionProvider"
DIRECTML = "DmlExecutionProvider"

SHORT_NAMES = {
    "cpu": CPU,
    "cuda": CUDA,
    "tensorrt": TENSORRT,
    "trt": TENSORRT,
    "coreml": COREML,
    "directml": DIRECTML,
    "dml": DIRECTML,
}
DISPLAY = {CPU: "CPU", CUDA: "CUDA", TENSORRT: "TensorRT", COREML: "CoreML", DIRECTML: "DirectML"}
# Preference order of "auto": the fastest provider that really works comes first.
AUTO_ORDER = (TENSORRT, CUDA, COREML, DIRECTML, CPU)
GPU_PROVIDERS = (TENSORRT, CUDA, COREML, DIRECTML)


@dataclass
class ProviderReport:
    """Which execution provider runs a model, and why others do not.

    Attributes
    ----------
    requested : list of str
        ONNX Runtime provider names asked for, in order.
    active : list of str
        ``session.get_providers()``: the first one runs the model.
    unavailable : dict
        Provider name -> reason it was not used (skipped or refused).
    notes : list of str
        Other facts worth showing (libraries preloaded, engine cache, ...).
    """

    requested: list[str] = field(default_factory=list)
    active: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def provider(self) -> str:
        """Return the ONNX Runtime name of the provider that runs the model."""
        return self.active[0] if self.active else CPU

    @property
    def provider_label(self) -> str:
        """Return the provider in words: ``CUDA``, ``CPU``, ..."""
        return DISPLAY.get(self.provider, self.provider)

    @property
    def message(self) -> str:
        """Return one line for the UI, e.g. ``CUDA not available: <why>; running on CPU``."""
        missed = [
            f"{DISPLAY.get(name, name)} not available: {reason}"
            for name, reason in self.unavailable.items()
            if name != self.provider
        ]
        return "; ".join([*missed, f"running on {self.provider_label}"])

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly summary."""
        return {
            "provider": self.provider_label,
            "onnxruntime_provider": self.provider,
            "active": list(self.active),
            "requested": list(self.requested),
            "unavailable": dict(self.unavailable),
            "notes": list(self.notes),
            "message": self.message,
        }


def available_providers() -> list[str]:
    """Return the providers this onnxruntime build was compiled with (not necessarily usable)."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def resolve_preference(preference: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ... (or a list of them) into provider names.

    The CPU provider is always appended last, so a session can always run.

    Raises
    ------
    ValueError
        A name is not a known provider.
    """
    if preference in (None, "", "auto"):
        names = list(AUTO_ORDER)
    else:
        items = [preference] if isinstance(preference, str) else list(preference)
        names = []
        for item in items:
            if item == "auto":
                names.extend(AUTO_ORDER)
                continue
            name = SHORT_NAMES.get(item.lower(), item)
            if name not in DISPLAY:
                raise ValueError(
                    f"unknown execution provider {item!r}; "
                    f"use auto or one of {sorted(set(SHORT_NAMES))}"
                )
            names.append(name)
    names = list(dict.fromkeys(names))
    if CPU not in names:
        names.append(CPU)
    return names


def plan_providers(
    preference: str | list[str] | None = "auto",
) -> tuple[list[str | tuple[str, dict[str, Any]]], ProviderReport]:
    """Return the providers to pass to ``InferenceSession`` and a report in progress.

    Providers the onnxruntime build lacks, or whose system requirements are
    missing (no NVIDIA driver, no TensorRT library), are left out with the
    reason recorded; CUDA libraries installed by pip are preloaded first.
    With ``"auto"``, providers that this onnxruntime build does not include
    are left out without comment (a CPU-only build is not an error).
    """
    wanted = resolve_preference(preference)
    explicit = preference not in (None, "", "auto")
    compiled = set(available_providers())
    report = ProviderReport(requested=wanted)
    chosen: list[str | tuple[str, dict[str, Any]]] = []
    for name in wanted:
        if name not in compiled:
            if explicit or name in (CUDA,):
                report.unavailable.setdefault(name, "not included in this onnxruntime build")
            continue
        reason = _system_problem(name, report)
        if reason:
            if explicit or name != TENSORRT:
                report.unavailable[name] = reason
            continue
        chosen.append((name, _provider_options(name)) if name == TENSORRT else name)
    return chosen, report


def finish_report(
    report: ProviderReport, attempted: list[str], active: list[str]
) -> ProviderReport:
    """Record the session's real providers and explain any attempted one it dropped.

    ONNX Runtime drops a provider it cannot start (and only logs it); this is
    where that fallback becomes visible.
    """
    report.active = list(active)
    for name in attempted:
        if name not in active and name != CPU:
            report.unavailable[name] = (
                "ONNX Runtime could not start it (its CUDA/cuDNN or vendor libraries are "
                "missing or do not match this onnxruntime build; see the log)"
            )
    return report


def _system_problem(name: str, report: ProviderReport) -> str | None:
    """Return why a compiled-in provider cannot work here, or None if it may."""
    if name in (CUDA, TENSORRT):
        problem = cuda_driver_problem()
        if problem:
            return problem
        note = preload_cuda_libraries()
        if note and note not in report.notes:
            report.notes.append(note)
        if name == TENSORRT and not _loadable("nvinfer", ("libnvinfer.so.10", "libnvinfer.so.8")):
            return "the TensorRT library (libnvinfer) is not installed"
    if name == COREML and sys.platform != "darwin":
        return "CoreML exists only on macOS"
    if name == DIRECTML and sys.platform != "win32":
        return "DirectML exists only on Windows"
    return None


def cuda_driver_problem() -> str | None:
    """Return why no CUDA device can be used (no driver, no device), or None."""
    if sys.platform == "darwin":
        return "CUDA is not supported on macOS"
    lib_name = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
    try:
        lib = ctypes.CDLL(lib_name)
    except OSError:
        return f"no NVIDIA driver ({lib_name} cannot be loaded)"
    try:
        status = lib.cuInit(0)
        if status != 0:
            return f"the NVIDIA driver failed to initialise (cuInit error {status})"
        count = ctypes.c_int(0)
        status = lib.cuDeviceGetCount(ctypes.byref(count))
        if status != 0 or count.value == 0:
            return "no CUDA device is visible"
    except AttributeError:
        return f"{lib_name} is not a usable CUDA driver"
    return None


_PRELOADED: list[str] = []


def preload_cuda_libraries() -> str | None:
    """Load the CUDA and cuDNN libraries that pip installed, for the CUDA provider.

    ``onnxruntime-gpu`` does not find the ``nvidia-*`` wheels' libraries on its
    own; ``onnxruntime.preload_dlls()`` (1.21+) loads them.  Called only when a
    driver is present, once per process.  Returns a note for the report.
    """
    if _PRELOADED:
        return _PRELOADED[0]
    import onnxruntime as ort

    if not hasattr(ort, "preload_dlls"):
        note = "onnxruntime has no preload_dlls(); relying on the system CUDA libraries"
    else:
        try:
            ort.preload_dlls()
            note = "preloaded the CUDA/cuDNN libraries installed by pip"
        except Exception as exc:  # a missing wheel is not fatal: system libraries may exist
            note = f"could not preload pip CUDA libraries: {exc}"
    _PRELOADED.append(note)
    return note


def _loadable(short: str, candidates: tuple[str, ...]) -> bool:
    found = ctypes.util.find_library(short)
    for name in (*candidates, *([found] if found else [])):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def _provider_options(name: str) -> dict[str, Any]:
    if name != TENSORRT:
        return {}
    from platformdirs import user_cache_dir

    cache = os.path.join(user_cache_dir("medviewer"), "tensorrt")
    os.makedirs(cache, exist_ok=True)
    return {"trt_engine_cache_enable": True, "trt_engine_cache_path": cache}

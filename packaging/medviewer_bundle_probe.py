"""Report what a frozen MedViewer folder can load, as JSON on stdout.

Run as ``MEDVIEWER_BUNDLE_PROBE=1 MedViewer``.  The report answers the
questions a missing file in the bundle would raise at run time: are the
distributions' metadata there (versions, licences, entry points), do the
pylibjpeg plugins register through their entry points, which pydicom decoders
and ONNX Runtime execution providers are available, which Qt plugins ship,
and which top-level modules the bundle holds (so a check can prove torch is
absent).  It imports nothing from MedViewer: it must work even where the app
cannot start.
"""

from __future__ import annotations

import importlib.metadata
import json
import pkgutil
import sys
from pathlib import Path

PYLIBJPEG_GROUPS = ("pylibjpeg.pixel_data_decoders", "pylibjpeg.pixel_data_encoders",
                    "pylibjpeg.jpeg_decoders", "pylibjpeg.jpeg_2000_decoders")
QT_PLUGIN_FOLDERS = ("platforms", "imageformats", "iconengines", "styles", "platformthemes")


def _guarded(section):
    """Run one section of the report; a failure becomes its ``error`` entry."""
    try:
        return section()
    except Exception as exc:  # noqa: BLE001 - the probe reports every problem, never stops at one
        return {"error": f"{type(exc).__name__}: {exc}"}


def distributions() -> dict[str, str]:
    """Return ``{distribution name: version}`` of every metadata folder found."""
    found = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[name] = dist.version
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def entry_points() -> dict[str, list[str]]:
    """Return the pylibjpeg entry points: ``{group: ["name = module:attr", ...]}``."""
    return {group: sorted(f"{ep.name} = {ep.value}"
                          for ep in importlib.metadata.entry_points(group=group))
            for group in PYLIBJPEG_GROUPS}


def pydicom_decoders() -> dict[str, list[str]]:
    """Return ``{transfer syntax name: available plugins}`` for the compressed syntaxes pydicom decodes."""
    from pydicom import uid
    from pydicom.pixels import get_decoder

    report = {}
    for syntax in uid.AllTransferSyntaxes:
        syntax = uid.UID(syntax)
        if not syntax.is_compressed:
            continue
        try:
            report[syntax.name] = sorted(get_decoder(syntax).available_plugins)
        except NotImplementedError:  # pydicom has no decoder for it at all (video, audio)
            continue
    return report


def onnxruntime_report() -> dict:
    """Return ONNX Runtime's version, device and compiled-in execution providers."""
    import onnxruntime

    return {"version": onnxruntime.__version__, "device": onnxruntime.get_device(),
            "providers": onnxruntime.get_available_providers()}


def qt_report() -> dict:
    """Return the Qt version, the shipped plugins per folder and the readable image formats."""
    from PySide6 import QtCore
    from PySide6.QtGui import QImageReader

    root = Path(QtCore.QLibraryInfo.path(QtCore.QLibraryInfo.LibraryPath.PluginsPath))
    plugins = {folder: sorted(p.name for p in (root / folder).glob("*") if p.is_file())
               for folder in QT_PLUGIN_FOLDERS}
    formats = sorted(bytes(f.data()).decode() for f in QImageReader.supportedImageFormats())
    return {"version": QtCore.qVersion(), "plugins": plugins, "image_formats": formats}


def top_level_modules() -> list[str]:
    """Return the names of the top-level modules and packages the bundle can import."""
    return sorted({info.name for info in pkgutil.iter_modules()})


def report() -> dict:
    """Return the whole probe report."""
    return {
        "frozen": bool(getattr(sys, "frozen", False)),
        "python": sys.version.split()[0],
        "distributions": _guarded(distributions),
        "entry_points": _guarded(entry_points),
        "pydicom_decoders": _guarded(pydicom_decoders),
        "onnxruntime": _guarded(onnxruntime_report),
        "qt": _guarded(qt_report),
        "top_level_modules": _guarded(top_level_modules),
    }


def main() -> int:
    """Print the report as JSON; return 0."""
    json.dump(report(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0

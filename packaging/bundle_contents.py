"""What the MedViewer application folder carries, and what it leaves out.

``packaging/medviewer.spec`` builds from these lists; they live here, apart
from the spec, so that ``tests/test_packaging.py`` can check them against the
repository without running PyInstaller.  This module imports neither
PyInstaller nor Qt.
"""

from __future__ import annotations

import fnmatch
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePath

PACKAGING_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGING_DIR.parent

APP_NAME = "MedViewer"
BUNDLE_IDENTIFIER = "org.medviewer.MedViewer"
ENTRY_SCRIPT = PACKAGING_DIR / "medviewer_entry.py"
ICON_SOURCE = REPO_ROOT / "medviewer" / "resources" / "medviewer.svg"
ICON_NAME = "medviewer"  # the icon-theme name; the desktop entry's Icon= key
DESKTOP_ENTRY = PACKAGING_DIR / "medviewer.desktop"
INSTALL_SCRIPT = PACKAGING_DIR / "install_linux.sh"

# The demo model travels inside the package, where medviewer.services.models
# looks for shipped bundles (``<medviewer package>/bundled_models``); the wheel
# build does the same with a force-include in pyproject.toml.
DEMO_BUNDLE_SOURCE = REPO_ROOT / "models" / "demo"
DEMO_BUNDLE_TARGET = "medviewer/bundled_models/demo"

# Installed beside the runtime dependencies because a feature needs them and
# a frozen app cannot ``pip install`` later: the overlay panel's
# model-randomisation check imports onnx (which reads its own metadata at
# import, so its metadata must ship too).
EXTRA_DISTRIBUTIONS = ["onnx"]

# Modules imported only through entry points, which PyInstaller's import
# analysis cannot follow: the pylibjpeg decoder plugins (``pylibjpeg.*``
# groups).  pydicom's own decoder modules import pyjpegls and pylibjpeg
# directly, and PyInstaller's pydicom hook lists those modules.
PLUGIN_MODULES = ["libjpeg", "openjpeg", "rle"]

# The bundle probe answers MEDVIEWER_BUNDLE_PROBE=1 (see medviewer_entry.py).
PROBE_MODULE = "medviewer_bundle_probe"

# pyqtgraph subpackages that must not be analysed: the examples create a
# QApplication on import, opengl needs PyOpenGL (not a dependency), jupyter
# needs a notebook kernel.
PYQTGRAPH_SKIPPED = ("pyqtgraph.examples", "pyqtgraph.opengl", "pyqtgraph.jupyter")

# Never in the application: the training stack (torch and friends, by design
# the app runs ONNX only), the repository's ``models`` package, test tools,
# and optional imports of our dependencies that the app does not use.
EXCLUDED_MODULES = [
    "torch",
    "torchvision",
    "torchaudio",
    "timm",
    "triton",
    "tensorflow",
    "models",
    "tests",
    "matplotlib",
    "IPython",
    "tkinter",
    "_tkinter",
    "pytest",
    "_pytest",
    "pytestqt",
    "hypothesis",
    "statsmodels",
    "pandas",
    "sympy",
    "networkx",
    "importlinter",
    "PyInstaller",
    # Optional GPU-array paths of pyqtgraph, scipy and sklearn. (YAML stays: huggingface_hub,
    # which tokenizers requires, needs it.)
    "cuda",
    "cupy",
]

# Shared libraries that must come from the user's system, never from the
# build machine: the NVIDIA driver and the CUDA/cuDNN/TensorRT runtimes the
# onnxruntime-gpu providers load (gigabytes, and tied to the driver); the
# provider libraries themselves (libonnxruntime_providers_cuda.so etc.) ship.
SYSTEM_ONLY_LIBRARIES = [
    "libcuda.so*", "nvcuda.dll",
    "libcudart.so*", "cudart64_*.dll",
    "libcublas.so*", "libcublasLt.so*", "cublas64_*.dll", "cublasLt64_*.dll",
    "libcudnn*.so*", "cudnn*.dll",
    "libcufft.so*", "cufft64_*.dll",
    "libcurand.so*", "curand64_*.dll",
    "libnvrtc*.so*", "nvrtc64_*.dll",
    "libnvJitLink.so*", "nvJitLink_*.dll",
    "libnvinfer*.so*", "nvinfer*.dll",
    "libnvonnxparser.so*", "nvonnxparser*.dll",
    # The C++ runtime too: the graphics drivers the system's libGL loads (Mesa's
    # *_dri.so, LLVM) are built against the system's libstdc++, and a bundled
    # older one stops them loading ("GLIBCXX_3.4.xx not found").  A system new
    # enough for the bundle at all (the build machine's glibc or newer) normally
    # has a C++ runtime at least as new as the build machine's.
    "libstdc++.so*", "libgcc_s.so*",
]


# Qt plugins left out (paths inside the bundle).  The GTK3 platform theme
# would load the user's GTK against the build machine's GLib, cairo and pango
# (a crash or a stream of warnings where the versions differ); the app draws
# its own style sheet, and file dialogs still follow the desktop through the
# XDG portal theme.  Leaving the plugin out also drops the GTK stack it pulls
# in (see :func:`prune_binaries`).
QT_PLUGINS_LEFT_OUT = ("PySide6/Qt/plugins/platformthemes/libqgtk3.so",)


@dataclass(frozen=True)
class PlatformConfig:
    """How the application is built on one platform.

    Attributes
    ----------
    console : bool
        Build the console executable (the CLI prints); the GUI still opens.
    hide_console : str or None
        Windows: hide the console window when the program owns it (started
        from Explorer), keep it when started from a terminal.
    icon_suffix : str or None
        Icon file the executable embeds (``.ico``, ``.icns``); Linux uses the
        desktop entry's icon instead.
    macos_bundle : bool
        Wrap the folder in ``MedViewer.app``.
    linux_desktop : bool
        Add the icon theme, the desktop entry and ``install.sh`` to the folder,
        and prune shared libraries by their ELF dependencies.
    cuda_provider : bool
        ONNX Runtime ships a CUDA provider (``onnxruntime-gpu``; macOS gets
        plain ``onnxruntime``, see the markers in pyproject.toml).
    """

    console: bool
    hide_console: str | None
    icon_suffix: str | None
    macos_bundle: bool
    linux_desktop: bool
    cuda_provider: bool


def platform_config(platform: str) -> PlatformConfig:
    """Return the build configuration for a ``sys.platform`` value."""
    if platform == "win32":
        return PlatformConfig(console=True, hide_console="hide-early", icon_suffix=".ico",
                              macos_bundle=False, linux_desktop=False, cuda_provider=True)
    if platform == "darwin":
        # A windowed .app for Finder; the executable inside still prints when run from a terminal.
        return PlatformConfig(console=False, hide_console=None, icon_suffix=".icns",
                              macos_bundle=True, linux_desktop=False, cuda_provider=False)
    return PlatformConfig(console=True, hide_console=None, icon_suffix=None,
                          macos_bundle=False, linux_desktop=platform.startswith("linux"),
                          cuda_provider=True)


def is_system_only_library(dest_name: str) -> bool:
    """Return whether a collected binary must be left to the user's system (CUDA, driver)."""
    name = PurePath(dest_name).name
    return any(fnmatch.fnmatch(name, pattern) for pattern in SYSTEM_ONLY_LIBRARIES)


def _dependency_only(entry: tuple[str, str, str]) -> bool:
    """Whether a binary is in the bundle only because another binary needs it.

    PyInstaller puts the shared libraries it finds through dependency analysis
    at the top of the bundle; extensions, plugins and package libraries keep
    their folders.
    """
    dest, _source, typecode = entry
    return typecode == "BINARY" and "/" not in dest and not dest.startswith("libpython")


def prune_binaries(binaries: list, imports_of=None) -> tuple[list, list]:
    """Drop left-out Qt plugins, system-only libraries, and what only they needed.

    Parameters
    ----------
    binaries : list of (dest, source, typecode)
        PyInstaller's ``Analysis.binaries``.
    imports_of : callable, optional
        ``imports_of(source)`` returns the file names of the shared libraries
        ``source`` links to (ELF ``NEEDED`` entries); without it, libraries
        are not pruned by dependency.  Only pass it on Linux, where those
        names equal the names the bundle stores.

    Returns
    -------
    kept, dropped : list
        The entries to bundle and the ones removed.
    """
    kept = [entry for entry in binaries
            if entry[0] not in QT_PLUGINS_LEFT_OUT and not is_system_only_library(entry[0])]
    needs: dict[str, set[str]] = {}
    while imports_of is not None:
        needed = set()
        for _dest, source, _typecode in kept:
            if source not in needs:
                needs[source] = set(imports_of(source))
            needed |= needs[source]
        still = [e for e in kept if not _dependency_only(e) or PurePath(e[0]).name in needed]
        if len(still) == len(kept):
            break
        kept = still
    kept_set = set(kept)
    return kept, [entry for entry in binaries if entry not in kept_set]


def keep_pyqtgraph_module(name: str) -> bool:
    """Return whether a pyqtgraph submodule belongs in the bundle."""
    return not any(name == skip or name.startswith(skip + ".") for skip in PYQTGRAPH_SKIPPED)


def app_version() -> str:
    """Return MedViewer's version as written in ``medviewer/__init__.py`` (no import)."""
    for line in (REPO_ROOT / "medviewer" / "__init__.py").read_text(encoding="utf-8").splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise RuntimeError("medviewer/__init__.py has no __version__")


def linux_share_files(pngs: dict[int, Path], svg: Path) -> dict[str, Path]:
    """Return ``{path inside the app folder: source}`` of the Linux desktop integration.

    The folder gets the freedesktop layout (``share/icons/hicolor/...``,
    ``share/applications/``) that ``install.sh`` copies under a prefix.
    """
    files = {f"share/icons/hicolor/{size}x{size}/apps/{ICON_NAME}.png": path
             for size, path in pngs.items()}
    files[f"share/icons/hicolor/scalable/apps/{ICON_NAME}.svg"] = svg
    files["share/applications/medviewer.desktop"] = DESKTOP_ENTRY
    files["install.sh"] = INSTALL_SCRIPT
    return files


def add_linux_share(app_folder: Path, pngs: dict[int, Path], svg: Path) -> None:
    """Copy the icons, the desktop entry and ``install.sh`` into a built app folder."""
    for relative, source in linux_share_files(pngs, svg).items():
        target = app_folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)

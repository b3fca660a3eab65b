"""Check, before Qt starts, that this machine can show the GUI, and say how to fix it if not.

On a fresh Linux machine Qt's xcb platform plugin aborts inside ``QApplication`` when
system libraries are missing (``libxcb-cursor0``, ``libxcb-icccm4``, ...), and its own
hint names the wrong one; without any display it aborts with signal 6.  This module
(no Qt import) probes the shared libraries the plugin loads and the display variables,
and returns one message naming the exact packages to install, for Debian/Ubuntu and
Fedora, and the commands that work without a display.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Iterable, Mapping

# soname -> (Debian/Ubuntu package, Fedora package): what Qt 6's xcb plugin loads.
QT_XCB_LIBRARIES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
}
HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc")
HEADLESS_COMMANDS = ("import", "info", "render", "classify", "index", "search", "study",
                     "deid", "teach", "pacs", "demo --no-gui")


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing_libraries(sonames: Iterable[str] | None = None,
                      probe: Callable[[str], bool] = _loads) -> list[str]:
    """Return the sonames among ``sonames`` (Qt's xcb needs by default) that cannot be loaded."""
    return [name for name in (QT_XCB_LIBRARIES if sonames is None else sonames)
            if not probe(name)]


def install_hint(missing: Iterable[str]) -> str:
    """Return the install commands for Debian/Ubuntu and Fedora that provide ``missing``."""
    debian, fedora = [], []
    for name in missing:
        deb, fed = QT_XCB_LIBRARIES.get(name, (name, name))
        debian += [deb] if deb not in debian else []
        fedora += [fed] if fed not in fedora else []
    return (f"Debian/Ubuntu: sudo apt-get install {' '.join(debian)}; "
            f"Fedora: sudo dnf install {' '.join(fedora)}")


def gui_problem(env: Mapping[str, str] | None = None, *, platform: str | None = None,
                sonames: Iterable[str] | None = None,
                probe: Callable[[str], bool] = _loads) -> str | None:
    """Return why the GUI cannot start here (one message with the fix), or None if it can.

    Parameters
    ----------
    env : mapping, optional
        The environment (``os.environ`` by default): ``QT_QPA_PLATFORM``, ``DISPLAY``,
        ``WAYLAND_DISPLAY``.
    platform : str, optional
        ``sys.platform`` by default; only Linux and other X11 systems are checked.
    sonames : iterable of str, optional
        The libraries to probe (Qt's xcb needs by default); a test passes its own.
    probe : callable, optional
        Tells whether a library loads (``ctypes.CDLL`` by default).
    """
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if platform.startswith(("win", "darwin", "cygwin")):
        return None
    qpa = env.get("QT_QPA_PLATFORM", "").split(":")[0].strip()
    if qpa in HEADLESS_PLATFORMS:
        return None
    headless = ("Without a display these commands still work: medviewer "
                + ", ".join(HEADLESS_COMMANDS) + " (see medviewer --help), or run the GUI "
                "under xvfb-run.")
    if qpa.startswith("wayland"):
        if not env.get("WAYLAND_DISPLAY"):
            return "no Wayland display is available (WAYLAND_DISPLAY is not set). " + headless
        return None
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return ("no display is available (neither DISPLAY nor WAYLAND_DISPLAY is set), so the "
                "viewer cannot open. " + headless)
    if not env.get("DISPLAY"):
        return None  # Wayland session: Qt picks its Wayland plugin
    missing = missing_libraries(sonames, probe)
    if missing:
        return (f"the viewer needs system libraries that are missing: {', '.join(missing)}. "
                f"Install them ({install_hint(missing)}) and start it again. " + headless)
    return None

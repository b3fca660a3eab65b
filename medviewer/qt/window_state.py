"""Remember the main window as the user left it: size, position, maximised, docks."""

from __future__ import annotations

from PySide6.QtCore import QByteArray
from PySide6.QtWidgets import QMainWindow

from medviewer.services.settings import Settings


def remember_window_state(window: QMainWindow, settings: Settings) -> None:
    """Store the window's geometry and dock layout in the settings (saved by the caller)."""
    settings.window_geometry = bytes(window.saveGeometry().toBase64()).decode("ascii")
    settings.window_state = bytes(window.saveState().toBase64()).decode("ascii")


def restore_window_state(window: QMainWindow, settings: Settings) -> bool:
    """Put the window back as it was; return whether there was anything to restore.

    A damaged or foreign value is ignored (Qt refuses it), so the window keeps its
    default layout instead of failing to start.
    """
    restored = False
    if settings.window_geometry:
        restored = window.restoreGeometry(
            QByteArray.fromBase64(settings.window_geometry.encode("ascii"))) or restored
    if settings.window_state:
        restored = window.restoreState(
            QByteArray.fromBase64(settings.window_state.encode("ascii"))) or restored
    return restored

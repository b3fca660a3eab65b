"""Create the application, apply the style sheet, open the main window."""

from __future__ import annotations

import logging
import sys
from importlib import resources
from pathlib import Path


def load_style_sheet() -> str:
    """Return the packaged Qt style sheet."""
    return resources.files("medviewer.resources").joinpath("style.qss").read_text(encoding="utf-8")


def create_window(library: str | None = None):
    """Create (but do not run) the application and main window; return the window.

    Used by ``run_app``, the tests and the benchmarks.
    """
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from medviewer.qt.main_window import MainWindow
    from medviewer.services.settings import load_settings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("MedViewer")
    app.setOrganizationName("MedViewer")
    app.setStyleSheet(load_style_sheet())
    icon = resources.files("medviewer.resources").joinpath("medviewer.svg")
    app.setWindowIcon(QIcon(str(icon)))
    settings = load_settings()
    window = MainWindow(settings)
    target = library or (settings.last_library if Path(settings.last_library or "").is_file() else None)
    if target:
        window.open_library(target)
    return window


def run_app(library: str | None = None) -> int:
    """Run the GUI until the window closes; return the exit code."""
    from PySide6.QtWidgets import QApplication

    logging.basicConfig(level=logging.INFO)
    window = create_window(library)
    window.show()
    return QApplication.instance().exec()

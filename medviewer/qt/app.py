"""Create the application, apply the style sheet, open the main window."""

from __future__ import annotations

import logging
import sys
from importlib import resources
from pathlib import Path


def load_style_sheet() -> str:
    """Return the packaged Qt style sheet."""
    return resources.files("medviewer.resources").joinpath("style.qss").read_text(encoding="utf-8")


def forward_qt_messages() -> None:
    """Send Qt's own warnings to MedViewer's log instead of the terminal.

    Installed by the entry points only: the test suite's Qt plugin installs its own
    handler to fail tests on Qt warnings, and must keep it.
    """
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    levels = {QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO,
              QtMsgType.QtWarningMsg: logging.WARNING, QtMsgType.QtCriticalMsg: logging.ERROR,
              QtMsgType.QtFatalMsg: logging.CRITICAL}
    qt_log = logging.getLogger("qt")
    # The offscreen platform (smoke tests, CI) cannot resize or raise native windows: not news.
    expected = ("does not support propagateSizeHints", "does not support raise")

    def handler(mode, _context, message: str) -> None:
        if not any(text in message for text in expected):
            qt_log.log(levels.get(mode, logging.WARNING), message)

    qInstallMessageHandler(handler)


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


def run_app(library: str | None = None, demo_tour: bool = False,
            demo_started: float | None = None) -> int:
    """Run the GUI until the window closes; return the exit code.

    With ``demo_tour`` (``medviewer demo``) the opened demo library shows one case
    classified, searched and explained, as "Open the demo library" does.
    """
    from PySide6.QtWidgets import QApplication

    from medviewer.services.logs import configure_logging
    from medviewer.services.settings import load_settings

    configure_logging(load_settings().log_level)
    forward_qt_messages()
    window = create_window(library)
    window.show()
    if demo_tour and window.library_path:
        window.start_demo_tour(started=demo_started)
    return QApplication.instance().exec()


def run_reading(library: str | None, study: str | None, reader: str | None,
                package: str | None) -> int:
    """Open the reader-study reading screen on a library's study or on a package."""
    from PySide6.QtWidgets import QApplication

    from medviewer.qt.reader_study_window import (ReaderStudyWindow, ask_reader_name,
                                                  choose_screen)
    from medviewer.services.study_images import LibraryCaseImages, PackageCaseImages
    from medviewer.services.logs import configure_logging
    from medviewer.study.session import ReadingSession, open_study_db

    configure_logging()
    forward_qt_messages()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("MedViewer")
    app.setStyleSheet(load_style_sheet())
    if package:
        from medviewer.study.package import read_manifest
        from medviewer.study.store import only_study_id

        manifest = read_manifest(package)
        conn = open_study_db(Path(package) / "package.sqlite")
        study_id = only_study_id(conn)
        reader = reader or manifest["reader"]
        loader = PackageCaseImages(package)
    else:
        from medviewer.store import Library
        from medviewer.study.design import find_study

        with Library(library) as lib:
            study_id = find_study(lib.conn, study)
        conn = open_study_db(library)
        loader = LibraryCaseImages(library)
    reader = reader or ask_reader_name()
    if not reader:
        return 1
    window = ReaderStudyWindow(ReadingSession(conn, study_id, reader), loader)
    window.start_reading(choose_screen(), full_screen=True)
    return app.exec()

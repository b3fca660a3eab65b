"""The main window's import: folders, files and drops into the open library, off the GUI thread.

A mixin of :class:`~medviewer.qt.main_window.MainWindow`: progress and Cancel sit in the
status bar; files committed before a cancel or an error stay in the library.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox

from medviewer.services.settings import user_library_folder
from medviewer.store.library import Library

log = logging.getLogger(__name__)


class ImportActionsMixin:
    """Import into the session's library; needs ``importer``, ``progress``, ``cancel_button``."""

    def choose_import_folder(self) -> None:
        """Ask for a folder to import."""
        folder = QFileDialog.getExistingDirectory(self, "Import folder", str(Path.home()))
        if folder:
            self.import_paths([folder])

    def choose_import_files(self) -> None:
        """Ask for files (DICOM, zip, PNG/JPEG) to import."""
        files, _ = QFileDialog.getOpenFileNames(self, "Import files", str(Path.home()))
        if files:
            self.import_paths(files)

    def import_paths(self, paths: list[str], labels: str | None = None) -> None:
        """Import into the open library (a new one in the data folder if none) off the GUI thread."""
        from medviewer.services.importer import import_paths

        library_path = self.ensure_library()

        def work(state):
            with Library(library_path) as library:
                return import_paths(library, paths, labels=labels, state=state)

        self._begin_import("Importing")
        self.importer.start(work, self._on_import_done)

    def ensure_library(self) -> str:
        """Return the open library, opening the default one in the library folder if none is."""
        if not self.library_path:
            self.open_library(str(user_library_folder(self.settings) / "library.sqlite"))
        return self.library_path

    def _begin_import(self, text: str) -> None:
        self.progress.setValue(0)
        self.progress.show()
        self.cancel_button.show()
        self.statusBar().showMessage(text)

    def _end_import(self) -> None:
        self.progress.hide()
        self.cancel_button.hide()

    def cancel_import(self) -> None:
        """Stop the running import; files already committed stay in the library."""
        self.importer.cancel()
        self._end_import()
        self.statusBar().showMessage("Import cancelled; files imported so far were kept", 8000)
        self.library_panel.refresh()

    def _on_import_failed(self, exc: Exception) -> None:
        from medviewer.qt.workers import handle_error

        self._end_import()
        self.library_panel.refresh()  # files committed before the error stay listed
        handle_error(exc, None, self, "Import")

    def _on_import_progress(self, fraction: float, status: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        if status:
            self.statusBar().showMessage(status)

    def _on_import_done(self, report) -> None:
        self._end_import()
        self._after_new_studies()
        text = (f"Imported {report.instances} images ({report.series} series), "
                f"{report.unchanged} unchanged, {len(report.skipped)} skipped")
        log.info("import finished: %s", text)
        for skipped in report.skipped:
            log.info("skipped %s: %s (%s)", skipped.path, skipped.reason, skipped.detail)
        self.statusBar().showMessage(text, 15000)
        # SR reports hold no pixels: show their text rather than "no pixel data".
        from medviewer.qt.sr_text_dialog import (MAX_DOCUMENTS_SHOWN, is_sr_text_document,
                                                 show_sr_document)

        reports = [s for s in report.skipped if os.path.isfile(s.path)
                   and is_sr_text_document(s.path)]
        for skipped in reports[:MAX_DOCUMENTS_SHOWN]:
            show_sr_document(self, skipped.path)
        others = [s for s in report.skipped if s not in reports[:MAX_DOCUMENTS_SHOWN]]
        if others:
            self._show_import_report(others)

    def _show_import_report(self, skipped: list) -> None:
        lines = [f"{s.path}\n    {s.reason}: {s.detail}" for s in skipped]
        box = QMessageBox(QMessageBox.Information, "Import report",
                          f"{len(skipped)} file(s) were not imported. The rest loaded.",
                          QMessageBox.Ok, self)
        box.setDetailedText("\n".join(lines))
        box.open()

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt naming
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt naming
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        paths = [p for p in paths if os.path.exists(p)]
        if paths:
            self.import_paths(paths)
            event.acceptProposedAction()

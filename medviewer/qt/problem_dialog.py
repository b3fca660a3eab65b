"""The "Report a problem" dialog: say what happened, see exactly what will be saved, save a zip.

The report (log, environment, masking: :mod:`medviewer.services.problem_report`) is built on a
worker thread, since reading and masking a long log against a large library takes a moment;
the note is masked on the GUI thread as the user types, which is quick.  Nothing is sent
anywhere: the user saves a ``.zip`` and attaches it to a message.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QFontDatabase
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QLabel, QPlainTextEdit,
                               QPushButton, QVBoxLayout, QWidget)

from medviewer.qt.workers import TaskRunner
from medviewer.services.problem_report import (ProblemReport, build_report, collect_environment,
                                               default_report_name, masked_summary, preview_text,
                                               write_report)

NOTE_PLACEHOLDER = ("What did you do, what did you expect, and what happened instead?\n"
                    "Please do not type patient names, IDs or other patient details.")
INTRO = ("The report holds MedViewer's log, the versions of MedViewer, Python, your system and "
         "its libraries, and the execution provider in use. It holds no images and no patient "
         "data: file paths, DICOM UIDs and the identifiers of the patients in the open library "
         "are masked. Nothing is sent: you save a .zip file and attach it to your message.")
# Typing should not rebuild a long preview at every key press.
PREVIEW_DELAY_MS = 300

log = logging.getLogger(__name__)


class ProblemReportDialog(QDialog):
    """Collect a problem report, show exactly what it holds, and save it as a zip.

    Parameters
    ----------
    parent : QWidget, optional
    library_path : path, optional
        The open case library: its patients' identifiers are masked in the report.
    provider_report : dict, optional
        ``ProviderReport.to_dict()`` of the model in use.
    log_files : list of path, optional
        The logs to include, oldest first; default :func:`medviewer.services.logs.log_files`.

    Signals
    -------
    sig_report_ready(object)
        The report (without the note) is built (GUI thread).
    sig_saved(object)
        The report was saved; carries the zip's path.
    """

    sig_report_ready = Signal(object)
    sig_saved = Signal(object)

    def __init__(self, parent: QWidget | None = None, *,
                 library_path: str | os.PathLike | None = None,
                 provider_report: dict | None = None,
                 log_files: list[str | os.PathLike] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Report a problem")
        self.resize(780, 660)
        self.report: ProblemReport | None = None
        self.saved_path: Path | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 12)
        layout.setSpacing(8)
        intro = QLabel(INTRO, self)
        intro.setWordWrap(True)
        layout.addWidget(intro)

        layout.addSpacing(4)
        layout.addWidget(self._heading("What happened?"))
        self.note = QPlainTextEdit(self)
        self.note.setPlaceholderText(NOTE_PLACEHOLDER)
        self.note.setTabChangesFocus(True)
        self.note.setFixedHeight(self.fontMetrics().lineSpacing() * 5 + 16)
        layout.addWidget(self.note)

        layout.addSpacing(4)
        layout.addWidget(self._heading("What will be saved (masked)"))
        self.preview = QPlainTextEdit(self)
        self.preview.setReadOnly(True)
        self.preview.setLineWrapMode(QPlainTextEdit.NoWrap)
        self.preview.setFont(QFontDatabase.systemFont(QFontDatabase.FixedFont))
        self.preview.setPlainText("Collecting the log and the environment\u2026")
        layout.addWidget(self.preview, 1)

        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #aeb4bd;")
        layout.addWidget(self.status)

        buttons = QDialogButtonBox(QDialogButtonBox.Close, self)
        self.log_folder_button = buttons.addButton("Open log folder", QDialogButtonBox.ActionRole)
        self.log_folder_button.clicked.connect(self.open_log_folder)
        self.save_button = QPushButton("Save report\u2026", self)
        self.save_button.setObjectName("primaryButton")  # before it is polished: style sheet
        buttons.addButton(self.save_button, QDialogButtonBox.AcceptRole)
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self.choose_and_save)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

        for editor in (self.note, self.preview):
            editor.setStyleSheet("QPlainTextEdit { background: #121417; "
                                 "border: 1px solid #30343a; padding: 4px; }")
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PREVIEW_DELAY_MS)
        self._timer.timeout.connect(self.refresh_preview)
        self.note.textChanged.connect(self._timer.start)

        self._builder = TaskRunner(self)
        self._builder.sig_errored.connect(self._on_failed)
        self._start(library_path, provider_report, log_files)

    def _heading(self, text: str) -> QLabel:
        label = QLabel(text, self)
        label.setStyleSheet("font-weight: 600;")
        return label

    # -- building (worker thread) -----------------------------------------------------------
    def _start(self, library_path, provider_report, log_files) -> None:
        def work(state):  # worker thread: plain Python only
            from medviewer.services.logs import log_files as current_logs

            files = current_logs() if log_files is None else log_files
            state.set_progress(0.1, "Collecting the environment")
            environment = collect_environment(provider_report)
            state.set_progress(0.4, "Reading and masking the log")
            return build_report(files, environment, library_path=library_path)

        self._builder.start(work, self._on_built)

    def _on_built(self, report: ProblemReport) -> None:
        self.report = report.with_note(self.note.toPlainText())
        self.save_button.setEnabled(True)
        self._show()
        self.sig_report_ready.emit(self.report)

    def _on_failed(self, exc: Exception) -> None:
        from medviewer.qt.workers import error_detail

        log.error("problem report failed\n%s", error_detail(exc))
        self.preview.setPlainText(f"The report could not be prepared: {exc}\n\n{error_detail(exc)}")
        self.status.setText("Use \u201cOpen log folder\u201d to find the log instead.")

    # -- preview ------------------------------------------------------------------------------
    def refresh_preview(self) -> None:
        """Mask the note as typed and show the report as it will be saved (GUI thread)."""
        self._timer.stop()
        if self.report is None:
            return
        self.report = self.report.with_note(self.note.toPlainText())
        self._show()

    def _show(self) -> None:
        bar = self.preview.verticalScrollBar()
        position = bar.value()
        self.preview.setPlainText(preview_text(self.report))
        bar.setValue(position)
        masked = masked_summary(self.report.masked)
        lines = [f"Masked: {masked}." if masked else "Nothing needed masking."]
        lines += [f"Note: {problem}." for problem in self.report.problems]
        self.status.setText(" ".join(lines))

    def preview_text(self) -> str:
        """Return the text the preview shows."""
        return self.preview.toPlainText()

    # -- saving ---------------------------------------------------------------------------------
    def save_to(self, path: str | os.PathLike) -> Path:
        """Save the report (with the note as typed now) to ``path``; return the zip's path.

        Raises
        ------
        RuntimeError
            When the report is still being prepared.
        OSError
            When the file cannot be written.
        """
        if self.report is None:
            raise RuntimeError("the problem report is still being prepared")
        self.refresh_preview()
        self.saved_path = write_report(self.report, path)
        self.status.setText(f"Saved {self.saved_path.name} in {self.saved_path.parent}. "
                            "Attach it to your message.")
        self.sig_saved.emit(self.saved_path)
        return self.saved_path

    def choose_and_save(self) -> None:
        """Ask where to save the report (default: the home folder), then save it."""
        suggested = str(Path.home() / default_report_name())
        path, _ = QFileDialog.getSaveFileName(self, "Save problem report", suggested,
                                              "Zip archives (*.zip)")
        if not path:
            return
        try:
            self.save_to(path)
        except OSError as exc:
            self.status.setText(f"Could not save the report: {exc}")

    def open_log_folder(self) -> None:
        """Open the folder holding MedViewer's logs in the file manager."""
        from medviewer.services.logs import current_log_file

        QDesktopServices.openUrl(QUrl.fromLocalFile(str(current_log_file().parent)))

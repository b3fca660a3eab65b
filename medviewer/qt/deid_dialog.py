"""Export a de-identified copy of a series, a study or the whole library.

The dialog gathers what to export, the options (pre-filled from the user's
de-identification defaults) and an output folder; the work runs in
:mod:`medviewer.services.deid_export` on a :class:`TaskRunner`, and the dialog
ends with what was written, what was refused and why, and where the audit is.
"""

from __future__ import annotations

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from medviewer.deid import DeidReport
from medviewer.errors import MedViewerError
from medviewer.qt.deid_options_form import FORM_STYLE, DeidOptionsForm
from medviewer.qt.workers import TaskRunner
from medviewer.services.deid_export import (
    ExportPlan,
    ExportScope,
    check_output_folder,
    export_files,
    options_from_defaults,
    plan_export,
)

# Exporter skip reasons (exception names) in words; the burned-in detail says it itself.
REASON_WORDS = {"BurnedInTextError": "",
                "DeidError": "cannot be de-identified",
                "unreadable": "unreadable"}
# The form's tick boxes for the dialog's own, plus disabled buttons that look disabled.
DIALOG_STYLE = FORM_STYLE + """
QLabel#deidIntro { color: #8a8f98; }
QLabel#deidMessage { color: #ffb26b; }
QPushButton:disabled { color: #6b7078; }
QScrollArea#deidOptions { border: none; }
"""
BURNED_IN_HINT = ("Ultrasound, screen captures and similar images often show the patient's "
                  "name in their pixels. They are refused unless you tick this; check their "
                  "pixels yourself before sharing them.")


class DeidExportDialog(QDialog):
    """Export de-identified copies (DICOM PS3.15 Basic Profile and the chosen options).

    Parameters
    ----------
    parent : QWidget or None
    library_path : str
        The library file.
    series_ids : list of int, optional
        The selected series; their study is offered too when they share one.
    study_id : int, optional
        The selected study.  With neither, the whole library is exported.
    defaults : dict
        The user's ``deid_defaults`` (settings); they pre-fill the options.

    Signals
    -------
    sig_defaults_changed(dict)
        The options the user asked to remember as defaults, emitted when an export
        starts with "Remember these options" ticked and options that differ from
        ``defaults`` (``deid_defaults`` keys only).
    """

    sig_defaults_changed = Signal(dict)

    def __init__(self, parent: QWidget | None, library_path: str, *,
                 series_ids: list[int] | None = None, study_id: int | None = None,
                 defaults: dict) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export de-identified copy")
        self.plan: ExportPlan | None = None
        self.report: DeidReport | None = None
        self._defaults = dict(defaults)
        self._state = None  # the TaskState of the export in flight
        self._total = 0  # files in the export in flight
        self.runner = TaskRunner(self)
        self.runner.sig_progress.connect(self._on_progress)
        self.runner.sig_errored.connect(self._on_failed)
        self._build()
        self.form.set_values(defaults)
        self._set_busy(False)
        series = list(series_ids or [])
        self.runner.start(lambda state: _plan_or_error(library_path, series, study_id),
                          self._on_plan)

    # -- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.setStyleSheet(DIALOG_STYLE)
        columns = QHBoxLayout()
        left = QVBoxLayout()
        intro = QLabel("Writes de-identified copies (DICOM PS3.15 Basic Profile) to a new "
                       "folder, with an audit of what was done. The library is not changed.",
                       self)
        intro.setObjectName("deidIntro")
        intro.setWordWrap(True)
        left.addWidget(intro)

        scope_box = QGroupBox("What to export", self)
        self.scope_layout = QVBoxLayout(scope_box)
        self.scope_group = QButtonGroup(self)
        self.scope_buttons: list[QRadioButton] = []
        self.scope_pending = QLabel("Counting images\u2026", scope_box)
        self.scope_layout.addWidget(self.scope_pending)
        left.addWidget(scope_box)

        burned_box = QGroupBox("Burned-in text", self)
        burned_layout = QVBoxLayout(burned_box)
        self.include_burned_in = QCheckBox("Include files that may have burned-in text",
                                           burned_box)
        burned_layout.addWidget(self.include_burned_in)
        burned_layout.addWidget(_hint(BURNED_IN_HINT, burned_box))
        left.addWidget(burned_box)

        out_box = QGroupBox("Output folder", self)
        out_layout = QVBoxLayout(out_box)
        row = QHBoxLayout()
        self.out_edit = QLineEdit(out_box)
        self.out_edit.setPlaceholderText("A new or empty folder outside the library")
        self.out_edit.textChanged.connect(lambda: self.message.clear())
        self.choose_button = QPushButton("Choose\u2026", out_box)
        self.choose_button.clicked.connect(self.choose_folder)
        row.addWidget(self.out_edit, 1)
        row.addWidget(self.choose_button)
        out_layout.addLayout(row)
        left.addWidget(out_box)

        self.remember = QCheckBox("Remember these options as my defaults", self)
        left.addWidget(self.remember)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.status = QLabel("", self)
        self.summary = QPlainTextEdit(self)
        self.summary.setReadOnly(True)
        self.summary.setPlaceholderText("The summary of the export appears here.")
        left.addWidget(self.progress)
        left.addWidget(self.status)
        left.addWidget(self.summary, 1)

        # The options scroll rather than clip where the screen is short.
        options = QScrollArea(self)
        options.setObjectName("deidOptions")
        options.setWidgetResizable(True)
        self.form = DeidOptionsForm(options)
        options.setWidget(self.form)
        columns.addLayout(left, 1)
        columns.addWidget(options, 1)

        self.message = QLabel("", self)
        self.message.setObjectName("deidMessage")
        self.message.setWordWrap(True)
        buttons = QHBoxLayout()
        self.open_button = QPushButton("Open folder", self)
        self.open_button.clicked.connect(self.open_folder)
        self.export_button = QPushButton("Export", self)
        self.export_button.setObjectName("primaryButton")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start_export)
        self.cancel_button = QPushButton("Cancel export", self)
        self.cancel_button.clicked.connect(self.cancel_export)
        self.close_button = QPushButton("Close", self)
        self.close_button.clicked.connect(self._close)
        buttons.addWidget(self.open_button)
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.addLayout(columns, 1)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self.resize(1040, 700)

    # -- public ---------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether an export is running."""
        return self._state is not None

    def chosen_defaults(self) -> dict | None:
        """Return the options to save as defaults, or ``None`` if "Remember" is not ticked."""
        return self.form.values() if self.remember.isChecked() else None

    def selected_scope(self) -> ExportScope | None:
        """Return the chosen scope, or ``None`` before the scopes are counted."""
        index = self.scope_group.checkedId()
        return self.plan.scopes[index] if self.plan is not None and index >= 0 else None

    def choose_folder(self) -> None:
        """Ask for the output folder (the file dialog can create a new one)."""
        folder = QFileDialog.getExistingDirectory(self, "Folder for the de-identified export",
                                                  self.out_edit.text())
        if folder:
            self.out_edit.setText(folder)

    def start_export(self) -> None:
        """Check the folder and options, then export off the GUI thread."""
        scope = self.selected_scope()
        if scope is None or self.busy:
            return
        try:
            out = check_output_folder(self.out_edit.text(), self.plan.protected_folders)
            options = options_from_defaults(self.form.values())
        except MedViewerError as exc:
            self._show_error(exc)
            return
        if self.chosen_defaults() is not None and self.form.values() != self._defaults:
            self._defaults = self.form.values()
            self.sig_defaults_changed.emit(dict(self._defaults))
        self.message.clear()
        self.summary.clear()
        self.report = None
        self.progress.setValue(0)
        self.status.setText("Starting\u2026")
        files, protected = scope.files, self.plan.protected_folders
        include = self.include_burned_in.isChecked()
        self._total = scope.images
        self._state = self.runner.start(
            lambda state: _export_or_error(files, out, options, protected, include, state),
            self._on_exported)
        self._set_busy(True)

    def cancel_export(self) -> None:
        """Stop the export after the file in hand; its report still arrives (GUI thread)."""
        if self._state is not None:
            self._state.request_cancel()
            self.cancel_button.setEnabled(False)
            self.status.setText("Cancelling after the current file\u2026")

    def open_folder(self) -> None:
        """Show the export folder in the system's file manager."""
        if self.report is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(self.report.out_dir))

    def reject(self) -> None:
        """Esc or the window's close button: cancel a running export rather than close."""
        if self.busy:
            self.cancel_export()
            return
        super().reject()

    # -- results (GUI thread) -------------------------------------------------------------
    def _on_plan(self, result) -> None:
        self.scope_pending.hide()
        if isinstance(result, MedViewerError):
            self.scope_pending.setText("Nothing to export.")
            self.scope_pending.show()
            self._show_error(result)
            return
        self.plan = result
        for index, scope in enumerate(result.scopes):
            button = QRadioButton(scope.describe(), self)
            button.setEnabled(scope.images > 0)
            self.scope_group.addButton(button, index)
            self.scope_layout.addWidget(button)
            self.scope_buttons.append(button)
        usable = [b for b in self.scope_buttons if b.isEnabled()]
        if usable:
            usable[0].setChecked(True)
        else:
            self.message.setText("There are no images to export.")
        self._set_busy(False)

    def _on_progress(self, fraction: float, status: str) -> None:
        if self.busy:
            self.progress.setValue(int(fraction * 1000))
            if not self._state.cancel_requested:
                self.status.setText(status)

    def _on_exported(self, result) -> None:
        self._state = None
        if isinstance(result, MedViewerError):
            self._set_busy(False)
            self.status.setText("Nothing was exported.")
            self._show_error(result)
            return
        self.report = result
        if not result.cancelled:
            self.progress.setValue(1000)
        self._set_busy(False)
        self.status.setText("Cancelled." if result.cancelled else "Done.")
        self.summary.setPlainText(summary_text(result, self._total))

    def _on_failed(self, exc: Exception) -> None:
        from medviewer.qt.workers import report_unexpected

        self._state = None
        self._set_busy(False)
        if isinstance(exc, MedViewerError):
            self.status.setText("Stopped.")
            self._show_error(exc)
            return
        self.status.setText("Stopped on an unexpected error.")
        self.message.setText(str(exc))
        report_unexpected(self, exc)

    # -- helpers --------------------------------------------------------------------------
    def _show_error(self, exc: MedViewerError) -> None:
        text = f"{exc.path}: {exc.message}" if exc.path else exc.message
        self.message.setText(f"{text[:1].upper()}{text[1:]}."
                             + (f" {exc.hint[:1].upper()}{exc.hint[1:]}." if exc.hint else ""))

    def _set_busy(self, busy: bool) -> None:
        ready = self.plan is not None and not busy
        for widget in (self.form, self.include_burned_in, self.out_edit, self.choose_button,
                       self.remember):
            widget.setEnabled(not busy)
        for button, scope in zip(self.scope_buttons, self.plan.scopes if self.plan else ()):
            button.setEnabled(not busy and scope.images > 0)
        self.export_button.setEnabled(ready and self.selected_scope() is not None)
        self.cancel_button.setEnabled(busy)
        self.close_button.setEnabled(not busy)
        self.open_button.setEnabled(not busy and self.report is not None)
        self.progress.setVisible(busy or self.report is not None)

    def _close(self) -> None:
        self.done(QDialog.Accepted if self.report is not None else QDialog.Rejected)


def summary_text(report: DeidReport, total: int) -> str:
    """Return what an export did, in words: counts, the audit, refusals with reasons."""
    written, skipped = len(report.written), len(report.skipped)
    lines = []
    if report.cancelled:
        lines += [f"Cancelled after {written + skipped} of {total} files.",
                  (f"What was written so far ({_files(written)} and the audit) stays in "
                   f"{report.out_dir}; delete that folder, or choose another, to export again.")]
    else:
        lines.append(f"Wrote {_files(written)} to {report.out_dir}.")
    lines.append(f"Audit (what was done to every attribute): {report.audit_path}")
    if skipped:
        lines += ["", f"Refused {_files(skipped)}:"]
        for item in report.skipped:
            lines.append(f"  {item.source}")
            words = REASON_WORDS.get(item.reason, item.reason)
            lines.append(f"    {words}: {item.detail}" if words else f"    {item.detail}")
        if any(s.reason == "BurnedInTextError" for s in report.skipped):
            lines += ["", ("Look at the images refused for burned-in text. If they are clean, "
                           "tick \u201cInclude files that may have burned-in text\u201d and "
                           "export again into a new folder. The command \u201cmedviewer deid "
                           "--blackout\u201d can black out regions of an image.")]
    if report.flagged:
        lines += ["", ("Included although they may show burned-in text (check their pixels "
                       f"before sharing): {_files(len(report.flagged))}")]
        lines += [f"  {w.output}: {'; '.join(w.burned_in_reasons)}" for w in report.flagged]
    return "\n".join(lines)


def _plan_or_error(library_path: str, series_ids: list[int], study_id: int | None):
    """Worker thread: the plan, or the expected error to show in the dialog with its hint."""
    try:
        return plan_export(library_path, series_ids=series_ids, study_id=study_id)
    except MedViewerError as exc:
        return exc


def _export_or_error(files, out, options, protected, include, state):
    """Worker thread: the report, or the expected error to show with its hint."""
    try:
        return export_files(files, out, options, protected=protected,
                            include_burned_in=include, state=state)
    except MedViewerError as exc:
        return exc


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"


def _hint(text: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    label.setObjectName("optionHint")
    label.setWordWrap(True)
    return label

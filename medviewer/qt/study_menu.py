"""The Reader study menu of the main window: create, read, packages, results."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QInputDialog,
                               QLineEdit, QMessageBox, QSpinBox, QComboBox, QVBoxLayout)

from medviewer.qt.report_view import ReportBrowser
from medviewer.qt.workers import TaskRunner, handle_error
from medviewer.store.library import Library


def list_studies(library_path: str) -> list[tuple[int, str]]:
    """Return (id, name) of the library's reader studies."""
    from medviewer.study.store import list_studies as studies_of

    with Library(library_path) as library:
        return studies_of(library.conn)


class NewStudyDialog(QDialog):
    """Ask for a study's name, size, seed and stratification."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New reader study")
        form = QFormLayout(self)
        self.name = QLineEdit(self)
        self.queries = QSpinBox(self)
        self.queries.setRange(1, 10000)
        self.queries.setValue(20)
        self.seed = QSpinBox(self)
        self.seed.setRange(0, 2**31 - 1)
        self.stratify = QComboBox(self)
        for text, key in (("none", "none"), ("by label", "label"), ("by modality", "modality")):
            self.stratify.addItem(text, key)
        form.addRow("Name", self.name)
        form.addRow("Query cases", self.queries)
        form.addRow("Seed", self.seed)
        form.addRow("Stratify", self.stratify)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)


class StudyResultsDialog(QDialog):
    """The agreement report of a study, as a researcher would attach it to a paper."""

    def __init__(self, html: str, report, parent=None, *, summary=()) -> None:
        super().__init__(parent)
        self.setWindowTitle("Reader study results")
        self.resize(900, 760)
        self.report = report
        self.summary = list(summary)
        self.html = html
        layout = QVBoxLayout(self)
        self.browser = ReportBrowser(self)
        self.browser.set_report(html)
        layout.addWidget(self.browser, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.Close, self)
        save_html = buttons.addButton("Save report\u2026", QDialogButtonBox.ActionRole)
        save_csv = buttons.addButton("Save results CSV\u2026", QDialogButtonBox.ActionRole)
        save_summary = buttons.addButton("Save reader summary CSV\u2026",
                                         QDialogButtonBox.ActionRole)
        save_summary.setEnabled(bool(self.summary))
        save_html.clicked.connect(self.save_html)
        save_csv.clicked.connect(self.save_csv)
        save_summary.clicked.connect(self.save_summary)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def save_html(self) -> None:
        """Write the standalone HTML report."""
        path, _ = QFileDialog.getSaveFileName(self, "Save report", "reader-study.html", "HTML (*.html)")
        if path:
            Path(path).write_text(self.html, encoding="utf-8")

    def save_csv(self) -> None:
        """Write the results table."""
        from medviewer.stats import write_results_csv

        path, _ = QFileDialog.getSaveFileName(self, "Save results", "reader-study.csv", "CSV (*.csv)")
        if path:
            write_results_csv(self.report, path)


    def save_summary(self) -> None:
        """Write the per-reader summary (queries done, time per query)."""
        from medviewer.study.tidy import write_reader_summary_csv

        path, _ = QFileDialog.getSaveFileName(self, "Save reader summary",
                                              "reader-summary.csv", "CSV (*.csv)")
        if path:
            write_reader_summary_csv(self.summary, path)


class ReaderStudyMenu:
    """Builds the menu and runs its actions for a main window."""

    def __init__(self, window) -> None:
        self.window = window
        self.runner = TaskRunner(window)
        self.runner.sig_errored.connect(lambda exc: handle_error(exc, None, window, "Reader study"))
        menu = window.menuBar().addMenu("&Reader study")
        menu.addAction("New study from the index\u2026", self.new_study)
        menu.addAction("Read\u2026", self.read)
        menu.addAction("Read a package\u2026", self.read_package)
        menu.addSeparator()
        menu.addAction("Export a reading package\u2026", self.export_package)
        menu.addAction("Import a reader's results\u2026", self.import_results)
        menu.addSeparator()
        menu.addAction("Results\u2026", self.results)
        self.menu = menu
        self._windows = []

    def _choose_study(self) -> int | None:
        library = self.window.library_path
        studies = list_studies(library) if library else []
        if not studies:
            QMessageBox.information(self.window, "Reader study", "This library has no reader "
                                    "study yet: create one first.")
            return None
        names = [f"{name} (id {sid})" for sid, name in studies]
        choice, ok = QInputDialog.getItem(self.window, "Reader study", "Study:", names, 0, False)
        return studies[names.index(choice)][0] if ok else None

    def new_study(self) -> None:
        """Design a study from the loaded model's index."""
        from medviewer.services.reader_study import design_study

        window = self.window
        runner = window.session.runner
        if runner is None or not window.library_path:
            QMessageBox.information(window, "Reader study", "Open a library and load a model "
                                    "(with its index built) first.")
            return
        dialog = NewStudyDialog(window)
        if dialog.exec() != QDialog.Accepted or not dialog.name.text().strip():
            return
        path, name = window.library_path, dialog.name.text().strip()
        queries, seed = dialog.queries.value(), dialog.seed.value()
        stratify = dialog.stratify.currentData()

        def work(state):
            with Library(path) as library:
                return design_study(library, runner, name, queries=queries, seed=seed,
                                    stratify=stratify, state=state)

        self.runner.start(work, lambda s: window.statusBar().showMessage(
            f"Created reader study {s.name!r} with {s.queries} queries", 8000))

    def read(self) -> None:
        """Open the reading screen for a study of this library (every other window hidden)."""
        from medviewer.qt.reader_study_window import ask_reader_name
        from medviewer.services.study_images import LibraryCaseImages
        from medviewer.study.session import ReadingSession, open_study_db

        study_id = self._choose_study()
        reader = ask_reader_name(self.window) if study_id is not None else None
        if not reader:
            return
        path = self.window.library_path
        self._start(ReadingSession(open_study_db(path), study_id, reader),
                    LibraryCaseImages(path, self.window.cache))

    def read_package(self) -> None:
        """Open the reading screen on a package folder."""
        from medviewer.services.study_images import PackageCaseImages
        from medviewer.study.package import read_manifest
        from medviewer.study.session import ReadingSession, open_study_db
        from medviewer.study.store import only_study_id

        folder = QFileDialog.getExistingDirectory(self.window, "Reading package")
        if not folder:
            return
        manifest = read_manifest(folder)
        conn = open_study_db(Path(folder) / "package.sqlite")
        study_id = only_study_id(conn)
        self._start(ReadingSession(conn, study_id, manifest["reader"]), PackageCaseImages(folder))

    def _start(self, session, loader):
        """Show the reading screen full screen on the chosen screen, the rest hidden."""
        from medviewer.qt.reader_study_window import ReaderStudyWindow, choose_screen

        screen = choose_screen(self.window)
        reading = ReaderStudyWindow(session, loader)
        reading.sig_closed.connect(self._on_reading_closed)
        self._windows.append(reading)
        reading.start_reading(screen, full_screen=True)
        return reading

    def _on_reading_closed(self, how: str) -> None:
        self.window.statusBar().showMessage(
            "Reading paused: every pick is saved; Read\u2026 resumes at the first unanswered "
            "query." if how == "paused" else "Reading finished: thank you.", 10000)

    def export_package(self) -> None:
        """Write a package for a reader on another machine."""
        from medviewer.services.study_images import LibraryCaseImages
        from medviewer.study.package import export_package

        study_id = self._choose_study()
        if study_id is None:
            return
        reader, ok = QInputDialog.getText(self.window, "Reading package", "Reader's name:")
        folder = QFileDialog.getExistingDirectory(self.window, "Empty folder for the package") \
            if ok and reader.strip() else ""
        if not folder:
            return
        path = self.window.library_path
        self.runner.start(
            lambda state: export_package(path, study_id, reader.strip(), folder,
                                         LibraryCaseImages(path)),
            lambda out: self.window.statusBar().showMessage(f"Package written to {out}", 8000))

    def import_results(self) -> None:
        """Merge a package's answers and report duplicates and conflicts."""
        from medviewer.study.package import import_results

        folder = QFileDialog.getExistingDirectory(self.window, "Returned reading package")
        if not folder:
            return
        report = import_results(self.window.library_path, folder)
        text = (f"{report.reader}: {report.imported} answers imported, {report.duplicates} "
                f"duplicates, {len(report.conflicts)} conflicts (answers at home were kept).")
        QMessageBox.information(self.window, "Import results", text)

    def results(self) -> None:
        """Compute the statistics off the GUI thread and show the report."""
        from medviewer.services.study_results import study_report
        from medviewer.stats import render_html

        study_id = self._choose_study()
        if study_id is None:
            return
        path = self.window.library_path

        def work(state):
            from medviewer.study.session import open_study_db
            from medviewer.study.tidy import reader_summary, with_reader_summary

            report = study_report(path, study_id)
            conn = open_study_db(path)
            try:
                summary = reader_summary(conn, study_id)
            finally:
                conn.close()
            html = with_reader_summary(render_html(report), summary)
            return report, html, summary

        def show(payload):
            report, html, summary = payload
            dialog = StudyResultsDialog(html, report, self.window, summary=summary)
            dialog.show()
            self._windows.append(dialog)

        self.runner.start(work, show)

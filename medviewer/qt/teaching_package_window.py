"""Browse a teaching package made on another machine (read-only) and take its quiz."""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QHBoxLayout, QInputDialog, QLineEdit, QListWidget,
                               QListWidgetItem, QMainWindow, QMessageBox, QPushButton,
                               QTextBrowser, QVBoxLayout, QWidget)


class TeachingPackageWindow(QMainWindow):
    """Browse a teaching package made elsewhere (read-only) and take its quiz."""

    def __init__(self, package, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.package = package
        self.setWindowTitle(f"Teaching package \u2014 {package.title or 'untitled'} (read-only)")
        self.resize(1100, 760)
        central = QWidget(self)
        layout = QHBoxLayout(central)
        left = QVBoxLayout()
        self.filter = QLineEdit(central)
        self.filter.setPlaceholderText("search the cases' text")
        left.addWidget(self.filter)
        self.cases = QListWidget(central)
        left.addWidget(self.cases, 1)
        self.quiz_button = QPushButton("Start the quiz\u2026", central)
        self.quiz_button.setObjectName("primaryButton")
        left.addWidget(self.quiz_button)
        layout.addLayout(left, 1)
        self.page = QTextBrowser(central)
        self.page.setStyleSheet("QTextBrowser { background: #fbfbfb; color: #1b1d21; }")
        layout.addWidget(self.page, 3)
        self.setCentralWidget(central)
        self._windows: list[QWidget] = []
        self.filter.textChanged.connect(self._fill)
        self.cases.currentItemChanged.connect(lambda *_: self._show())
        self.quiz_button.clicked.connect(lambda: self.start_quiz())
        self._fill()

    def _fill(self) -> None:
        self.cases.clear()
        for case in self.package.search(text=self.filter.text()):
            item = QListWidgetItem(f"Case {case.number}: {case.title}")
            item.setData(Qt.UserRole, case)
            self.cases.addItem(item)
        if self.cases.count():
            self.cases.setCurrentRow(0)

    def _show(self) -> None:
        item = self.cases.currentItem()
        if item is None:
            self.page.clear()
            return
        case = item.data(Qt.UserRole)

        def figures(images, size):
            return "".join(f'<p><img src="{Path(i.png).as_uri()}" width="{size}"><br>'
                           f'{"<br>".join(escape(c) for c in i.caption)}</p>' for i in images)

        sections = [("History", case.history), ("Findings", case.findings),
                    ("Diagnosis", case.diagnosis), ("Discussion", case.discussion),
                    ("Notes", case.free_text), ("References", case.citations)]
        html = (f"<h2>Case {case.number}: {escape(case.title)}</h2>"
                f"<p>{escape(case.modality)} \u00b7 {escape(', '.join(case.labels))}"
                f"{' · tags ' + escape(', '.join(case.tags)) if case.tags else ''}</p>"
                + figures(case.images, 420) +
                "".join(f"<h3>{n}</h3><p>{escape(v).replace(chr(10), '<br>')}</p>"
                        for n, v in sections if v.strip()))
        if case.similar:
            html += "<h3>Similar cases</h3>" + figures(case.similar, 160)
        if case.dissimilar:
            html += "<h3>Dissimilar cases</h3>" + figures(case.dissimilar, 160)
        self.page.setHtml(html)

    def start_quiz(self, learner: str | None = None):
        """Open the package's quiz (answers kept in memory; the package is not written)."""
        from medviewer.errors import MedViewerError
        from medviewer.qt.quiz_window import QuizWindow
        from medviewer.services.teaching_quiz import PackageQuizRunner
        from medviewer.teaching.package_reader import PackageQuiz

        if learner is None:
            learner, ok = QInputDialog.getText(self, "Quiz", "Learner's name or alias:")
            if not ok:
                return None
        try:
            runner = PackageQuizRunner(PackageQuiz(self.package, learner))
        except MedViewerError as exc:
            QMessageBox.information(self, "Quiz", str(exc))
            return None
        window = QuizWindow(runner)
        window.start()
        self._windows.append(window)
        return window

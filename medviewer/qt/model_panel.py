"""The model panel: choose a bundle, see its card and provider, classify the image on screen."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QGridLayout, QHBoxLayout, QLabel,
                               QProgressBar, QPushButton, QSizePolicy, QTextBrowser, QVBoxLayout,
                               QWidget)

from medviewer.qt.workers import TaskRunner
from medviewer.services.models import find_bundles
from medviewer.services.session import Session

log = logging.getLogger(__name__)


class ModelPanel(QWidget):
    """Load a bundle off the GUI thread, show which provider really runs it, classify.

    The loaded model goes into the :class:`~medviewer.services.session.Session`; the
    panel draws the session's classification of the image on screen and clears it when
    the session does (another image, library or model).

    Signals
    -------
    sig_model_ready(object)
        The loaded ``ModelRunner`` (after the session has it).
    sig_classified(object)
        A :class:`~medviewer.services.models.Classification`, once drawn.
    """

    sig_model_ready = Signal(object)
    sig_classified = Signal(object)

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        # From the settings (the window keeps them in step): the execution provider preference,
        # the default bundle and extra folders searched for bundles.
        self.provider_preference = "auto"
        self.default_model = ""
        self.model_folders: list[str] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        row = QHBoxLayout()
        self.choice = QComboBox(self)
        self.choice.setMinimumWidth(160)
        row.addWidget(self.choice, 1)
        self.open_button = QPushButton("Open\u2026", self)
        row.addWidget(self.open_button)
        layout.addLayout(row)
        self.provider = QLabel("No model loaded", self)
        self.provider.setObjectName("providerLabel")
        self.provider.setWordWrap(True)
        layout.addWidget(self.provider)
        self.classify_button = QPushButton("Classify this image", self)
        self.classify_button.setEnabled(False)
        layout.addWidget(self.classify_button)
        # Whether the model applies to the image, in words, above the numbers.
        self.applicability = QLabel("", self)
        self.applicability.setWordWrap(True)
        self.applicability.setObjectName("applicabilityLabel")
        # Never squeezed below its text (the model card below gives way instead).
        self.applicability.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Minimum)
        self.applicability.hide()
        layout.addWidget(self.applicability)
        self.results = QGridLayout()
        layout.addLayout(self.results)
        self.message = QLabel("", self)
        self.message.setWordWrap(True)
        self.message.setObjectName("panelMessage")
        layout.addWidget(self.message)
        self.card = QTextBrowser(self)
        self.card.setMinimumHeight(120)
        self.card.setOpenExternalLinks(False)
        layout.addWidget(self.card, 1)
        self._loader = TaskRunner(self, message=self._show_problem)
        self._classifier = TaskRunner(self, message=self._show_problem)
        session.connect("classified", self._on_classified)
        session.connect("results_cleared",
                        lambda: self.session.classification is None and self._clear_results())
        self.open_button.clicked.connect(self.choose_bundle)
        self.choice.activated.connect(lambda i: self.load(self.choice.itemData(i)))
        self.classify_button.clicked.connect(self.classify_current)
        self.refresh_bundles()

    @property
    def runner(self):
        """Return the session's model (None before one is loaded)."""
        return self.session.runner

    @property
    def loading(self) -> bool:
        """Whether a bundle is being loaded now."""
        return self._loader.busy

    def refresh_bundles(self) -> None:
        """List the bundles found in the models folders."""
        from medviewer.services.models import bundle_search_paths

        self.choice.clear()
        for folder in find_bundles(bundle_search_paths(self.model_folders)):
            self.choice.addItem(folder.name, str(folder))
        if self.choice.count() == 0:
            self.choice.addItem("(no bundle found)", None)

    def load_default(self) -> None:
        """Load the demo bundle (or the first bundle found), if there is one."""
        from medviewer.services.models import default_bundle

        folder = default_bundle(self.default_model, self.model_folders)
        if folder is not None:
            index = self.choice.findData(str(folder))
            if index >= 0:
                self.choice.setCurrentIndex(index)
            self.load(str(folder))

    def choose_bundle(self) -> None:
        """Ask for a bundle folder."""
        folder = QFileDialog.getExistingDirectory(self, "Open model bundle", str(Path.home()))
        if folder:
            self.choice.addItem(Path(folder).name, folder)
            self.choice.setCurrentIndex(self.choice.count() - 1)
            self.load(folder)

    def load(self, folder: str | None) -> None:
        """Validate and load a bundle in the background."""
        if not folder:
            return
        from medviewer.inference import ModelRunner

        self.provider.setText(f"Loading {Path(folder).name}\u2026")
        self.classify_button.setEnabled(False)
        preference = self.provider_preference
        self._loader.start(lambda state: ModelRunner(folder, preference), self._on_loaded)

    def _on_loaded(self, runner) -> None:
        self.session.set_model(runner)
        report = runner.provider_report()
        log.info("model %s (sha256 %s) loaded; ONNX Runtime on %s. %s", runner.bundle.name,
                 runner.bundle.sha256[:12], report.provider_label, report.message)
        # Always say which provider runs, and why a faster one does not.
        self.provider.setText(f"ONNX Runtime on <b>{report.provider_label}</b><br>"
                              f"<span style='color:#c9a227'>{report.message}</span>"
                              if report.unavailable else
                              f"ONNX Runtime on <b>{report.provider_label}</b>")
        # Card headings at panel scale (demoted three levels): a dock is no place for 2em titles.
        self.card.setMarkdown(re.sub(r"^(#{1,3}) ", lambda m: "#" * (len(m.group(1)) + 3) + " ",
                                     runner.bundle.card_text, flags=re.MULTILINE))
        self.message.setText("")
        self.classify_button.setEnabled(True)
        self.sig_model_ready.emit(runner)

    def classify_current(self) -> None:
        """Classify the image on screen (worker thread); the session keeps the result."""
        if self.session.runner is None:
            return
        job = self.session.classify_job()
        if job is None:
            self.message.setText("Open an image first.")
            return
        self.message.setText("Classifying\u2026")
        self._classifier.start(job, self.session.accept)

    def _clear_results(self) -> None:
        self.applicability.hide()
        self.applicability.setText("")
        while self.results.count():
            item = self.results.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self.message.setText("")

    def _on_classified(self, result) -> None:
        self._clear_results()
        classification = result.classification
        show_applicability(self.applicability, getattr(result, "applicability", None))
        for row, (label, p) in enumerate(sorted(classification.probabilities.items(),
                                                key=lambda kv: -kv[1])):
            name = QLabel(label, self)
            bar = QProgressBar(self)
            bar.setRange(0, 1000)
            bar.setValue(int(p * 1000))
            bar.setFormat(f"{p * 100:.0f}%")
            bar.setAlignment(Qt.AlignCenter)
            self.results.addWidget(name, row, 0)
            self.results.addWidget(bar, row, 1)
        self.message.setText(f"Model output on {classification.provider}; not a diagnosis.")
        self.sig_classified.emit(classification)

    def _show_problem(self, message: str) -> None:
        self.message.setText(message)
        self.applicability.hide()
        if self.session.runner is None:
            self.provider.setText("No model loaded")


def show_applicability(label: QLabel, verdict) -> None:
    """Show an :class:`~medviewer.inference.applicability.Applicability` in words on a label (hidden if None).

    Out of the domain or unusual: the verdict in bold on an amber background;
    within it: one quiet line with the out-of-distribution percentile.
    """
    if verdict is None:
        label.hide()
        return
    warn = (not verdict.applicable) or bool(verdict.unusual)
    label.setProperty("warning", warn)
    label.setStyleSheet("background: #5a4300; color: #ffe7a3; padding: 4px; border-radius: 3px; font-weight: bold;"
                        if warn else "color: #9fb3a0;")
    label.setText(verdict.summary())
    label.setToolTip("\n".join([*verdict.reasons, *verdict.notes]))
    label.show()

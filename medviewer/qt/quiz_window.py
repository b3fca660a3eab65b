"""The unknown-case quiz: history and images first; the answer is kept, then the case revealed.

The window draws what a quiz runner (:mod:`medviewer.services.teaching_quiz`) gives
it: a case's history and display pixels, then, only after the learner's answer is
stored, the diagnosis, findings, discussion, references and the images with their
overlay.  It shows no path, no case identifier and nothing of the patient.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QLineEdit, QMainWindow, QPushButton,
                               QScrollArea, QTextBrowser, QVBoxLayout, QWidget)

from medviewer.qt.blinding import HiddenWindows
from medviewer.qt.library_panel import to_qimage
from medviewer.qt.workers import TaskRunner

IMAGE_SIZE = 560


class QuizWindow(QMainWindow):
    """Run a quiz for one learner.

    Parameters
    ----------
    runner : LibraryQuiz or PackageQuizRunner
        The quiz; its methods are called on worker threads where they read images.

    Signals
    -------
    sig_finished(object)
        The learner answered every case; the :class:`QuizScore`.
    sig_images_shown()
        A case's images are on screen (question or revealed).
    """

    sig_finished = Signal(object)
    sig_images_shown = Signal()

    def __init__(self, runner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.card = None
        self.revealed = None
        self.setWindowTitle("Teaching quiz")
        self.resize(1180, 780)
        self._images = TaskRunner(self, message=lambda m: self.message.setText(
            f"Image failed: {m}"))
        self._hidden = HiddenWindows()
        self._build()
        self.next_case()

    def start(self) -> None:
        """Show the quiz with every other window hidden (the Teaching window shows the
        diagnosis, the viewer the patient's name); they come back when the quiz closes."""
        self._hidden.hide_all_but(self)
        self.show()
        self.raise_()

    def _build(self) -> None:
        central = QWidget(self)
        outer = QHBoxLayout(central)
        scroll = QScrollArea(central)
        scroll.setWidgetResizable(True)
        self.image_host = QWidget(scroll)
        self.image_layout = QVBoxLayout(self.image_host)
        self.image_layout.addStretch(1)
        scroll.setWidget(self.image_host)
        outer.addWidget(scroll, 3)
        side = QVBoxLayout()
        self.progress = QLabel(central)
        self.progress.setObjectName("quizProgress")
        side.addWidget(self.progress)
        self.history = QTextBrowser(central)
        self.history.setObjectName("quizHistory")
        side.addWidget(self.history, 2)
        side.addWidget(QLabel("Your diagnosis:", central))
        self.answer_edit = QLineEdit(central)
        self.answer_edit.setPlaceholderText("Type your diagnosis, then Enter")
        side.addWidget(self.answer_edit)
        self.submit_button = QPushButton("Submit answer", central)
        self.submit_button.setObjectName("primaryButton")
        side.addWidget(self.submit_button)
        self.reveal = QTextBrowser(central)
        self.reveal.setObjectName("quizReveal")
        side.addWidget(self.reveal, 3)
        grades = QHBoxLayout()
        self.right_button = QPushButton("I was right", central)
        self.wrong_button = QPushButton("I was wrong", central)
        grades.addWidget(self.right_button)
        grades.addWidget(self.wrong_button)
        side.addLayout(grades)
        self.next_button = QPushButton("Next case \u2192", central)
        side.addWidget(self.next_button)
        self.message = QLabel(central)
        self.message.setWordWrap(True)
        self.message.setObjectName("panelMessage")
        side.addWidget(self.message)
        outer.addLayout(side, 2)
        self.setCentralWidget(central)
        self.submit_button.clicked.connect(lambda: self.submit())
        self.answer_edit.returnPressed.connect(lambda: self.submit())
        self.right_button.clicked.connect(lambda: self.grade(True))
        self.wrong_button.clicked.connect(lambda: self.grade(False))
        self.next_button.clicked.connect(self.next_case)

    # -- flow -------------------------------------------------------------------------------
    def next_case(self) -> None:
        """Show the next unanswered case: history and images only."""
        self.card = self.runner.next()
        self.revealed = None
        self.reveal.clear()
        self.answer_edit.clear()
        if self.card is None:
            score = self.runner.score()
            self.progress.setText("<b>Quiz finished</b>")
            self.history.setHtml(f"<p>{escape(score.text())}</p>")
            self._set_images([])
            for widget in (self.answer_edit, self.submit_button, self.right_button,
                           self.wrong_button, self.next_button):
                widget.setEnabled(False)
            self.sig_finished.emit(score)
            return
        card = self.card
        self.progress.setText(f"<b>Case {card.number} of {card.total}</b> \u00b7 unknown case")
        self.history.setHtml("<h3>History</h3><p>" +
                             (escape(card.history).replace("\n", "<br>") or "(none given)") +
                             "</p>")
        self.answer_edit.setEnabled(True)
        self.submit_button.setEnabled(True)
        self.right_button.setEnabled(False)
        self.wrong_button.setEnabled(False)
        self.next_button.setEnabled(False)
        self.message.setText("Read the images, then type your diagnosis.")
        self.answer_edit.setFocus()
        self._load_images(revealed=False)

    def submit(self, text: str | None = None) -> bool:
        """Store the answer, then reveal the case; return whether it was stored."""
        from medviewer.errors import MedViewerError

        if self.card is None or self.revealed is not None:
            return False
        text = self.answer_edit.text() if text is None else text
        try:
            self.revealed = self.runner.answer(self.card, text)
        except MedViewerError as exc:
            self.message.setText(str(exc))
            return False
        r = self.revealed
        parts = [("Diagnosis", r.diagnosis), ("Findings", r.findings),
                 ("Discussion", r.discussion), ("References", r.citations)]
        self.reveal.setHtml(
            f"<p>Your answer: <b>{escape(r.answer)}</b>" +
            (" \u2014 it contains the diagnosis's words." if r.matched else "") + "</p>" +
            "".join(f"<h3>{name}</h3><p>{escape(value).replace(chr(10), '<br>')}</p>"
                    for name, value in parts if value.strip()))
        self.answer_edit.setEnabled(False)
        self.submit_button.setEnabled(False)
        self.right_button.setEnabled(True)
        self.wrong_button.setEnabled(True)
        self.next_button.setEnabled(True)
        self.message.setText("Your answer is stored. Grade it, then go on.")
        self._load_images(revealed=True)
        return True

    def grade(self, correct: bool) -> None:
        """Grade the revealed answer."""
        if self.card is None or self.revealed is None:
            return
        self.runner.mark(self.card, correct)
        self.message.setText("Graded " + ("correct" if correct else "wrong") + ".")

    # -- images -----------------------------------------------------------------------------
    def _load_images(self, revealed: bool) -> None:
        runner, card = self.runner, self.card
        self._images.start(lambda state: runner.images(card, revealed),
                           lambda images, card=card: self._on_images(card, images))

    def _on_images(self, card, images) -> None:
        if card is not self.card:
            return
        self._set_images(images)
        withheld = getattr(self.runner, "withheld", 0)
        if withheld:
            self.message.setText(f"{withheld} image(s) withheld: they may show identifying "
                                 "text burned into the pixels.")
        self.sig_images_shown.emit()

    def _set_images(self, images) -> None:
        while self.image_layout.count() > 1:
            item = self.image_layout.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        for n, pixels in enumerate(images):
            label = QLabel(self.image_host)
            label.setAlignment(Qt.AlignCenter)
            pixmap = QPixmap.fromImage(to_qimage(pixels))
            label.setPixmap(pixmap.scaled(IMAGE_SIZE, IMAGE_SIZE, Qt.KeepAspectRatio,
                                          Qt.SmoothTransformation))
            self.image_layout.insertWidget(n, label)

    def shown_images(self) -> int:
        """Return the number of images on screen (for tests)."""
        return self.image_layout.count() - 1

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt naming
        from PySide6.QtCore import QThreadPool

        self._images.cancel()
        QThreadPool.globalInstance().waitForDone(10000)
        super().closeEvent(event)
        if event.isAccepted():
            self._hidden.restore()

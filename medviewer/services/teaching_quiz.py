"""One quiz interface over a library collection or a teaching package (for the quiz window).

Both runners show a case with its history and images only, keep the learner's
answer (in the library, durably; for a package, in memory, the package stays
as it is), then reveal the diagnosis, findings, discussion, references and the
images with their overlay.  Nothing they return carries a path or an identifier
of the patient: images come as display pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class QuizCard:
    """A question as the learner sees it."""

    key: int
    number: int
    total: int
    history: str


@dataclass(frozen=True)
class QuizReveal:
    """The case revealed after the answer."""

    answer: str
    matched: bool
    diagnosis: str
    findings: str
    discussion: str
    citations: str


@dataclass
class QuizScore:
    """A learner's score."""

    learner: str
    questions: int
    answered: int
    matched: int
    correct: int
    graded: int

    def text(self) -> str:
        """Return the score in words."""
        return (f"{self.learner}: {self.answered} of {self.questions} answered, "
                f"{self.correct} correct of {self.graded} graded; {self.matched} matched the "
                "diagnosis's words.")


class LibraryQuiz:
    """A quiz session of a library collection (every answer stored durably at once).

    Methods open the library for the call, so they may run on any one thread at a time.
    """

    def __init__(self, library_path: str | Path, collection: str | int, learner: str) -> None:
        from medviewer.services import teaching

        self.library_path = str(library_path)
        self.session = teaching.start_quiz(self.library_path, collection, learner)
        self.learner = self.session.trainee
        self._question = None
        self.withheld = 0

    def next(self) -> QuizCard | None:
        """Return the next unanswered case, or None when all are answered."""
        from medviewer.services import teaching

        self._question = teaching.next_question(self.library_path, self.session.id)
        q = self._question
        return None if q is None else QuizCard(q.case_id, q.number, q.total, q.history)

    def images(self, card: QuizCard, revealed: bool) -> list[np.ndarray]:
        """Return the case's images as display pixels (with the overlay once revealed).

        An image that may show burned-in identifying text, without blackout
        rectangles, is withheld (counted in :attr:`withheld`).
        """
        from medviewer.services.teaching_images import may_show_identity, render_key_image

        if self._question is None or self._question.case_id != card.key:
            raise ValueError("images of a case that is not the current question")
        keys = [k for k in self._question.key_images if not may_show_identity(k)]
        self.withheld = len(self._question.key_images) - len(keys)
        return [render_key_image(k, with_overlay=revealed, library_path=self.library_path)
                for k in keys]

    def answer(self, card: QuizCard, text: str) -> QuizReveal:
        """Store the answer, then return the case revealed."""
        from medviewer.services import teaching

        f = teaching.answer(self.library_path, self.session.id, card.key, text)
        return QuizReveal(f.answer, f.matched, f.diagnosis, f.findings, f.discussion,
                          f.citations)

    def mark(self, card: QuizCard, correct: bool) -> None:
        """Grade the answer."""
        from medviewer.services import teaching

        teaching.mark_answer(self.library_path, self.session.id, card.key, correct)

    def score(self) -> QuizScore:
        """Return the learner's score."""
        from medviewer.services import teaching

        r = teaching.quiz_results(self.library_path, self.session.id)
        return QuizScore(r.trainee, r.questions, r.answered, r.matched, r.correct, r.graded)


@dataclass
class PackageQuizRunner:
    """A quiz over a teaching package opened read-only (answers kept in memory)."""

    quiz: object  # medviewer.teaching.package_reader.PackageQuiz
    _current: object = field(default=None, repr=False)
    withheld: int = 0  # the package's export withheld flagged images already

    @property
    def learner(self) -> str:
        """Return the learner's name."""
        return self.quiz.learner

    def next(self) -> QuizCard | None:
        """Return the next unanswered case, or None."""
        case = self.quiz.next_case()
        self._current = case
        if case is None:
            return None
        total = len(self.quiz.package.cases)
        number = list(self.quiz.package.cases).index(case) + 1
        return QuizCard(case.number, number, total, case.history)

    def images(self, card: QuizCard, revealed: bool) -> list[np.ndarray]:
        """Return the case's PNGs as pixels (the package's PNGs already carry the overlay)."""
        from PIL import Image

        return [np.asarray(Image.open(i.png).convert("RGB")) for i in self._current.images]

    def answer(self, card: QuizCard, text: str) -> QuizReveal:
        """Keep the answer, then return the case revealed."""
        a = self.quiz.answer(self._current, text)
        c = a.case
        return QuizReveal(a.answer, a.matched, c.diagnosis, c.findings, c.discussion,
                          c.citations)

    def mark(self, card: QuizCard, correct: bool) -> None:
        """Grade the answer."""
        self.quiz.mark(self._current, correct)

    def score(self) -> QuizScore:
        """Return the learner's score."""
        s = self.quiz.score()
        return QuizScore(s["learner"], s["questions"], s["answered"], s["matched"],
                         s["correct"], s["graded"])

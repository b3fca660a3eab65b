"""The teaching file's objects, as plain frozen dataclasses (what the panels display)."""

from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("case", "similar", "dissimilar")
EXEMPLAR_ROLES = ("similar", "dissimilar")
NOTE_FIELDS = ("history", "findings", "diagnosis", "discussion", "citations", "free_text")


@dataclass(frozen=True)
class Collection:
    """A named, ordered set of teaching cases.

    Attributes
    ----------
    id : int
    name, description : str
    cases : int
        Number of teaching cases (exemplars not counted).
    exemplars : int
        Number of similar/dissimilar exemplars.
    created_at, updated_at : str
        ISO 8601 UTC.
    """

    id: int
    name: str
    description: str
    cases: int
    exemplars: int
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class KeyImage:
    """An image of an item to show and export, as it was shown.

    Attributes
    ----------
    id : int
    instance_id : int
        The library instance.
    frame : int
        0-based frame (of a multi-frame image) or 0.
    window_center, window_width : float or None
        The window/level as shown; ``None`` means the image's default window.
    overlay : str
        Name of the overlay shown ("" for none), e.g. ``"saliency:gradcam"``.
    caption : str
    blackout : tuple of tuple of int
        Rectangles ``(x, y, width, height)`` to black out before export.
    location : str
        The image file (for the viewer; never exported).
    """

    id: int
    instance_id: int
    frame: int
    window_center: float | None
    window_width: float | None
    overlay: str
    caption: str
    blackout: tuple[tuple[int, int, int, int], ...]
    location: str


@dataclass(frozen=True)
class CollectionItem:
    """A case in a collection: a teaching case, or an exemplar of one.

    Attributes
    ----------
    id : int
    collection_id, case_id : int
    role : {"case", "similar", "dissimilar"}
    exemplar_of : int or None
        The item (role "case") this exemplar illustrates.
    position : int
    source : str
        Where it came from, e.g. ``"retrieval 3fa2c1 rank 2"`` or ``"manual"``.
    score : float or None
        A retrieval distance, if any.
    key_images : tuple of KeyImage
    modality, location, patient_id : str
        Of the case (for display; never exported).
    labels : tuple of str
    """

    id: int
    collection_id: int
    case_id: int
    role: str
    exemplar_of: int | None
    position: int
    source: str
    score: float | None
    key_images: tuple[KeyImage, ...] = ()
    modality: str = ""
    location: str = ""
    patient_id: str = ""
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class TeachingNote:
    """Free text and the teaching template of a case."""

    case_id: int
    history: str = ""
    findings: str = ""
    diagnosis: str = ""
    discussion: str = ""
    citations: str = ""
    free_text: str = ""
    updated_at: str = ""

    @property
    def is_empty(self) -> bool:
        """Whether no field has text."""
        return not any(getattr(self, f).strip() for f in NOTE_FIELDS)


@dataclass(frozen=True)
class CaseHit:
    """A case found by :func:`medviewer.teaching.search.search_cases`.

    Attributes
    ----------
    case_id : int
    location, modality, study_date, patient_id : str
    labels, tags : tuple of str
    matched : tuple of str
        What matched, e.g. ``("tag", "note")``.
    """

    case_id: int
    location: str
    modality: str
    study_date: str
    patient_id: str
    labels: tuple[str, ...]
    tags: tuple[str, ...]
    matched: tuple[str, ...] = ()


@dataclass(frozen=True)
class QuizQuestion:
    """An unknown case as a trainee sees it: history and images, no diagnosis.

    Attributes
    ----------
    session_id, case_id : int
    number, total : int
        1-based position of the question and the number of questions.
    history : str
    key_images : tuple of KeyImage
    """

    session_id: int
    case_id: int
    number: int
    total: int
    history: str
    key_images: tuple[KeyImage, ...]


@dataclass(frozen=True)
class QuizFeedback:
    """What a trainee sees after answering: the answer and the case revealed.

    Attributes
    ----------
    answer : str
    matched : bool
        Whether the answer contains the diagnosis's words (a hint, not a grade).
    correct : bool or None
        The grade given by :func:`~medviewer.teaching.quiz.mark_answer`, if any.
    diagnosis, findings, discussion, citations : str
    """

    session_id: int
    case_id: int
    answer: str
    matched: bool
    correct: bool | None
    diagnosis: str
    findings: str
    discussion: str
    citations: str


@dataclass(frozen=True)
class QuizSession:
    """A trainee's run through a collection."""

    id: int
    collection_id: int
    trainee: str
    started_at: str
    finished_at: str | None
    questions: int
    answered: int


@dataclass
class QuizResult:
    """The score of a quiz session."""

    session_id: int
    trainee: str
    questions: int
    answered: int
    matched: int
    correct: int
    graded: int
    answers: list[QuizFeedback] = field(default_factory=list)

    def as_dict(self) -> dict:
        """Return the result as JSON-able data."""
        return {"session": self.session_id, "trainee": self.trainee,
                "questions": self.questions, "answered": self.answered,
                "matched": self.matched, "correct": self.correct, "graded": self.graded,
                "answers": [{"case": a.case_id, "answer": a.answer, "matched": a.matched,
                             "correct": a.correct, "diagnosis": a.diagnosis}
                            for a in self.answers]}

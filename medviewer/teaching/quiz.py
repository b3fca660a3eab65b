"""The "unknown case" quiz: history and images first, the diagnosis only after an answer.

A quiz session runs a trainee through the teaching cases of a collection in
order (exemplars are not questions).  The order of calls is enforced, so a
panel cannot show a diagnosis early by mistake: :func:`question` never carries
the diagnosis; :func:`answer` stores the answer durably *before* returning the
revealed case; an answer cannot be changed afterwards; :func:`reveal` refuses
an unanswered case.  :func:`mark_answer` records a grade (by the trainee or a
teacher); ``matched`` is only a hint that the answer contains the diagnosis's
words.

What the quiz shows of a note (history, then diagnosis, findings, discussion,
references) goes through the identity cleaner first
(:func:`medviewer.teaching.identity.case_cleaner`): the author may have written
the patient's name or MRN in it, and a learner must not see them.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from medviewer.teaching.errors import QuizError
from medviewer.teaching.identity import case_cleaner
from medviewer.teaching.models import QuizFeedback, QuizQuestion, QuizResult, QuizSession
from medviewer.teaching import store as tables
from medviewer.teaching.store import TeachingStore

_STOP = frozenset({"the", "and", "with", "without", "of", "in", "on", "for", "left", "right",
                   "bilateral", "a", "an", "to", "or", "no", "not"})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def start_quiz(store: TeachingStore, collection: str | int, trainee: str) -> QuizSession:
    """Start a quiz of a collection's teaching cases for ``trainee``."""
    coll = store.collection(collection)
    trainee = trainee.strip()
    if not trainee:
        raise QuizError("a quiz needs the trainee's name or alias", hint="pass --trainee")
    if not store.items(coll.id, role="case"):
        raise QuizError(f"collection {coll.name!r} has no teaching cases",
                        hint="add cases before starting a quiz")
    with store.durable() as conn:
        session = tables.insert_quiz_session(conn, coll.id, trainee, _now())
    return session_info(store, int(session))


def session_info(store: TeachingStore, session_id: int) -> QuizSession:
    """Return a quiz session with its progress."""
    row = tables.quiz_session_row(store.conn, session_id)
    if row is None:
        raise QuizError(f"no quiz session {session_id}")
    questions = len(_case_ids(store, row[1]))
    answered = len(tables.quiz_answered_cases(store.conn, row[0]))
    return QuizSession(row[0], row[1], row[2], row[3], row[4], questions, int(answered))


def _case_ids(store: TeachingStore, collection_id: int) -> list[int]:
    return [i.case_id for i in store.items(collection_id, role="case")]


def next_question(store: TeachingStore, session_id: int) -> QuizQuestion | None:
    """Return the first unanswered question, or ``None`` when all are answered."""
    session = session_info(store, session_id)
    answered = tables.quiz_answered_cases(store.conn, session.id)
    for case_id in _case_ids(store, session.collection_id):
        if case_id not in answered:
            return question(store, session_id, case_id)
    if session.finished_at is None:
        with store.durable() as conn:
            tables.finish_quiz_session(conn, session.id, _now())
    return None


def question(store: TeachingStore, session_id: int, case_id: int) -> QuizQuestion:
    """Return one case as a question: history and key images, never the diagnosis."""
    session = session_info(store, session_id)
    ids = _case_ids(store, session.collection_id)
    if int(case_id) not in ids:
        raise QuizError(f"case {case_id} is not a question of this quiz")
    item = store.item_for_case(session.collection_id, case_id)
    note = store.note(case_id)
    history = case_cleaner(store, case_id).clean_text(note.history)
    return QuizQuestion(session.id, int(case_id), ids.index(int(case_id)) + 1, len(ids),
                        history, tuple(store.shown_images(item)))


def answer(store: TeachingStore, session_id: int, case_id: int, text: str) -> QuizFeedback:
    """Store the trainee's answer, then reveal the case.

    Raises
    ------
    QuizError
        When the case was answered already in this session (answers are final), or the
        answer is empty.
    """
    question(store, session_id, case_id)  # validates session and case
    text = text.strip()
    if not text:
        raise QuizError("an empty answer", hint="type a diagnosis, or 'pass'")
    if _stored(store, session_id, case_id) is not None:
        raise QuizError(f"case {case_id} was answered already in this quiz",
                        hint="answers are final once the diagnosis is shown")
    note = store.note(case_id)
    matched = _matches(text, note.diagnosis)
    with store.durable() as conn:
        tables.insert_quiz_answer(conn, session_id, case_id, text, matched, _now())
    return reveal(store, session_id, case_id)


def reveal(store: TeachingStore, session_id: int, case_id: int) -> QuizFeedback:
    """Return the answered case with its diagnosis; refuse an unanswered one."""
    stored = _stored(store, session_id, case_id)
    if stored is None:
        raise QuizError(f"case {case_id} has not been answered in this quiz",
                        hint="answer it first: the diagnosis stays hidden until then")
    text, matched, correct = stored
    note = store.note(case_id)
    clean = case_cleaner(store, case_id).clean_text
    return QuizFeedback(int(session_id), int(case_id), text, bool(matched),
                        None if correct is None else bool(correct), clean(note.diagnosis),
                        clean(note.findings), clean(note.discussion), clean(note.citations))


def mark_answer(store: TeachingStore, session_id: int, case_id: int, correct: bool) -> QuizFeedback:
    """Grade an answer (by the trainee after seeing the diagnosis, or by a teacher)."""
    if _stored(store, session_id, case_id) is None:
        raise QuizError(f"case {case_id} has not been answered in this quiz")
    with store.durable() as conn:
        tables.set_quiz_answer_correct(conn, session_id, case_id, correct)
    return reveal(store, session_id, case_id)


def results(store: TeachingStore, session_id: int) -> QuizResult:
    """Return the score of a session (answered cases revealed, in question order)."""
    session = session_info(store, session_id)
    feedback = []
    for case_id in _case_ids(store, session.collection_id):
        if _stored(store, session.id, case_id) is not None:
            feedback.append(reveal(store, session.id, case_id))
    return QuizResult(
        session_id=session.id, trainee=session.trainee, questions=session.questions,
        answered=len(feedback), matched=sum(f.matched for f in feedback),
        correct=sum(bool(f.correct) for f in feedback),
        graded=sum(f.correct is not None for f in feedback), answers=feedback)


def _stored(store: TeachingStore, session_id: int, case_id: int):
    return tables.quiz_answer_row(store.conn, session_id, case_id)


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) >= 3 and w not in _STOP}


def _matches(answer_text: str, diagnosis: str) -> bool:
    """Whether at least half of the diagnosis's significant words are in the answer."""
    wanted = _words(diagnosis)
    if not wanted:
        return False
    return len(wanted & _words(answer_text)) * 2 >= len(wanted)


def scores_by_trainee(store: TeachingStore, collection: str | int) -> list[dict]:
    """Return each trainee's totals over their quiz sessions of a collection, by name."""
    coll = store.collection(collection)
    rows = store.quiz_scores(coll.id)
    return [{"trainee": r[0], "sessions": int(r[1]), "answered": int(r[2]),
             "matched": int(r[3]), "correct": int(r[4]), "graded": int(r[5])} for r in rows]

"""Teaching files for the GUI and the CLI: plain functions over a library.

Every function takes the library as an open :class:`~medviewer.store.Library`
or a path (opened and closed around the call), returns dataclasses from
:mod:`medviewer.teaching.models`, and is safe to call from a worker thread that
owns the library connection.  Long work (:func:`export`) takes a
:class:`~medviewer.tasks.TaskState`.

Typical flows
-------------
Curate: :func:`create_collection`, :func:`add_cases` (or :func:`add_retrieval_result`
straight from a search), :func:`set_key_image` with the viewer's window and
overlay, :func:`save_note`, :func:`tag_cases`.  Find: :func:`search`.  Share:
:func:`export`.  Teach: :func:`start_quiz`, :func:`next_question`, :func:`answer`,
:func:`mark_answer`, :func:`quiz_results`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from medviewer.deid import DeidOptions
from medviewer.store.library import Library
from medviewer.tasks import TaskState
from medviewer.teaching import quiz as _quiz
from medviewer.teaching.models import (
    CaseHit,
    Collection,
    CollectionItem,
    KeyImage,
    QuizFeedback,
    QuizQuestion,
    QuizResult,
    QuizSession,
    TeachingNote,
)
from medviewer.teaching.package import OverlayRenderer, TeachingExport, export_collection
from medviewer.teaching.search import search_cases
from medviewer.teaching.store import TeachingStore

LibraryLike = Library | str | os.PathLike


@contextmanager
def _store(library: LibraryLike) -> Iterator[TeachingStore]:
    if isinstance(library, Library):
        yield TeachingStore(library)
        return
    with Library(library) as opened:
        yield TeachingStore(opened)


# -- collections ------------------------------------------------------------------------------
def create_collection(library: LibraryLike, name: str, description: str = "") -> Collection:
    """Create a teaching collection."""
    with _store(library) as store:
        return store.create_collection(name, description)


def list_collections(library: LibraryLike) -> list[Collection]:
    """Return every collection, by name."""
    with _store(library) as store:
        return store.collections()


def get_collection(library: LibraryLike, collection: str | int) -> Collection:
    """Return a collection by name or id."""
    with _store(library) as store:
        return store.collection(collection)


def rename_collection(library: LibraryLike, collection: str | int, name: str,
                      description: str | None = None) -> Collection:
    """Rename a collection (one transaction); refuse a name that is taken."""
    with _store(library) as store:
        return store.rename_collection(collection, name, description)


def add_current_case(library: LibraryLike, collection: str | int, case_id: int, *,
                     window: tuple[float, float] | None = None, overlay: str = "",
                     caption: str = "", overlay_map=None) -> KeyImage:
    """Add the case on screen with its key image as shown (one transaction).

    Parameters
    ----------
    window : (center, width), optional
        The viewer's window/level.
    overlay : str
        The name of the overlay on screen ("" for none).
    overlay_map : np.ndarray, optional
        The overlay's map on the image's pixel grid, values in [0, 1]; kept beside the
        library so the quiz reveal and the export can draw it.
    """
    from medviewer.services.teaching_images import save_overlay_map

    with _store(library) as store:
        key = store.add_case_with_key_image(collection, case_id, window=window,
                                            overlay=overlay, caption=caption)
        if overlay_map is not None and overlay:
            save_overlay_map(store.library.path, key.id, overlay_map)
    return key


def save_note_and_tags(library: LibraryLike, case_id: int, tags: Iterable[str],
                       **fields: str) -> TeachingNote:
    """Store a note's template fields and the case's tags together (one transaction)."""
    with _store(library) as store:
        return store.save_note_and_tags(case_id, tags, **fields)


def delete_collection(library: LibraryLike, collection: str | int) -> None:
    """Delete a collection (its cases, notes and tags stay in the library)."""
    with _store(library) as store:
        store.delete_collection(collection)


def collection_items(library: LibraryLike, collection: str | int) -> list[CollectionItem]:
    """Return a collection's items: each teaching case followed by its exemplars."""
    with _store(library) as store:
        return store.items(collection)


def add_cases(library: LibraryLike, collection: str | int, case_ids: Iterable[int], *,
              source: str = "manual") -> list[CollectionItem]:
    """Add teaching cases to a collection (cases already in it are left as they are)."""
    with _store(library) as store:
        return store.add_cases(collection, case_ids, source=source)


def add_exemplars(library: LibraryLike, collection: str | int, anchor_case: int,
                  case_ids: Sequence[int], role: str, *, source: str = "manual",
                  scores: Sequence[float | None] | None = None) -> list[CollectionItem]:
    """Attach ``role`` ("similar" or "dissimilar") exemplars to a teaching case.

    The anchor becomes a teaching case of the collection if it is not one yet.
    """
    with _store(library) as store:
        return store.add_exemplars(collection, anchor_case, case_ids, role, source=source,
                                   scores=scores)


def add_retrieval_result(library: LibraryLike, collection: str | int, result: Any, *,
                         similar: int | None = None,
                         dissimilar: int | None = None) -> list[CollectionItem]:
    """Add a retrieval result: its query case as a teaching case, its hits as exemplars.

    Parameters
    ----------
    result : medviewer.retrieval.search.SearchResult
        Anything with ``query_case``, ``nearest`` and ``farthest`` lists of hits that have
        ``case_id``, ``rank`` and ``distance`` (and optionally ``model_sha256``).
    similar, dissimilar : int, optional
        How many nearest / farthest hits to add (all by default; 0 for none).

    Returns
    -------
    list of CollectionItem
        The exemplar items added (similar first).
    """
    from medviewer.teaching.errors import TeachingError

    query = getattr(result, "query_case", None)
    if query is None:
        raise TeachingError("the search was made with an outside image, not a library case",
                            hint="search with a case of the library to add it as a teaching "
                            "case")
    model = str(getattr(result, "model_sha256", "") or "")[:12]
    added: list[CollectionItem] = []
    with _store(library) as store:
        store.add_cases(collection, [int(query)], source=f"retrieval {model}".strip())
        for role, hits, count in (("similar", list(result.nearest), similar),
                                  ("dissimilar", list(result.farthest), dissimilar)):
            hits = [h for h in hits if int(h.case_id) != int(query)][:count]
            if not hits:
                continue
            added += store.add_exemplars(
                collection, int(query), [int(h.case_id) for h in hits], role,
                source=f"retrieval {model} {'nearest' if role == 'similar' else 'farthest'}",
                scores=[float(h.distance) for h in hits])
    return added


def remove_item(library: LibraryLike, item_id: int) -> None:
    """Remove a collection item (a teaching case takes its exemplars with it)."""
    with _store(library) as store:
        store.remove_item(item_id)


def move_item(library: LibraryLike, item_id: int, position: int) -> None:
    """Move an item among its siblings."""
    with _store(library) as store:
        store.move_item(item_id, position)


# -- key images, notes, tags ------------------------------------------------------------------
def set_key_image(library: LibraryLike, item_id: int, *, instance_id: int | None = None,
                  frame: int | None = None, window: tuple[float, float] | None = None,
                  overlay: str = "", caption: str = "",
                  blackout: Sequence[Sequence[int]] = ()) -> KeyImage:
    """Store a key image of an item as shown: window (center, width), overlay, caption."""
    with _store(library) as store:
        return store.set_key_image(item_id, instance_id=instance_id, frame=frame, window=window,
                                   overlay=overlay, caption=caption, blackout=blackout)


def remove_key_image(library: LibraryLike, key_image_id: int) -> None:
    """Remove a key image."""
    with _store(library) as store:
        store.remove_key_image(key_image_id)


def get_note(library: LibraryLike, case_id: int) -> TeachingNote:
    """Return a case's teaching note (empty if none)."""
    with _store(library) as store:
        return store.note(case_id)


def save_note(library: LibraryLike, case_id: int, **fields: str) -> TeachingNote:
    """Update fields of a case's note: history, findings, diagnosis, discussion,
    citations (references), free_text."""
    with _store(library) as store:
        return store.save_note(case_id, **fields)


def tag_cases(library: LibraryLike, case_ids: Iterable[int], tags: Iterable[str]) -> None:
    """Add tags to cases."""
    with _store(library) as store:
        store.tag_cases(case_ids, tags)


def untag_cases(library: LibraryLike, case_ids: Iterable[int], tags: Iterable[str]) -> None:
    """Remove tags from cases."""
    with _store(library) as store:
        store.untag_cases(case_ids, tags)


def case_tags(library: LibraryLike, case_id: int) -> list[str]:
    """Return a case's tags."""
    with _store(library) as store:
        return store.tags(case_id)


def all_tags(library: LibraryLike) -> list[tuple[str, int]]:
    """Return every tag with its number of cases (for a tag filter)."""
    with _store(library) as store:
        return store.all_tags()


def search(library: LibraryLike, **criteria) -> list[CaseHit]:
    """Find cases: ``label``, ``tag``, ``text`` (notes), ``modality``, ``date_from``,
    ``date_to`` (``YYYYMMDD``), ``collection`` (id), ``limit``."""
    with _store(library) as store:
        return search_cases(store.library, **criteria)


# -- export -----------------------------------------------------------------------------------
def export(library: LibraryLike, collection: str | int, out_dir: str | os.PathLike, *,
           options: DeidOptions | None = None, secret: bytes | None = None,
           include_exemplars: bool = True, burned_in: str = "skip",
           overlay: OverlayRenderer | None = None,
           state: TaskState | None = None) -> TeachingExport:
    """Export a collection as a de-identified teaching package (call from a worker).

    Overlays stored with key images (:func:`add_current_case`) are drawn unless another
    ``overlay`` renderer is given.
    """
    from medviewer.services.teaching_images import library_overlay_renderer

    with _store(library) as store:
        overlay = overlay or library_overlay_renderer(store.library.path)
        return export_collection(store, collection, out_dir, options=options, secret=secret,
                                 include_exemplars=include_exemplars, burned_in=burned_in,
                                 overlay=overlay, state=state)


# -- quiz ---------------------------------------------------------------------------------------
def start_quiz(library: LibraryLike, collection: str | int, trainee: str) -> QuizSession:
    """Start an "unknown case" quiz of a collection for a trainee."""
    with _store(library) as store:
        return _quiz.start_quiz(store, collection, trainee)


def quiz_session(library: LibraryLike, session_id: int) -> QuizSession:
    """Return a quiz session and its progress."""
    with _store(library) as store:
        return _quiz.session_info(store, session_id)


def next_question(library: LibraryLike, session_id: int) -> QuizQuestion | None:
    """Return the next unanswered question (history and images only), or None when done."""
    with _store(library) as store:
        return _quiz.next_question(store, session_id)


def answer(library: LibraryLike, session_id: int, case_id: int, text: str) -> QuizFeedback:
    """Store an answer (final) and return the case with its diagnosis revealed."""
    with _store(library) as store:
        return _quiz.answer(store, session_id, case_id, text)


def reveal(library: LibraryLike, session_id: int, case_id: int) -> QuizFeedback:
    """Return an answered case with its diagnosis (refuses an unanswered one)."""
    with _store(library) as store:
        return _quiz.reveal(store, session_id, case_id)


def mark_answer(library: LibraryLike, session_id: int, case_id: int,
                correct: bool) -> QuizFeedback:
    """Grade an answer as correct or not."""
    with _store(library) as store:
        return _quiz.mark_answer(store, session_id, case_id, correct)


def quiz_results(library: LibraryLike, session_id: int) -> QuizResult:
    """Return the score of a quiz session."""
    with _store(library) as store:
        return _quiz.results(store, session_id)


def learner_scores(library: LibraryLike, collection: str | int) -> list[dict]:
    """Return each learner's totals (sessions, answered, matched, correct, graded)."""
    with _store(library) as store:
        return _quiz.scores_by_trainee(store, collection)

"""The app's state without Qt: open library, loaded model, image on screen, derived results.

One :class:`Session` per main window (napari's ``ViewerModel``, Slicer's
*Logic*).  It owns

- the open **library** (its path; connections are opened per use, per thread),
- the loaded **model** (a ``ModelRunner``) and its **searcher** (opened lazily),
- the **images on screen**: the plane each viewport ("slot") shows, as a
  :class:`ShownImage` (library, instance, frame, and the library case when that plane is
  one), and which slot is active (the one classify and search act on),
- the last **classification**, **search** and **overlay** results, each carrying the
  :class:`ShownImage` and the model (bundle sha256) it was computed for.

A result lives while its image is on screen: showing another image in its place
(another series, another slice, another patient), opening another library or loading
another model clears it, and a result that arrives late for an image no longer on screen
is dropped.  Nothing of one patient can stay beside another's image.  (Opening a search
hit *beside* the query keeps the query's results: the query is still on screen.)

How to use the Session
----------------------
Events (plain Python, :class:`~medviewer.events.EventEmitter`; callbacks get keyword
arguments and run on the thread that changes the session, the GUI thread in the app):

========================  =======================================================
``library_opened(path)``  a library was opened (``path`` None: closed)
``model_loaded(runner)``  a model was loaded (searcher and results are gone)
``case_shown(image)``     the active slot shows another plane (:class:`ShownImage`/None)
``classified(result)``    a :class:`Classified` for the image on screen
``results_found(result)`` a :class:`SearchFound` for the image on screen
``overlay_ready(result)`` an :class:`OverlayReady` for the image on screen
``results_cleared()``     results were dropped: redraw from the session (None: empty)
``index_checked(status)`` the index status of (library, model) was read
========================  =======================================================

A panel subscribes in its constructor and only draws::

    class ModelPanel(QWidget):
        def __init__(self, session, parent=None):
            ...
            session.connect("classified", self._draw)
            session.connect("results_cleared",
                            lambda: self.session.classification or self._clear())

        def classify_current(self):
            job = self.session.classify_job()        # captures image + model now
            if job is not None:
                self._worker.start(job, self.session.accept)   # accept drops stale results

A job (``classify_job``, ``search_job``) is a plain function ``job(state)`` run on a
worker; its result carries the image it was computed for, and :meth:`Session.accept`
(GUI thread) keeps it only if that image and model are still current.  A result made
elsewhere (a map by the overlay panel) is wrapped the same way: take
``image = session.image`` *before* starting the work, and hand
``OverlayReady(image, session.model_sha256, ...)`` to :meth:`Session.accept`.

Read state from the session, never from another panel: ``session.library_path``,
``session.runner``, ``session.image`` (the active slot's plane; ``.case_id`` may be None:
not every plane is a library case), ``session.shown`` (slot -> plane),
``session.classification``, ``session.search``, ``session.overlay``,
``session.display_image()`` (the pixels the models see: the default window, not the
reader's).  The window reports what is on screen with ``show_plane(slot, ...)``,
``show_nothing(slot)`` and ``set_active(slot)``; a script or test without viewports uses
slot 0 (the default).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medviewer.events import EventEmitter
from medviewer.services.image_cache import ImageCache
from medviewer.store.library import Library
from medviewer.tasks import TaskState

log = logging.getLogger(__name__)

EVENTS = ("library_opened", "model_loaded", "case_shown", "classified", "results_found",
          "overlay_ready", "results_cleared", "index_checked")


@dataclass(frozen=True)
class ShownImage:
    """One plane on screen: what classification, search and maps are computed for.

    Attributes
    ----------
    library : str
        The library the plane belongs to (resolved path).
    instance_id, frame : int
        The instance and frame on screen.
    location : str
        The instance's display location (file path, or ``zip::member``).
    series_id : int
    case_id : int or None
        The library case of this plane; None when the plane is not a case (most CT slices).
    """

    library: str
    instance_id: int
    frame: int
    location: str
    series_id: int
    case_id: int | None = None

    @property
    def key(self) -> tuple[str, int, int]:
        """Return what identifies the plane (library, instance, frame)."""
        return (self.library, self.instance_id, self.frame)


@dataclass(frozen=True)
class Classified:
    """A classification of one shown image by one model."""

    image: ShownImage
    model_sha256: str
    classification: Any  # services.models.Classification
    applicability: Any = None  # inference.applicability.Applicability of the model to this image


@dataclass(frozen=True)
class SearchFound:
    """Similar cases of one shown image by one model, with the hits' thumbnails."""

    image: ShownImage
    model_sha256: str
    result: Any  # retrieval.search.SearchResult
    thumbnails: dict = field(default_factory=dict, compare=False)
    applicability: Any = None  # of the model to the query
    notes: tuple = ()  # the modality-family filter and a weak best match, in words
    pool: tuple = ()  # more nearest hits than shown, for relevance-feedback re-ranking
    vectors: dict = field(default_factory=dict, compare=False)  # case id -> embedding (query: "query")


@dataclass(frozen=True)
class OverlayReady:
    """A map (an Explanation or a PairExplanation) of one shown image by one model."""

    image: ShownImage
    model_sha256: str
    explanation: Any
    hit: Any = None  # the search hit of a "why similar" map
    extra: dict = field(default_factory=dict, compare=False)  # pixels the map was made on


Result = Classified | SearchFound | OverlayReady


def applicability_of(runner, image: ShownImage, pixels) -> Any:
    """Return whether the model applies to the shown image (header + OOD percentile), or None.

    Worker thread.  None when the runner is not a bundle's (e.g. a test double) or the
    file cannot be read again (the panel then shows the output without the verdict).
    """
    if not hasattr(runner, "bundle"):
        return None
    from medviewer.errors import MedViewerError
    from medviewer.services.applicability import image_applicability

    try:
        from medviewer.dicom.sources import FileRef

        return image_applicability(runner, FileRef.from_display(image.location), pixels)
    except (MedViewerError, OSError):
        return None


class Session(EventEmitter):
    """The open library, the loaded model, the image on screen and what was derived from it.

    Parameters
    ----------
    cache : ImageCache, optional
        Decoded images shared with the viewports (a new one if None).

    Notes
    -----
    Change the session on one thread (the GUI thread in the app); jobs returned by
    :meth:`classify_job` and :meth:`search_job` run on any thread and touch no
    session state except the searcher, which is opened once under the GIL.
    """

    def __init__(self, cache: ImageCache | None = None) -> None:
        super().__init__()
        self.cache = cache if cache is not None else ImageCache()
        self.library_path: str | None = None
        self.runner = None  # inference.ModelRunner
        # ((library, id(runner)), retrieval.search.Searcher), opened on first search
        self.searcher: tuple | None = None
        self.index_status = None  # services.retrieval.IndexStatus of (library, model)
        self.shown: dict[int, ShownImage] = {}  # slot (viewport) -> plane on screen
        self.active_slot = 0
        self.classification: Classified | None = None
        self.search: SearchFound | None = None
        self.overlay: OverlayReady | None = None
        self._case_maps: dict[int, dict[tuple[int, int], int]] = {}

    # -- library --------------------------------------------------------------------------
    def open_library(self, path: str | Path) -> str:
        """Open (creating or migrating) a library; forget everything of the one before.

        Raises the library's :class:`~medviewer.errors.MedViewerError` when ``path`` is
        not a library; the session is then unchanged.
        """
        path = str(Path(path).expanduser().resolve())
        with Library(path):
            pass  # creates/migrates, raising a clear error if it is not a library
        self._drop_library_state()
        self.library_path = path
        self.emit("case_shown", image=None)
        log.info("library opened: %s", path)
        self.emit("library_opened", path=path)
        return path

    def close_library(self) -> None:
        """Close the library: no image, no results, no searcher."""
        self._drop_library_state()
        self.library_path = None
        self.emit("case_shown", image=None)
        self.emit("library_opened", path=None)

    def _drop_library_state(self) -> None:
        self.cache.clear()
        self.searcher = None
        self.index_status = None
        self._case_maps.clear()
        self.shown.clear()
        self.clear_results()

    @contextmanager
    def library(self) -> Iterator[Library]:
        """Yield a connection to the open library (one per use; any thread)."""
        if not self.library_path:
            from medviewer.errors import MedViewerError

            raise MedViewerError("No library is open.", hint="Open or import a library first.")
        with Library(self.library_path) as library:
            yield library

    def library_changed(self) -> None:
        """Note that cases were added or removed (import, retrieve): re-read case maps."""
        self._case_maps.clear()
        # A plane that just became a case keeps its results (none can exist for it yet).
        self.shown = {slot: self._resolve(i.instance_id, i.frame, i.location, i.series_id)
                      for slot, i in self.shown.items()}

    # -- model ----------------------------------------------------------------------------
    def set_model(self, runner) -> None:
        """Use a loaded ModelRunner; results and the searcher of the old model are gone."""
        self.runner = runner
        self.searcher = None
        self.index_status = None
        self.clear_results()
        self.emit("model_loaded", runner=runner)

    @property
    def model_sha256(self) -> str:
        """Return the loaded bundle's sha256 ("" when none is loaded)."""
        return self.runner.bundle.sha256 if self.runner is not None else ""

    def set_index_status(self, status) -> None:
        """Record the index status of (library, model) read by a worker."""
        self.index_status = status
        self.searcher = None  # a rebuilt index is read again on the next search
        self.emit("index_checked", status=status)

    # -- images on screen -----------------------------------------------------------------
    @property
    def image(self) -> ShownImage | None:
        """Return the plane of the active slot (what classify and search act on)."""
        return self.shown.get(self.active_slot)

    def show_plane(self, instance_id: int, frame: int, location: str, series_id: int,
                   slot: int = 0) -> None:
        """Say which plane a slot shows (GUI thread; cheap, called on every scroll step)."""
        if not self.library_path:
            return
        old = self.shown.get(slot)
        if old is not None and old.key == (self.library_path, instance_id, frame):
            return
        self.shown[slot] = self._resolve(instance_id, frame, location, series_id)
        self._after_change(old if slot == self.active_slot else self.image)

    def show_nothing(self, slot: int | None = None) -> None:
        """Say that a slot (every slot if None) shows nothing."""
        before = self.image
        if slot is None:
            self.shown.clear()
        else:
            self.shown.pop(slot, None)
        self._after_change(before)

    def set_active(self, slot: int) -> None:
        """Make a slot the one classify and search act on."""
        before = self.image
        self.active_slot = slot
        self._after_change(before)

    def _after_change(self, before: ShownImage | None) -> None:
        self._drop_results_off_screen()
        if self.image != before:
            self.emit("case_shown", image=self.image)

    def _drop_results_off_screen(self) -> None:
        on_screen = set(self.shown.values())
        dropped = False
        for name in ("classification", "search", "overlay"):
            result = getattr(self, name)
            if result is not None and result.image not in on_screen:
                setattr(self, name, None)
                dropped = True
        if dropped:
            self.emit("results_cleared")

    def _resolve(self, instance_id: int, frame: int, location: str, series_id: int) -> ShownImage:
        cases = self._case_maps.get(series_id)
        if cases is None:
            with Library(self.library_path) as library:
                cases = library.case_map(series_id)
            self._case_maps[series_id] = cases
        return ShownImage(self.library_path, instance_id, frame, location, series_id,
                          cases.get((instance_id, frame)))

    def display_image(self, image: ShownImage | None = None) -> np.ndarray | None:
        """Return the pixels the models see for a shown image (default window), if decoded."""
        from medviewer.display.render import render_frame

        image = image or self.image
        decoded = self.cache.peek(image.location) if image is not None else None
        if decoded is None:
            return None
        return render_frame(decoded, image.frame)

    # -- results --------------------------------------------------------------------------
    def clear_results(self) -> None:
        """Forget the classification, search and overlay results."""
        had = any(r is not None for r in (self.classification, self.search, self.overlay))
        self.classification = self.search = self.overlay = None
        if had:
            self.emit("results_cleared")

    def is_current(self, result: Result) -> bool:
        """Whether a result belongs to an image on screen and to the loaded model."""
        return (result.image in set(self.shown.values())
                and result.model_sha256 == self.model_sha256)

    def accept(self, result: Result | None) -> bool:
        """Keep a result and announce it, unless its image or model is no longer current.

        Returns whether it was kept.  A stale result (the user opened another case while
        it was computed) is dropped silently: it belongs to nothing on screen.
        """
        if result is None:
            return False
        if not self.is_current(result):
            log.info("dropped a %s computed for another image or model", type(result).__name__)
            return False
        if isinstance(result, Classified):
            self.classification = result
            self.emit("classified", result=result)
        elif isinstance(result, SearchFound):
            self.search = result
            self.emit("results_found", result=result)
        elif isinstance(result, OverlayReady):
            self.overlay = result
            self.emit("overlay_ready", result=result)
        else:
            raise TypeError(f"not a session result: {type(result).__name__}")
        return True

    # -- jobs (run on a worker) -------------------------------------------------------------
    def classify_job(self, *, store: bool = True) -> Callable[[TaskState], Classified] | None:
        """Return a job classifying the image on screen, or None (no model or no pixels yet).

        The job stores the prediction as ``model`` labels of the case (with the bundle's
        sha256) when the image is a library case and ``store`` is true.
        """
        from medviewer.services.models import classify_display_image, store_predictions

        image, runner = self.image, self.runner
        pixels = self.display_image(image)
        if runner is None or pixels is None:
            return None
        sha = self.model_sha256

        def job(state: TaskState) -> Classified:
            result = classify_display_image(runner, pixels)
            if store and image.case_id is not None:
                store_predictions(image.library, image.case_id, result)
            return Classified(image, sha, result, applicability_of(runner, image, pixels))

        return job

    def search_job(self, *, k: int = 5, farthest: int = 0, filters=None, region=None,
                   thumbnail: Callable | None = None,
                   any_modality: bool = False) -> Callable[[TaskState], SearchFound] | None:
        """Return a job searching the library with the case on screen, or None (not a case).

        ``thumbnail(location, frame)`` (optional, worker thread) renders each hit's picture.
        Without a modality in ``filters`` the search keeps to the query's modality family
        (CR, DX and PNG radiographs together; CT; MR ...) unless ``any_modality``.
        """
        image, runner = self.image, self.runner
        if runner is None or image is None or image.case_id is None:
            return None
        sha = self.model_sha256
        pixels = self.display_image(image)

        def job(state: TaskState) -> SearchFound:
            from medviewer.retrieval.filters import SearchFilter
            from medviewer.services.applicability import best_match_note, family_filter

            verdict = applicability_of(runner, image, pixels)
            notes = []
            flt = filters
            if verdict is not None and verdict.facts is not None and not any_modality:
                flt, family = family_filter(filters or SearchFilter(), verdict.facts)
                notes += [f"Showing {family}."] if family else []
            searcher = self.open_searcher(image.library, runner)
            result = searcher.search_case(image.case_id, k=k, farthest=farthest, filters=flt,
                                          region=region, state=state)
            weak = best_match_note(runner.bundle, result) if hasattr(runner, "bundle") else None
            notes += [weak[0].upper() + weak[1:] + "."] if weak else []
            pool, vectors = (), {}
            query = searcher.index.vector_of(image.case_id)
            if region is None and query is not None:  # re-ranking moves the stored query vector
                pool = tuple(searcher.search_case(image.case_id, k=max(4 * k, 20), filters=flt,
                                                  state=state).nearest)
                vectors = {h.case_id: searcher.index.vector_of(h.case_id) for h in pool}
                vectors["query"] = query
            thumbs = ({(h.location, h.frame): thumbnail(h.location, h.frame)
                       for h in (*result.nearest, *result.farthest, *pool)} if thumbnail else {})
            return SearchFound(image, sha, result, thumbs, verdict, tuple(notes), pool, vectors)

        return job

    def open_searcher(self, library_path: str | None = None, runner=None):
        """Return the searcher of (library, model), opening it on first use (any thread).

        A job passes the library and model it captured: a searcher opened for them is kept
        only while they are still the session's, so a model switched meanwhile never
        inherits the old model's index.
        """
        from medviewer.services.retrieval import open_searcher

        library_path = library_path or self.library_path
        runner = runner if runner is not None else self.runner
        cached = self.searcher
        if cached is not None and cached[0] == (library_path, id(runner)):
            return cached[1]
        with Library(library_path) as library:
            searcher = open_searcher(library, runner, allow_stale=True)
        if (library_path, runner) == (self.library_path, self.runner):
            self.searcher = ((library_path, id(runner)), searcher)
        return searcher

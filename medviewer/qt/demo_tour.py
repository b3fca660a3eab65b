"""The demo's first minute: one case opened, classified, searched and explained by itself.

After "Open the demo library" the window walks through what the tool is for, with
the real panels doing the work: the case with the most findings opens, the demo
model classifies it, its similar cases are listed and an attention overlay is
drawn.  The user then sees a finished example instead of empty panels.

Each step waits on the session's events (``model_loaded``, ``classified``,
``index_checked``, ``results_found``, ``overlay_ready``; the viewport's
``sig_plane_shown`` for pixels on screen) and checks its condition when one
arrives, and once at its start, so an event that fired before the step began (the
model may already be loaded) is never missed.  No timer polls the panels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter

from PySide6.QtCore import QObject, QTimer, Signal

log = logging.getLogger(__name__)

STEP_TIMEOUT_S = 240.0
SESSION_EVENTS = ("case_shown", "model_loaded", "classified", "index_checked", "results_found",
                  "overlay_ready", "results_cleared")


@dataclass
class Step:
    """One step: an action started once, then a condition checked on every event."""

    name: str
    start: Callable[[], None]
    done: Callable[[], bool]
    seconds: float | None = None


@dataclass
class TourResult:
    """What the tour did and how long each step took."""

    case_id: int | None
    steps: dict[str, float] = field(default_factory=dict)
    total_s: float = 0.0
    probabilities: dict[str, float] = field(default_factory=dict)
    similar: int = 0
    provider: str = ""
    overlay: bool = False


class DemoTour(QObject):
    """Drive the main window through classify, search and explain on one demo case.

    Parameters
    ----------
    window : MainWindow
        A window with the demo library open.

    Signals
    -------
    sig_step(str)
        The step now running, in words.
    sig_finished(TourResult)
    sig_failed(str)
        A step did not finish within :data:`STEP_TIMEOUT_S`; says which.
    """

    sig_step = Signal(str)
    sig_finished = Signal(object)
    sig_failed = Signal(str)

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.session = window.session
        self.result = TourResult(case_id=None)
        self._steps: list[Step] = []
        self._index = -1
        self._step_started = 0.0
        self._began = 0.0
        self._indexing = False
        self._advancing = False
        self._timeout = QTimer(self, singleShot=True, interval=int(STEP_TIMEOUT_S * 1000))
        self._timeout.timeout.connect(self._on_timeout)
        self._listeners = [(name, lambda name=name, **_: self._check()) for name in SESSION_EVENTS]
        for viewport in window.viewports:
            viewport.sig_plane_shown.connect(self._on_plane_shown)

    # -- steps ----------------------------------------------------------------------------
    def start(self) -> None:
        """Begin with the showcase case of the open library."""
        from medviewer.services.demo import showcase_case

        w, session = self.window, self.session
        with session.library() as library:
            self.result.case_id = showcase_case(library)
        if self.result.case_id is None:
            self.sig_failed.emit("the demo library has no radiograph to show")
            return
        self._steps = [
            Step("open the case", lambda: w.open_case(self.result.case_id), self._case_on_screen),
            Step("load the model", self._load_model, lambda: session.runner is not None),
            Step("classify", self._classify, lambda: session.classification is not None),
            Step("index the library", lambda: None, self._index_ready),
            Step("search similar cases", self._search, lambda: session.search is not None),
            Step("draw the attention overlay", self._explain, lambda: session.overlay is not None),
        ]
        for name, callback in self._listeners:
            session.connect(name, callback)
        self._began = perf_counter()
        self._index = -1
        self._next()

    def _case_on_screen(self) -> bool:
        image = self.session.image
        return (image is not None and image.case_id == self.result.case_id
                and self.session.display_image(image) is not None)

    def _load_model(self) -> None:
        panel = self.window.model_panel
        if self.session.runner is None and not panel.loading:
            panel.load_default()

    def _classify(self) -> None:
        self.window.model_dock.raise_()
        self.window.model_panel.classify_current()

    def _index_ready(self) -> bool:
        # A demo built before the model was found has no index: build it once.
        status = self.session.index_status
        if status is None:
            return False
        if status.state == "ready":
            return True
        panel = self.window.similar_panel
        if panel.index_button.isEnabled() and not self._indexing:
            self._indexing = True
            panel.build_index()
        return False

    def _search(self) -> None:
        self.window.similar_dock.raise_()
        self.window.similar_panel.search_current()

    def _explain(self) -> None:
        panel = self.window.overlay_panel
        index = panel.method.findData("rollout")
        if index >= 0:
            panel.method.setCurrentIndex(index)
        panel.show_box.setChecked(True)
        panel.compute()

    # -- driving ----------------------------------------------------------------------------
    def _next(self) -> None:
        self._index += 1
        if self._index >= len(self._steps):
            self._finish()
            return
        step = self._steps[self._index]
        self._step_started = perf_counter()
        self.sig_step.emit(step.name)
        log.info("demo tour: %s", step.name)
        self._timeout.start()
        step.start()
        self._check()

    def _on_plane_shown(self, _index: int) -> None:
        self._check()

    def _check(self) -> None:
        if not 0 <= self._index < len(self._steps):
            return
        step = self._steps[self._index]
        if not self._advancing and step.done():
            self.result.steps[step.name] = perf_counter() - self._step_started
            # The next step starts once this event's handlers have all run.
            self._advancing = True
            QTimer.singleShot(0, self._advance)

    def _advance(self) -> None:
        self._advancing = False
        self._next()

    def _on_timeout(self) -> None:
        if 0 <= self._index < len(self._steps):
            step = self._steps[self._index]
            self._stop()
            self.sig_failed.emit(f"'{step.name}' did not finish in {STEP_TIMEOUT_S:.0f} s")

    def _stop(self) -> None:
        self._timeout.stop()
        for name, callback in self._listeners:
            self.session.disconnect(name, callback)

    def _finish(self) -> None:
        self._stop()
        session = self.session
        classified = session.classification.classification if session.classification else None
        results = session.search.result if session.search else None
        self.result.total_s = perf_counter() - self._began
        self.result.probabilities = dict(getattr(classified, "probabilities", {}))
        self.result.provider = getattr(classified, "provider", "")
        self.result.similar = len(getattr(results, "nearest", []) or [])
        self.result.overlay = any(layer.displayed_map() is not None
                                  for layer in self.window.overlay_panel.layers())
        self.sig_finished.emit(self.result)

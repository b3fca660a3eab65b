"""The demo's first minute: one case opened, classified, searched and explained by itself.

After "Open the demo library" the window walks through what the tool is for, with
the real panels doing the work: the case with the most findings opens, the demo
model classifies it, its similar cases are listed and an attention overlay is
drawn.  The user then sees a finished example instead of empty panels.

Each step waits for a condition checked on a short timer rather than for one
signal, so a signal that fired before the step began (the model may already be
loaded) is never missed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter

from PySide6.QtCore import QObject, QTimer, Signal

log = logging.getLogger(__name__)

STEP_TIMEOUT_S = 240.0


@dataclass
class Step:
    """One step: an action started once, then a condition polled until it holds."""

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
        self.result = TourResult(case_id=None)
        self._flags: dict[str, object] = {}
        self._steps: list[Step] = []
        self._index = -1
        self._step_started = 0.0
        self._began = 0.0
        self._timer = QTimer(self, interval=50)
        self._timer.timeout.connect(self._poll)
        w = window
        w.model_panel.sig_classified.connect(lambda r: self._flags.__setitem__("classified", r))
        w.similar_panel.sig_results.connect(lambda r: self._flags.__setitem__("results", r))
        w.overlay_panel.sig_map_ready.connect(lambda m: self._flags.__setitem__("map", m))

    # -- steps ----------------------------------------------------------------------------
    def start(self) -> None:
        """Begin with the showcase case of the open library."""
        from medviewer.services.demo import showcase_case
        from medviewer.store import Library

        w = self.window
        with Library(w.library_path) as library:
            self.result.case_id = showcase_case(library)
        if self.result.case_id is None:
            self.sig_failed.emit("the demo library has no radiograph to show")
            return
        self._steps = [
            Step("open the case", lambda: w.open_case(self.result.case_id), self._case_on_screen),
            Step("load the model", self._load_model, lambda: w.model_panel.runner is not None),
            Step("classify", self._classify, lambda: "classified" in self._flags),
            Step("index the library", lambda: None, self._index_ready),
            Step("search similar cases", self._search, lambda: "results" in self._flags),
            Step("draw the attention overlay", self._explain, lambda: "map" in self._flags),
        ]
        self._began = perf_counter()
        self._index = -1
        self._next()
        self._timer.start()

    def _case_on_screen(self) -> bool:
        w = self.window
        return (w.current_display_image() is not None
                and w.current_case_id() == self.result.case_id)

    def _load_model(self) -> None:
        panel = self.window.model_panel
        if panel.runner is None and not panel.loading:
            panel.load_default()

    def _classify(self) -> None:
        self._flags.pop("classified", None)
        self.window.model_dock.raise_()
        self.window.model_panel.classify_current()

    def _index_ready(self) -> bool:
        # A demo built before the model was found has no index: build it once.
        panel = self.window.similar_panel
        if panel.index_state == "ready":
            return True
        if panel.index_state and panel.index_button.isEnabled() and not self._flags.get("indexing"):
            self._flags["indexing"] = True
            panel.build_index()
        return False

    def _search(self) -> None:
        self._flags.pop("results", None)
        self.window.similar_dock.raise_()
        self.window.similar_panel.search_current()

    def _explain(self) -> None:
        self._flags.pop("map", None)
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
        step.start()

    def _poll(self) -> None:
        if not 0 <= self._index < len(self._steps):
            return
        step = self._steps[self._index]
        if step.done():
            self.result.steps[step.name] = perf_counter() - self._step_started
            self._next()
        elif perf_counter() - self._step_started > STEP_TIMEOUT_S:
            self._timer.stop()
            self.sig_failed.emit(f"'{step.name}' did not finish in {STEP_TIMEOUT_S:.0f} s")

    def _finish(self) -> None:
        self._timer.stop()
        w = self.window
        classified = self._flags.get("classified")
        results = self._flags.get("results")
        self.result.total_s = perf_counter() - self._began
        self.result.probabilities = dict(getattr(classified, "probabilities", {}))
        self.result.provider = getattr(classified, "provider", "")
        self.result.similar = len(getattr(results, "nearest", []) or [])
        self.result.overlay = any(layer.displayed_map() is not None
                                  for layer in w.overlay_panel.layers())
        self.sig_finished.emit(self.result)

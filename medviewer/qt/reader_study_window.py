"""The reading screen of a reader study: one query, ten blinded candidates, exactly five picks.

Nothing on this screen reveals distances, ranks, labels, model names or case
identifiers.  While a reader reads, nothing else of the application is visible:
:meth:`ReaderStudyWindow.start_reading` hides every other window (the main
window with its library, model and Similar cases panels included), goes full
screen on the chosen screen, and the windows come back when the reader pauses
or finishes.  A pick shows as picked only after the session has written it
durably (the session method returns after the commit).

The reader first sees who is reading and a short instruction page, then a
practice query (picks kept in memory only, never scored), then the study.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QApplication, QFrame, QGridLayout, QHBoxLayout, QInputDialog,
                               QLabel, QMainWindow, QPushButton, QStackedWidget, QVBoxLayout,
                               QWidget)

from medviewer.display.linked import WindowAdjustment
from medviewer.display.render import initial_window
from medviewer.display.windowing import Window, linear_levels
from medviewer.qt.blinding import HiddenWindows
from medviewer.qt.image_view import RadiologyViewBox
from medviewer.qt.viewport_widget import GREY_LUT, INVERTED_LUT
from medviewer.qt.workers import TaskRunner
from medviewer.study.practice import PRACTICE_QUERY_ID, practice_view
from medviewer.study.session import QueryView, ReadingError, ReadingSession

KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"]

INSTRUCTIONS = (
    "<h2>How to read</h2>"
    "<p>Each screen shows a <b>query</b> image on the left and <b>ten candidate</b> images on "
    "the right.</p>"
    "<p>Pick the <b>5 candidates most similar</b> to the query: click a candidate, or press "
    "its key (1\u20139 and 0). Click again to unpick. <b>Double-click</b> a candidate to see it "
    "large beside the query; that does not pick it.</p>"
    "<p>Drag with the left mouse button on the query to change window/level; every image "
    "follows from its own default. Press <b>R</b> to reset.</p>"
    "<p>With exactly 5 picked, press <b>Enter</b> or <b>Next</b>. Every pick is saved at "
    "once; <b>Pause</b> closes the screen and you resume where you stopped.</p>"
    "<p>The first query is a <b>practice</b> query: it is not scored.</p>")


class ImagePane(QWidget):
    """A window/level-able image with a caption; used for the query, the enlarged view and tiles.

    In a non-interactive pane (a candidate tile) a single click is reported only once
    the double-click interval has passed without a second click, so a double-click
    (enlarge) never also counts as a click (pick).
    """

    sig_clicked = Signal()
    sig_double_clicked = Signal()
    sig_window_drag = Signal(float, float)

    def __init__(self, caption: str, interactive: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        self.caption = QLabel(caption, self)
        self.caption.setObjectName("paneCaption")
        layout.addWidget(self.caption)
        self.view = pg.GraphicsView(self)
        self.view.setBackground("k")
        self.box = RadiologyViewBox()
        self.view.setCentralItem(self.box)
        self.item = pg.ImageItem()
        self.box.addItem(self.item)
        self.box.setMouseEnabled(interactive, interactive)
        layout.addWidget(self.view, 1)
        self._click_timer = QTimer(self, singleShot=True)
        self._click_timer.setInterval(QApplication.doubleClickInterval())
        self._click_timer.timeout.connect(self.sig_clicked)
        if interactive:
            self.box.sig_window_drag.connect(self.sig_window_drag)
        else:
            self.view.mousePressEvent = self._press
            self.view.mouseDoubleClickEvent = self._double_click
            self.view.mouseMoveEvent = lambda e: None
            self.view.mouseReleaseEvent = lambda e: None
            self.view.wheelEvent = lambda e: None
        self.image = None
        self.base_window: Window | None = None

    def _press(self, event) -> None:
        if event.button() == Qt.LeftButton:
            self._click_timer.start()

    def _double_click(self, event) -> None:
        if event.button() == Qt.LeftButton:
            self._click_timer.stop()
            self.sig_double_clicked.emit()

    @property
    def click_pending(self) -> bool:
        """Whether a single click waits for the double-click interval to pass."""
        return self._click_timer.isActive()

    def show_image(self, image, frame: int, adjustment: WindowAdjustment) -> None:
        """Draw ``image.frames[frame]``, fitted, with its own window adjusted by ``adjustment``."""
        self.image = (image, frame)
        pixels = image.frames[frame]
        row_mm, col_mm = image.pixel_spacing or (1.0, 1.0)
        if image.is_color:
            self.base_window = None
            self.item.setImage(pixels, autoLevels=False, levels=(0, 255))
        else:
            self.base_window = initial_window(image, frame)
            self.item.setImage(pixels, autoLevels=False,
                               levels=linear_levels(adjustment.apply(self.base_window)))
            inverted = image.photometric == "MONOCHROME1"
            self.item.setLookupTable(INVERTED_LUT if inverted else GREY_LUT)
        self.item.setRect(0, 0, pixels.shape[1] * col_mm, pixels.shape[0] * row_mm)
        self.box.autoRange(padding=0.01)

    def set_adjustment(self, adjustment: WindowAdjustment) -> None:
        """Apply the linked relative window change to this image's own window."""
        if self.base_window is not None:
            self.item.setLevels(linear_levels(adjustment.apply(self.base_window)))

    def shown_window(self, adjustment: WindowAdjustment) -> Window | None:
        """Return the window on screen (``None`` for colour or no image)."""
        return None if self.base_window is None else adjustment.apply(self.base_window)

    def clear(self) -> None:
        """Show nothing."""
        self.image = None
        self.base_window = None
        self.item.clear()


class CandidateTile(QFrame):
    """A candidate thumbnail with its key number; shows whether it is picked."""

    def __init__(self, key: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("candidateTile")
        self.key = key
        layout = QVBoxLayout(self)
        layout.setContentsMargins(3, 3, 3, 3)
        self.pane = ImagePane(key, interactive=False, parent=self)
        layout.addWidget(self.pane)
        self.set_picked(False)

    def set_picked(self, picked: bool) -> None:
        """Show the picked state (after it is stored)."""
        self.setProperty("picked", picked)
        self.pane.caption.setText(f"{self.key}  \u2714 picked" if picked else self.key)
        self.style().unpolish(self)
        self.style().polish(self)


class ReaderStudyWindow(QMainWindow):
    """Read a study: instructions, a practice query, then the queries with their candidates.

    Parameters
    ----------
    session : ReadingSession
    image_loader : callable
        ``case_id -> (DecodedImage, frame)``, called on worker threads.
    practice : bool
        Begin with the instruction page and the practice query (default).

    Signals
    -------
    sig_closed(str)
        The screen closed: ``"paused"`` or ``"finished"``; the hidden windows are back.
    """

    sig_closed = Signal(str)

    def __init__(self, session: ReadingSession, image_loader, parent: QWidget | None = None,
                 *, practice: bool = True) -> None:
        super().__init__(parent)
        self.session = session
        self.loader = image_loader
        self.index = session.first_unanswered()
        self.adjustment = WindowAdjustment()
        self.practice = practice_view(session.conn, session.study_id, session.seed) \
            if practice else None
        self.in_practice = False
        self._practice_picks: set[int] = set()
        self._hidden = HiddenWindows()
        self._closed_as = "paused"
        self.setWindowTitle("Reader study")
        self.resize(1500, 950)
        self._runner = TaskRunner(self, message=lambda m: self.status.setText(f"Image failed: {m}"))
        self._build()
        if practice:
            self.pages.setCurrentWidget(self.intro_page)
        else:
            self.begin_study()

    # -- layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        self.pages = QStackedWidget(self)
        self.setCentralWidget(self.pages)
        self._build_intro()
        self._build_reading()
        self._build_done()

    def _build_intro(self) -> None:
        page = QWidget(self.pages)
        outer = QVBoxLayout(page)
        outer.addStretch(1)
        box = QVBoxLayout()
        answered, skipped, total = self.session.progress()
        who = QLabel(f"<h1>Reader study</h1><p>Reading as <b>{_escape(self.session.reader)}"
                     f"</b> \u00b7 {total} queries, {answered + skipped} done so far.</p>", page)
        who.setObjectName("readerIdentity")
        box.addWidget(who)
        text = QLabel(INSTRUCTIONS, page)
        text.setWordWrap(True)
        text.setObjectName("readerInstructions")
        text.setMaximumWidth(760)
        box.addWidget(text)
        buttons = QHBoxLayout()
        self.practice_button = QPushButton("Start the practice query", page)
        self.practice_button.setObjectName("primaryButton")
        self.practice_button.setEnabled(self.practice is not None)
        self.start_button = QPushButton("Skip practice, start the study", page)
        buttons.addWidget(self.practice_button)
        buttons.addWidget(self.start_button)
        buttons.addStretch(1)
        box.addLayout(buttons)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addLayout(box)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)
        self.practice_button.clicked.connect(self.begin_practice)
        self.start_button.clicked.connect(self.begin_study)
        self.pages.addWidget(page)
        self.intro_page = page

    def _build_reading(self) -> None:
        central = QWidget(self.pages)
        outer = QVBoxLayout(central)
        top = QHBoxLayout()
        self.progress = QLabel(central)
        self.progress.setObjectName("studyProgress")
        top.addWidget(self.progress, 1)
        self.instructions = QLabel("Pick the 5 cases most similar to the query: click, or keys "
                                   "1\u20139 and 0. Double-click to enlarge. R resets "
                                   "window/level.", central)
        top.addWidget(self.instructions)
        outer.addLayout(top)
        body = QHBoxLayout()
        self.query_pane = ImagePane("Query", interactive=True, parent=central)
        self.compare_pane = ImagePane("Enlarged candidate (double-click a candidate)",
                                      interactive=True, parent=central)
        pair = QHBoxLayout()
        pair.addWidget(self.query_pane, 1)
        pair.addWidget(self.compare_pane, 1)
        body.addLayout(pair, 3)
        grid = QGridLayout()
        self.tiles: list[CandidateTile] = []
        for i, key in enumerate(KEYS):
            tile = CandidateTile(key, central)
            tile.pane.sig_clicked.connect(lambda i=i: self.toggle(i))
            tile.pane.sig_double_clicked.connect(lambda i=i: self.enlarge(i))
            grid.addWidget(tile, i // 2, i % 2)
            self.tiles.append(tile)
        body.addLayout(grid, 2)
        outer.addLayout(body, 1)
        bottom = QHBoxLayout()
        self.status = QLabel(central)
        bottom.addWidget(self.status, 1)
        self.reset_button = QPushButton("Reset window/level", central)
        self.prev_button = QPushButton("\u2190 Previous", central)
        self.skip_button = QPushButton("Skip\u2026", central)
        self.next_button = QPushButton("Next \u2192", central)
        self.next_button.setObjectName("primaryButton")
        self.pause_button = QPushButton("Pause", central)
        for button in (self.reset_button, self.prev_button, self.skip_button, self.pause_button,
                       self.next_button):
            bottom.addWidget(button)
        outer.addLayout(bottom)
        self.pages.addWidget(central)
        self.reading_page = central
        self.reset_button.clicked.connect(self.reset_window)
        self.prev_button.clicked.connect(lambda: self.go(self.index - 1))
        self.next_button.clicked.connect(self.next_query)
        self.skip_button.clicked.connect(self.skip_query)
        self.pause_button.clicked.connect(self.pause)
        for pane in (self.query_pane, self.compare_pane):
            pane.sig_window_drag.connect(self._on_window_drag)
        for i, key in enumerate(KEYS):
            self._shortcut([key], lambda i=i: self.toggle(i))
        self._shortcut(["Return", "Enter", "Right"], self.next_query)
        self._shortcut(["Left"], lambda: self.go(self.index - 1))
        self._shortcut(["R"], self.reset_window)
        self._shortcut(["F11"], self.toggle_full_screen)

    def _shortcut(self, keys: list[str], slot) -> None:
        action = QAction(self)
        action.setShortcuts([QKeySequence(k) for k in keys])
        # Keys act only while the reading page is up (not on the instruction page).
        action.triggered.connect(
            lambda _c=False: slot() if self.pages.currentWidget() is self.reading_page else None)
        self.addAction(action)

    def _build_done(self) -> None:
        page = QWidget(self.pages)
        layout = QVBoxLayout(page)
        layout.addStretch(1)
        self.done_label = QLabel(page)
        self.done_label.setAlignment(Qt.AlignCenter)
        self.done_label.setObjectName("readerDone")
        layout.addWidget(self.done_label)
        self.finish_button = QPushButton("Finish", page)
        self.finish_button.setObjectName("primaryButton")
        self.finish_button.clicked.connect(self.finish)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.finish_button)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(2)
        self.pages.addWidget(page)
        self.done_page = page

    # -- blinding ---------------------------------------------------------------------------
    def start_reading(self, screen=None, full_screen: bool = True) -> None:
        """Hide every other window and show this one (full screen on ``screen`` by default).

        Parameters
        ----------
        screen : QScreen, optional
            The screen to read on; the primary screen by default.
        full_screen : bool
        """
        self._hidden.hide_all_but(self)
        screen = screen or QApplication.primaryScreen()
        if screen is not None:
            self.setScreen(screen)
            self.setGeometry(screen.availableGeometry())
        self.showFullScreen() if full_screen else self.show()
        self.raise_()
        self.activateWindow()

    # -- navigation -------------------------------------------------------------------------
    @property
    def view(self) -> QueryView | None:
        """Return the query on screen (``None`` when all are done)."""
        if self.in_practice:
            return self.practice
        return self.session.queries[self.index] if self.index < len(self.session.queries) else None

    def begin_practice(self) -> None:
        """Show the practice query (its picks are never stored)."""
        if self.practice is None:
            self.begin_study()
            return
        self.in_practice = True
        self._practice_picks = set()
        self.pages.setCurrentWidget(self.reading_page)
        self._show_query()

    def begin_study(self) -> None:
        """Leave the instructions (or the practice) and show the first unanswered query."""
        self.in_practice = False
        self.pages.setCurrentWidget(self.reading_page)
        self.go(self.session.first_unanswered())

    def _show_query(self) -> None:
        answered, skipped, total = self.session.progress()
        view = self.view
        if view is None:
            self.done_label.setText(f"<h2>All {total} queries done</h2><p>{answered} answered, "
                                    f"{skipped} skipped. Thank you.</p>")
            for tile in self.tiles:
                tile.pane.clear()
                tile.set_picked(False)
            self.query_pane.clear()
            self.compare_pane.clear()
            self.pages.setCurrentWidget(self.done_page)
            return
        self.pages.setCurrentWidget(self.reading_page)
        if self.in_practice:
            self.progress.setText("Practice query (not scored)")
        else:
            self.progress.setText(f"Query {self.index + 1} of {total}  \u00b7  {answered} "
                                  f"answered, {skipped} skipped")
            self.session.start_timer(view.query_id)
        self.prev_button.setEnabled(not self.in_practice and self.index > 0)
        self.skip_button.setEnabled(not self.in_practice)
        self.compare_pane.clear()
        self.compare_pane.caption.setText("Enlarged candidate (double-click a candidate)")
        self._refresh_picks()
        cases = [view.case_id] + [case for _c, case in view.candidates]
        loader = self.loader

        def load(state):
            return [loader(case) for case in cases]

        self._runner.start(load, lambda images, view=view: self._on_images(view, images))

    def _on_images(self, view: QueryView, images) -> None:
        if view is not self.view:
            return  # the reader moved on while these loaded
        (query_image, frame), rest = images[0], images[1:]
        self.query_pane.show_image(query_image, frame, self.adjustment)
        for tile, (image, f) in zip(self.tiles, rest, strict=False):
            tile.pane.show_image(image, f, self.adjustment)

    def _picked(self) -> frozenset[int]:
        if self.in_practice:
            return frozenset(self._practice_picks)
        response = self.session.response(self.view.query_id)
        return response.picked if response else frozenset()

    def _refresh_picks(self) -> None:
        view = self.view
        picked = self._picked()
        for tile, (candidate, _case) in zip(self.tiles, view.candidates, strict=False):
            tile.set_picked(candidate in picked)
        count = len(picked)
        need = self.session.picks_required
        self.next_button.setEnabled(count == need)
        self.next_button.setText("Start the study \u2192" if self.in_practice else "Next \u2192")
        response = None if self.in_practice else self.session.response(view.query_id)
        state = "" if response is None else {"answered": " (answered)", "skipped":
                                             f" (skipped: {response.skip_reason})"}.get(
                                                 response.status, "")
        self.status.setText(f"{count} of {need} picked{state}")

    def toggle(self, position: int) -> None:
        """Pick or unpick the candidate at ``position`` (0-9); shown once stored."""
        view = self.view
        if view is None or position >= len(view.candidates):
            return
        candidate = view.candidates[position][0]
        if self.in_practice:
            if candidate in self._practice_picks:
                self._practice_picks.remove(candidate)
            elif len(self._practice_picks) >= self.session.picks_required:
                self.status.setText(f"{self.session.picks_required} cases are picked already: "
                                    "unpick one first")
                return
            else:
                self._practice_picks.add(candidate)
            self._refresh_picks()
            return
        try:
            self.session.toggle_pick(view.query_id, candidate)
        except ReadingError as exc:
            self.status.setText(str(exc))
            return
        self._refresh_picks()

    def enlarge(self, position: int) -> None:
        """Show a candidate large, beside the query, with the linked window (never picks)."""
        pane = self.tiles[position].pane
        if pane.image is not None:
            self.compare_pane.caption.setText(f"Candidate {KEYS[position]}")
            self.compare_pane.show_image(*pane.image, self.adjustment)

    def next_query(self) -> None:
        """Store the answer (exactly five picks) and go on."""
        view = self.view
        if view is None:
            return
        if self.in_practice:
            if len(self._practice_picks) != self.session.picks_required:
                self.status.setText(f"pick exactly {self.session.picks_required} cases to go on")
                return
            self.begin_study()
            return
        try:
            self.session.finish(view.query_id)
        except ReadingError as exc:
            self.status.setText(str(exc))
            return
        self.go(self.index + 1)

    def skip_query(self) -> None:
        """Skip the query with a reason."""
        view = self.view
        if view is None or self.in_practice:
            return
        reason, ok = QInputDialog.getText(self, "Skip this query", "Reason (e.g. image quality):")
        if not ok:
            return
        try:
            self.session.skip(view.query_id, reason)
        except ReadingError as exc:
            self.status.setText(str(exc))
            return
        self.go(self.index + 1)

    def go(self, index: int) -> None:
        """Show the query at ``index`` (clamped)."""
        if self.in_practice:
            return
        self.index = max(0, min(len(self.session.queries), index))
        self._show_query()

    def pause(self) -> None:
        """Close the screen; every pick is already stored, reading resumes where it stopped."""
        self._closed_as = "paused"
        self.close()

    def finish(self) -> None:
        """Close the screen after the last query."""
        self._closed_as = "finished"
        self.close()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt naming
        from PySide6.QtCore import QThreadPool

        self._runner.cancel()
        # A loading job must not outlive the window: its last references would then be
        # released on a worker thread, where Qt objects must not be destroyed.
        QThreadPool.globalInstance().waitForDone(10000)
        super().closeEvent(event)
        if event.isAccepted():
            self._hidden.restore()
            self.sig_closed.emit(self._closed_as if self.view is not None else "finished")

    def toggle_full_screen(self) -> None:
        """Leave or re-enter full screen (other windows stay hidden either way)."""
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    # -- window/level -------------------------------------------------------------------------
    def _panes(self) -> list[ImagePane]:
        return [self.query_pane, self.compare_pane] + [t.pane for t in self.tiles]

    def _on_window_drag(self, dx: float, dy: float) -> None:
        self.adjustment = self.adjustment.dragged(dx, dy)
        for pane in self._panes():
            pane.set_adjustment(self.adjustment)

    def reset_window(self) -> None:
        """Show every image with its own default window again."""
        self.adjustment = WindowAdjustment()
        for pane in self._panes():
            pane.set_adjustment(self.adjustment)


def _escape(text: str) -> str:
    from html import escape

    return escape(text)


def ask_reader_name(parent: QWidget | None = None) -> str | None:
    """Ask who is reading (the reader identity at the start)."""
    name, ok = QInputDialog.getText(parent, "Reader study", "Your name or initials:")
    return name.strip() if ok and name.strip() else None


def choose_screen(parent: QWidget | None = None):
    """Return the screen to read on: the only one, or the one the reader picks."""
    screens = QApplication.screens()
    if len(screens) <= 1:
        return screens[0] if screens else None
    names = [f"{s.name()} ({s.size().width()}\u00d7{s.size().height()})" for s in screens]
    current = parent.screen() if parent is not None else QApplication.primaryScreen()
    default = screens.index(current) if current in screens else 0
    choice, ok = QInputDialog.getItem(parent, "Reader study", "Read on screen:", names, default,
                                      False)
    return screens[names.index(choice)] if ok else None


def pixels_of(pane: ImagePane) -> np.ndarray | None:
    """Return the pixels shown in a pane (for tests)."""
    return None if pane.image is None else pane.image[0].frames[pane.image[1]]


__all__ = ["PRACTICE_QUERY_ID", "CandidateTile", "ImagePane", "ReaderStudyWindow",
           "ask_reader_name", "choose_screen", "pixels_of"]

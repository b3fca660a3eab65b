"""The reading screen of a reader study: one query, ten blinded candidates, exactly five picks.

Nothing on this screen reveals distances, ranks, labels, model names or case
identifiers.  A pick shows as picked only after the session has written it
durably (the session method returns after the commit).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QFrame, QGridLayout, QHBoxLayout, QInputDialog, QLabel,
                               QMainWindow, QMessageBox, QPushButton, QVBoxLayout, QWidget)

from medviewer.display.render import initial_window
from medviewer.display.windowing import Window, default_window, linear_levels
from medviewer.qt.image_view import RadiologyViewBox
from medviewer.qt.viewport_widget import GREY_LUT, INVERTED_LUT
from medviewer.qt.workers import TaskRunner
from medviewer.study.session import ReadingError, ReadingSession

KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"]


class ImagePane(QWidget):
    """A window/level-able image with a caption; used for the query, the enlarged view and tiles."""

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
        self.box.sig_window_drag.connect(self.sig_window_drag)
        if not interactive:
            self.box.sig_window_drag.disconnect(self.sig_window_drag)
            self.view.mousePressEvent = self._press
            self.view.mouseDoubleClickEvent = lambda e: self.sig_double_clicked.emit()
            self.view.wheelEvent = lambda e: None
        self.image = None

    def _press(self, event) -> None:
        if event.button() == Qt.LeftButton:
            self.sig_clicked.emit()

    def show_image(self, image, frame: int, window: Window | None) -> None:
        """Draw ``image.frames[frame]``, fitted."""
        self.image = (image, frame)
        pixels = image.frames[frame]
        row_mm, col_mm = image.pixel_spacing or (1.0, 1.0)
        if image.is_color:
            self.item.setImage(pixels, autoLevels=False, levels=(0, 255))
        else:
            self.item.setImage(pixels, autoLevels=False,
                               levels=linear_levels(window or default_window(pixels, image.windows)))
            self.item.setLookupTable(INVERTED_LUT if image.photometric == "MONOCHROME1" else GREY_LUT)
        self.item.setRect(0, 0, pixels.shape[1] * col_mm, pixels.shape[0] * row_mm)
        self.box.autoRange(padding=0.01)

    def set_window(self, window: Window) -> None:
        """Apply a (linked) window."""
        if self.image is not None and not self.image[0].is_color:
            self.item.setLevels(linear_levels(window))

    def clear(self) -> None:
        """Show nothing."""
        self.image = None
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
    """Read a study: the query, its ten candidates, and the navigation a reader needs.

    Parameters
    ----------
    session : ReadingSession
    image_loader : callable
        ``case_id -> (DecodedImage, frame)``, called on worker threads.
    """

    def __init__(self, session: ReadingSession, image_loader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.loader = image_loader
        self.index = session.first_unanswered()
        self.window: Window | None = None
        self.setWindowTitle(f"Reader study \u2014 {session.reader}")
        self.resize(1500, 950)
        self._runner = TaskRunner(self, message=lambda m: self.status.setText(f"Image failed: {m}"))
        self._build()
        self._show_query()

    # -- layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        central = QWidget(self)
        outer = QVBoxLayout(central)
        top = QHBoxLayout()
        self.progress = QLabel(self)
        self.progress.setObjectName("studyProgress")
        top.addWidget(self.progress, 1)
        self.instructions = QLabel("Pick the 5 cases most similar to the query: click, or keys "
                                   "1\u20139 and 0. Double-click to enlarge.", self)
        top.addWidget(self.instructions)
        outer.addLayout(top)
        body = QHBoxLayout()
        left = QVBoxLayout()
        self.query_pane = ImagePane("Query", interactive=True, parent=self)
        self.compare_pane = ImagePane("Enlarged candidate (double-click a candidate)",
                                      interactive=True, parent=self)
        pair = QHBoxLayout()
        pair.addWidget(self.query_pane, 1)
        pair.addWidget(self.compare_pane, 1)
        left.addLayout(pair, 1)
        body.addLayout(left, 3)
        grid = QGridLayout()
        self.tiles: list[CandidateTile] = []
        for i, key in enumerate(KEYS):
            tile = CandidateTile(key, self)
            tile.pane.sig_clicked.connect(lambda i=i: self.toggle(i))
            tile.pane.sig_double_clicked.connect(lambda i=i: self.enlarge(i))
            grid.addWidget(tile, i // 2, i % 2)
            self.tiles.append(tile)
        body.addLayout(grid, 2)
        outer.addLayout(body, 1)
        bottom = QHBoxLayout()
        self.status = QLabel(self)
        bottom.addWidget(self.status, 1)
        self.prev_button = QPushButton("\u2190 Previous", self)
        self.skip_button = QPushButton("Skip\u2026", self)
        self.next_button = QPushButton("Next \u2192", self)
        self.next_button.setObjectName("primaryButton")
        self.pause_button = QPushButton("Pause", self)
        for button in (self.prev_button, self.skip_button, self.pause_button, self.next_button):
            bottom.addWidget(button)
        outer.addLayout(bottom)
        self.setCentralWidget(central)
        self.prev_button.clicked.connect(lambda: self.go(self.index - 1))
        self.next_button.clicked.connect(self.next_query)
        self.skip_button.clicked.connect(self.skip_query)
        self.pause_button.clicked.connect(self.pause)
        for pane in (self.query_pane, self.compare_pane):
            pane.sig_window_drag.connect(self._on_window_drag)
        for i, key in enumerate(KEYS):
            action = QAction(self)
            action.setShortcut(QKeySequence(key))
            action.triggered.connect(lambda _c=False, i=i: self.toggle(i))
            self.addAction(action)
        for keys, slot in ((["Return", "Right"], self.next_query), (["Left"], lambda: self.go(self.index - 1)),
                           (["F11"], self.toggle_full_screen)):
            action = QAction(self)
            action.setShortcuts([QKeySequence(k) for k in keys])
            action.triggered.connect(slot)
            self.addAction(action)

    # -- navigation -------------------------------------------------------------------------
    @property
    def view(self):
        """Return the query on screen (``None`` when all are done)."""
        return self.session.queries[self.index] if self.index < len(self.session.queries) else None

    def _show_query(self) -> None:
        answered, skipped, total = self.session.progress()
        view = self.view
        if view is None:
            self.progress.setText(f"All {total} queries done ({answered} answered, {skipped} "
                                  "skipped). Thank you.")
            for tile in self.tiles:
                tile.pane.clear()
                tile.set_picked(False)
            self.query_pane.clear()
            self.compare_pane.clear()
            self.next_button.setEnabled(False)
            return
        self.progress.setText(f"Query {self.index + 1} of {total}  \u00b7  {answered} answered, "
                              f"{skipped} skipped")
        self.session.start_timer(view.query_id)
        self.window = None
        self.compare_pane.clear()
        self._refresh_picks()
        cases = [view.case_id] + [case for _c, case in view.candidates]
        loader = self.loader

        def load(state):
            return [loader(case) for case in cases]

        self._runner.start(load, self._on_images)

    def _on_images(self, images) -> None:
        (query_image, frame), rest = images[0], images[1:]
        if not query_image.is_color:
            self.window = initial_window(query_image, frame)
        self.query_pane.show_image(query_image, frame, self.window)
        for tile, (image, f) in zip(self.tiles, rest, strict=False):
            tile.pane.show_image(image, f, self.window)

    def _refresh_picks(self) -> None:
        view = self.view
        response = self.session.response(view.query_id)
        picked = response.picked if response else frozenset()
        for tile, (candidate, _case) in zip(self.tiles, view.candidates, strict=False):
            tile.set_picked(candidate in picked)
        count = len(picked)
        need = self.session.picks_required
        self.next_button.setEnabled(count == need)
        state = "" if response is None else {"answered": " (answered)", "skipped":
                                             f" (skipped: {response.skip_reason})"}.get(
                                                 response.status, "")
        self.status.setText(f"{count} of {need} picked{state}")

    def toggle(self, position: int) -> None:
        """Pick or unpick the candidate at ``position`` (0-9); shown once stored."""
        view = self.view
        if view is None or position >= len(view.candidates):
            return
        try:
            self.session.toggle_pick(view.query_id, view.candidates[position][0])
        except ReadingError as exc:
            self.status.setText(str(exc))
            return
        self._refresh_picks()

    def enlarge(self, position: int) -> None:
        """Show a candidate large, beside the query, with the linked window."""
        pane = self.tiles[position].pane
        if pane.image is not None:
            self.compare_pane.caption.setText(f"Candidate {KEYS[position]}")
            self.compare_pane.show_image(*pane.image, self.window)

    def next_query(self) -> None:
        """Store the answer (exactly five picks) and go on."""
        view = self.view
        if view is None:
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
        if view is None:
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
        self.index = max(0, min(len(self.session.queries), index))
        self._show_query()

    def pause(self) -> None:
        """Close the screen; every pick is already stored, reading resumes where it stopped."""
        QMessageBox.information(self, "Paused", "Your picks are saved. Reopen the study to "
                                "continue at the first unanswered query.")
        self.close()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt naming
        from PySide6.QtCore import QThreadPool

        self._runner.cancel()
        # A loading job must not outlive the window: its last references would then be
        # released on a worker thread, where Qt objects must not be destroyed.
        QThreadPool.globalInstance().waitForDone(10000)
        super().closeEvent(event)

    def toggle_full_screen(self) -> None:
        """Distraction-free full screen."""
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    def _on_window_drag(self, dx: float, dy: float) -> None:
        if self.window is None:
            return
        step = max(self.window.width, 1.0) / 256.0
        self.window = Window(self.window.center - dy * step * 2,
                             max(1.0, self.window.width + dx * step * 2), "manual")
        for pane in [self.query_pane, self.compare_pane] + [t.pane for t in self.tiles]:
            pane.set_window(self.window)


def ask_reader_name(parent: QWidget | None = None) -> str | None:
    """Ask who is reading (the reader identity at the start)."""
    name, ok = QInputDialog.getText(parent, "Reader study", "Your name or initials:")
    return name.strip() if ok and name.strip() else None


def pixels_of(pane: ImagePane) -> np.ndarray | None:
    """Return the pixels shown in a pane (for tests)."""
    return None if pane.image is None else pane.image[0].frames[pane.image[1]]

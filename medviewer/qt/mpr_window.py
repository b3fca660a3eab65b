"""Axial, coronal and sagittal reformats side by side, with cross-reference lines.

The volume is built on a worker (:func:`medviewer.dicom.volume.build_volume`);
a series that is not one consistent volume is refused in words in the window.
Each view scrolls with the wheel (or Page Up/Down); clicking a point in one view
moves the other two through it.  Window/level is shared: a left drag in any view
changes all three.  The slab control makes thick-slab MIP, MinIP or mean images.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget)

from medviewer.display.mpr import PLANES, cross_reference, plane_count, plane_name, reformat
from medviewer.display.orientation import edge_labels
from medviewer.display.scale_bar import scale_bar_length
from medviewer.display.windowing import Window, linear_levels
from medviewer.qt.image_view import RadiologyViewBox
from medviewer.qt.viewport_overlay import CanvasView
from medviewer.qt.workers import TaskRunner

GREY_LUT = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
PLANE_COLOURS = {"slice": QColor(47, 155, 224), "row": QColor(47, 191, 113),
                 "column": QColor(230, 120, 40)}
SLABS_MM = (0, 5, 10, 20, 40)


class MprViewWidget(QWidget):
    """One reformatted plane of a volume.

    Signals
    -------
    sig_index_changed(str, int)
        The plane shown and its new index (scrolled).
    sig_point_clicked(str, float, float)
        A click: the plane and the (column, row) clicked, in the reformat's pixels.
    sig_window_drag(float, float)
        A window/level drag in this view.
    """

    sig_index_changed = Signal(str, int)
    sig_point_clicked = Signal(str, float, float)
    sig_window_drag = Signal(float, float)

    def __init__(self, plane: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plane = plane
        self.volume = None
        self.index = 0
        self.window: Window | None = None
        self.slab = 1
        self.slab_mode = "mip"
        self.current = None  # the Reformat on screen
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.view = CanvasView(self)
        self.view.setBackground("k")
        self.box = RadiologyViewBox()
        self.view.setCentralItem(self.box)
        self.image_item = pg.ImageItem()
        self.image_item.setLookupTable(GREY_LUT)
        self.box.addItem(self.image_item)
        layout.addWidget(self.view)
        self.lines: dict[str, pg.InfiniteLine] = {}
        for other in PLANES:
            if other != plane:
                line = pg.InfiniteLine(angle=0, movable=False,
                                       pen=pg.mkPen(PLANE_COLOURS[other], width=1))
                self.box.addItem(line)
                self.lines[other] = line
        self.box.sig_scroll.connect(lambda steps: self.set_index(self.index + steps))
        self.box.sig_window_drag.connect(self.sig_window_drag.emit)
        self.box.sigRangeChanged.connect(lambda *_: self._update_scale_bar())
        self.view.scene().sigMouseClicked.connect(self._on_click)
        self.setFocusPolicy(Qt.StrongFocus)

    def set_volume(self, volume, window: Window) -> None:
        """Show a volume from the middle of this plane."""
        self.volume, self.window = volume, window
        self.index = plane_count(volume, self.plane) // 2
        self._render(fit=True)

    def set_index(self, index: int) -> None:
        """Show another image of this plane (clamped)."""
        if self.volume is None:
            return
        index = int(np.clip(index, 0, plane_count(self.volume, self.plane) - 1))
        if index != self.index:
            self.index = index
            self._render()
            self.sig_index_changed.emit(self.plane, index)

    def set_window(self, window: Window) -> None:
        """Change the window/level."""
        self.window = window
        if self.current is not None:
            self.image_item.setLevels(self.volume.stored_levels(*linear_levels(window)))
            self._update_text()

    def set_slab(self, voxels: int, mode: str) -> None:
        """Use a thick slab of ``voxels`` (1 = plain reformat) reduced by ``mode``."""
        self.slab, self.slab_mode = max(1, voxels), mode
        if self.volume is not None:
            self._render()

    def _render(self, fit: bool = False) -> None:
        shown = reformat(self.volume, self.plane, self.index, self.slab, self.slab_mode)
        self.current = shown
        row_mm, col_mm = shown.spacing
        self.image_item.setImage(shown.pixels, autoLevels=False,
                                 levels=self.volume.stored_levels(*linear_levels(self.window)))
        rect = (shown.pixels.shape[1] * col_mm, shown.pixels.shape[0] * row_mm)
        if rect != getattr(self, "_rect", None):
            self._rect = rect
            self.image_item.setRect(0, 0, *rect)
        if fit:
            self.box.autoRange(padding=0.02)
        self._update_text()
        self._update_scale_bar()

    def show_cross_reference(self, other: str, other_index: int) -> None:
        """Draw where another plane's image cuts this one."""
        if self.current is None or other not in self.lines:
            return
        found = cross_reference(self.volume, self.plane, other, other_index)
        if found is None:
            return
        direction, pixel = found
        row_mm, col_mm = self.current.spacing
        line = self.lines[other]
        line.setAngle(0 if direction == "h" else 90)
        line.setValue(pixel * (row_mm if direction == "h" else col_mm))

    def line_position(self, other: str) -> tuple[float, float]:
        """Return (angle, scene value) of another plane's cross-reference line (for tests)."""
        line = self.lines[other]
        return line.angle, line.value()

    def _update_text(self) -> None:
        overlay = self.view.overlay
        name = plane_name(self.volume, self.plane)
        count = plane_count(self.volume, self.plane)
        slab = (f"  slab {self.slab * self.volume.spacing[{'slice': 0, 'row': 1, 'column': 2}[self.plane]]:.0f} mm "
                f"{self.slab_mode.upper()}" if self.slab > 1 else "")
        overlay.set_text("tl", f"{name.capitalize()} reformat\nIm {self.index + 1}/{count}{slab}")
        w = self.window
        overlay.set_text("br", f"W {w.width:.0f}  L {w.center:.0f}" if w else "")
        labels = edge_labels(self.current.orientation)
        for edge in ("left", "right", "top", "bottom"):
            overlay.set_text(edge, getattr(labels, edge) if labels else "")
        self.view.viewport().update()

    def _update_scale_bar(self) -> None:
        if self.current is None:
            return
        view_width, box_width = self.box.viewRect().width(), self.box.width()
        bar = None
        if view_width > 0 and box_width > 0:
            found = scale_bar_length(view_width / box_width, self.view.viewport().width() * 0.3)
            if found is not None:
                bar = (found[0] * box_width / view_width, found[1])
        if self.view.overlay.set_scale_bar(bar):
            self.view.viewport().update()

    def _on_click(self, event) -> None:
        if self.current is None or event.button() != Qt.LeftButton or event.double():
            return
        point = self.box.mapSceneToView(event.scenePos())
        row_mm, col_mm = self.current.spacing
        self.sig_point_clicked.emit(self.plane, point.x() / col_mm, point.y() / row_mm)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt naming
        step = {Qt.Key_PageDown: 1, Qt.Key_Down: 1, Qt.Key_PageUp: -1, Qt.Key_Up: -1}.get(event.key())
        if step is None:
            super().keyPressEvent(event)
            return
        self.set_index(self.index + step)


class MprWindow(QWidget):
    """Three reformats of one series with cross-reference lines, slab and shared window.

    Signals
    -------
    sig_ready()
        The volume is built and shown (or refused: see ``message``).
    """

    sig_ready = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.Window)
        self.setWindowTitle("MPR")
        self.resize(1500, 640)
        self.volume = None
        self.window_level: Window | None = None
        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Slab:", self))
        self.slab_box = QComboBox(self)
        for mm in SLABS_MM:
            self.slab_box.addItem("thin" if mm == 0 else f"{mm} mm", mm)
        self.mode_box = QComboBox(self)
        for mode, text in (("mip", "MIP"), ("minip", "MinIP"), ("mean", "Mean")):
            self.mode_box.addItem(text, mode)
        bar.addWidget(self.slab_box)
        bar.addWidget(self.mode_box)
        self.message = QLabel("Building the volume\u2026", self)
        self.message.setObjectName("geometryBanner")
        self.message.setWordWrap(True)
        bar.addWidget(self.message, 1)
        layout.addLayout(bar)
        row = QHBoxLayout()
        self.views = {plane: MprViewWidget(plane, self) for plane in PLANES}
        for view in self.views.values():
            row.addWidget(view, 1)
            view.sig_index_changed.connect(self._on_index_changed)
            view.sig_point_clicked.connect(self._on_point_clicked)
            view.sig_window_drag.connect(self._on_window_drag)
        layout.addLayout(row, 1)
        self.slab_box.currentIndexChanged.connect(lambda _i: self._apply_slab())
        self.mode_box.currentIndexChanged.connect(lambda _i: self._apply_slab())
        self._runner = TaskRunner(self)
        self._runner.sig_errored.connect(self._on_failed)

    def build(self, cache, refs, window: Window | None) -> None:
        """Decode (through the shared cache) and stack a series on a worker, then show it."""
        from medviewer.dicom.volume import build_volume

        def work(state):
            images = []
            for n, ref in enumerate(refs):
                state.check()
                images.append(cache.get(ref))
                state.set_progress((n + 1) / len(refs), "Reading slices")
            return build_volume(images)

        self.window_level = window
        self._runner.start(work, self.show_volume)

    def show_volume(self, volume) -> None:
        """Show a built volume in the three views (GUI thread)."""
        from medviewer.display.render import CT_DEFAULT

        self.volume = volume
        window = self.window_level or (CT_DEFAULT if volume.units == "HU" else None)
        if window is None:
            sample = volume.to_modality(volume.voxels[volume.shape[0] // 2])
            from medviewer.display.windowing import auto_window

            window = auto_window(sample)
        self.window_level = window
        for view in self.views.values():
            view.set_volume(volume, window)
        self._refresh_lines()
        self.message.setText("\u26a0 " + "  \u26a0 ".join(volume.warnings) if volume.warnings
                             else "Volume ready: wheel or Page Up/Down scrolls; a click moves "
                             "the other planes to that point.")
        self.message.setVisible(True)
        self.sig_ready.emit()

    def _on_failed(self, error) -> None:
        from medviewer.errors import MedViewerError
        from medviewer.qt.workers import report_unexpected

        if isinstance(error, MedViewerError):
            hint = f" ({error.hint})" if error.hint else ""
            self.message.setText(f"No reformats: {error.message}{hint}")
        else:
            self.message.setText("No reformats: the volume could not be built (details shown).")
            report_unexpected(self, error, context="building the MPR volume")
        self.sig_ready.emit()

    def _on_index_changed(self, plane: str, index: int) -> None:
        for other, view in self.views.items():
            if other != plane:
                view.show_cross_reference(plane, index)

    def _refresh_lines(self) -> None:
        for plane, view in self.views.items():
            for other, other_view in self.views.items():
                if other != plane:
                    view.show_cross_reference(other, other_view.index)

    def _on_point_clicked(self, plane: str, column: float, row: float) -> None:
        """Move the two other planes through the clicked point."""
        volume = self.volume
        view = self.views[plane]
        flipped = view.current.flipped_stack
        if plane == "slice":
            targets = {"row": row, "column": column}
        else:
            slice_index = (volume.shape[0] - row) if flipped else row
            targets = {"slice": slice_index, "column" if plane == "row" else "row": column}
        for other, value in targets.items():
            self.views[other].set_index(int(np.floor(value)))

    def _on_window_drag(self, dx: float, dy: float) -> None:
        window = self.window_level
        if window is None:
            return
        step = max(window.width, 1.0) / 256.0
        self.window_level = Window(window.center - dy * step * 2,
                                   max(1.0, window.width + dx * step * 2), "manual",
                                   window.function)
        for view in self.views.values():
            view.set_window(self.window_level)

    def _apply_slab(self) -> None:
        if self.volume is None:
            return
        mm = self.slab_box.currentData()
        mode = self.mode_box.currentData()
        axis_mm = dict(zip(PLANES, self.volume.spacing, strict=True))
        for plane, view in self.views.items():
            voxels = 1 if not mm else max(1, int(round(mm / axis_mm[plane])))
            view.set_slab(voxels, mode)


def add_mpr_action(window, menu) -> None:
    """Add "MPR" (the active viewport's series as three reformats) to a menu."""
    window._action(menu, "MPR: axial, coronal, sagittal\u2026", lambda: open_mpr(window),
                   "Ctrl+Shift+M")


def open_mpr(window) -> MprWindow | None:
    """Open the reformats of the active viewport's series (with its window/level)."""
    viewport = window.active
    if viewport is None or not viewport.state.planes:
        window.statusBar().showMessage("Open a series first", 4000)
        return None
    refs = []
    seen = set()
    for plane in viewport.state.planes:
        if plane.instance.location not in seen:
            seen.add(plane.instance.location)
            refs.append(plane.instance.ref)
    mpr = MprWindow(window)
    mpr.setWindowTitle(f"MPR \u2014 {viewport.series.modality} {viewport.series.description}".strip())
    mpr.show()
    mpr.build(viewport.cache, refs, viewport.state.window)
    window._mpr_window = mpr
    return mpr

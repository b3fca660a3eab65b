"""One image viewport: the canvas, corner text, warning banner and measurements.

The widget draws a :class:`~medviewer.services.viewer_state.ViewerState`.
Pixels come from the shared :class:`~medviewer.services.image_cache.ImageCache`;
planes not yet decoded are decoded on a worker, never on the GUI thread.
Window/level is applied by pyqtgraph's levels with the DICOM LINEAR formula
(:func:`medviewer.display.windowing.linear_levels`), so it matches ``medviewer render``;
the levels are mapped to the stored values the cache holds, so scrolling never
converts a slice to floating point.  Corner text, orientation markers and the
scale bar are painted in the canvas's own pass (:mod:`medviewer.qt.viewport_overlay`).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from medviewer.dicom.pixels import usable_spacing
from medviewer.display.orientation import edge_labels
from medviewer.display.render import initial_window
from medviewer.display.scale_bar import scale_bar_length
from medviewer.display.windowing import Window, linear_levels
from medviewer.qt.image_view import RadiologyViewBox
from medviewer.qt.measurement_layer import TOOLS, MeasurementLayer
from medviewer.qt.viewport_overlay import CORNERS, EDGES, CanvasView
from medviewer.qt.workers import TaskRunner
from medviewer.services.image_cache import ImageCache
from medviewer.services.viewer_state import ViewerState
from medviewer.store.library import InstanceRow, SeriesRow

GREY_LUT = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
INVERTED_LUT = GREY_LUT[::-1].copy()
ACTIVE_OUTLINE = QColor(47, 155, 224)
OUTLINE_WIDTH = 2

log = logging.getLogger(__name__)


class ViewportWidget(QWidget):
    """Show one series with stack scrolling, window/level, zoom/pan and measurements.

    Signals
    -------
    sig_activated()
        The user clicked into this viewport.
    sig_plane_shown(int)
        A plane was drawn (index in the stack); used for synchronised scrolling
        and by tests and benchmarks to wait for a frame.
    """

    sig_activated = Signal()
    sig_plane_shown = Signal(int)
    sig_region_selected = Signal(int, int, int, int)
    sig_sentence_region = Signal(int, int, int, int)  # a rectangle to match report sentences to

    def __init__(self, cache: ImageCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cache = cache
        self.state = ViewerState()
        self.series: SeriesRow | None = None
        self.patient_text: list[str] = []
        self.study_text: list[str] = []
        self.hide_identifying = False
        self.show_corner_text = True
        self._decoder = TaskRunner(self)
        self._prefetch = TaskRunner(self)
        self._units = ""
        self._spacing: tuple[float, float] | None = None
        self._frame: np.ndarray | None = None  # stored values on screen (transformed)
        self._image = None  # the DecodedImage on screen
        self._notes: list[str] = []
        self._warnings: list[str] = []
        self._probe = ""
        self.library_path: str | None = None  # where measurements are kept
        self._build()
        self.measurements = MeasurementLayer(self)
        self.state.connect("index_changed", lambda index: self._show_plane())
        self.state.connect("window_changed", lambda window: self._apply_window())
        self.state.connect("transform_changed", self.measurements.on_transform_changed)
        self.state.connect("transform_changed", self._show_plane)
        self._decoder.sig_errored.connect(self._on_decode_failed)

    # -- construction -----------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        # Room for the active viewport's outline (painted in paintEvent).
        layout.setContentsMargins(OUTLINE_WIDTH, OUTLINE_WIDTH, OUTLINE_WIDTH, OUTLINE_WIDTH)
        layout.setSpacing(0)
        self.banner = QLabel(self)
        self.banner.setObjectName("geometryBanner")
        self.banner.setWordWrap(True)
        self.banner.hide()
        layout.addWidget(self.banner)
        self.view = CanvasView(self)
        self.view.setBackground("k")
        self.overlay = self.view.overlay
        self.box = RadiologyViewBox()
        self.view.setCentralItem(self.box)
        self.image_item = pg.ImageItem()
        self.image_item.setLookupTable(GREY_LUT)
        self.box.addItem(self.image_item)
        self.seg_item = pg.ImageItem()  # a DICOM SEG drawn over the image
        self.seg_item.setZValue(5)
        self.seg_item.hide()
        self.box.addItem(self.seg_item)
        self.segmentation = None
        layout.addWidget(self.view, 1)
        self.box.sig_window_drag.connect(self._on_window_drag)
        self.box.sig_scroll.connect(self.state.step)
        self.box.sig_tool_drag.connect(self._on_tool_drag)
        self.box.sig_tool_click.connect(self._on_tool_click)
        self.box.sigRangeChanged.connect(lambda *_: self._update_corners())
        self.view.sig_mouse_moved.connect(self._on_mouse_moved)
        self.message = QLabel(self.view)
        self.message.setObjectName("viewportMessage")
        self.message.setAlignment(Qt.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setText("Choose a series in the library\nor drop files here")
        self.setFocusPolicy(Qt.StrongFocus)
        # The banner can shrink the canvas without resizing this widget.
        self.view.installEventFilter(self)
        # A double click closes a polygon; pyqtgraph's scene does not pass it on reliably.
        self.view.viewport().installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt naming
        if watched is self.view and event.type() == QEvent.Resize:
            self._place_overlays()
        elif (event.type() == QEvent.MouseButtonDblClick and self.box.tool == "polygon"
              and event.button() == Qt.LeftButton and watched is self.view.viewport()):
            # The double click's first press and release already added the last vertex.
            self.measurements.close_polygon()
            return True
        return False

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().resizeEvent(event)
        self._place_overlays()

    def _place_overlays(self) -> None:
        self.message.setGeometry(self.view.rect())
        self._update_scale_bar()

    def event(self, event) -> bool:  # noqa: D401 - Qt override
        # The main window marks the active viewport with an "active" property.
        if event.type() == QEvent.DynamicPropertyChange and bytes(event.propertyName()) == b"active":
            self.update()
        return super().event(event)

    @property
    def is_outlined(self) -> bool:
        """Whether this viewport shows the active outline (keys go here)."""
        return bool(self.property("active"))

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().paintEvent(event)
        if not self.is_outlined:
            return
        painter = QPainter(self)
        pen = QPen(ACTIVE_OUTLINE, OUTLINE_WIDTH)
        pen.setJoinStyle(Qt.MiterJoin)
        painter.setPen(pen)
        half = OUTLINE_WIDTH / 2
        painter.drawRect(self.rect().toRectF().adjusted(half, half, -half, -half))
        painter.end()

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt naming
        self.sig_activated.emit()
        super().mousePressEvent(event)

    def focusInEvent(self, event) -> None:  # noqa: N802 - Qt naming
        self.sig_activated.emit()
        super().focusInEvent(event)

    # -- content ------------------------------------------------------------------------------
    def show_series(self, series: SeriesRow, instances: list[InstanceRow],
                    patient_text: list[str], study_text: list[str]) -> None:
        """Display a series (GUI thread); planes decode in the background."""
        self.series = series
        self.patient_text, self.study_text = patient_text, study_text
        self._clear_measurements()
        self._frame, self._image = None, None  # nothing of the last series is measured again
        self.segmentation = None
        self.seg_item.hide()
        self._warnings = [w.message for w in series.warnings
                          if w.code != "sorted by instance number"]
        self._notes = []
        self._show_banner()
        self._fit_pending = True
        self.message.setText("Loading\u2026")
        self.message.show()
        self.state.set_series(series, instances)
        self.measurements.load(self.library_path, self.state.planes)
        if self._frame is not None:
            self.measurements.show_plane(self.state.index)
        cache = self.cache
        refs = [inst.ref for inst in instances]
        order = sorted(range(len(refs)), key=lambda i: abs(i - len(refs) // 2))

        def prefetch(state):
            # Nearest the starting slice first, so scrolling either way finds pixels.
            for n, i in enumerate(order):
                state.check()
                try:
                    cache.get(refs[i])
                except Exception:  # noqa: BLE001 - a bad plane shows its own error when viewed
                    continue
                state.set_progress((n + 1) / len(order), "Loading series")
            return True

        if len(refs) > 1:
            self._prefetch.start(prefetch)

    def clear(self) -> None:
        """Show nothing."""
        self.series = None
        self._clear_measurements()
        self.state.planes = []
        self.image_item.clear()
        self._frame = None
        self._image = None
        self._rect = None
        self._warnings, self._notes = [], []
        self.banner.hide()
        self.message.setText("Choose a series in the library\nor drop files here")
        self.message.show()
        self._update_corners()

    def _show_plane(self) -> None:
        plane = self.state.current
        if plane is None:
            return
        image = self.cache.peek(plane.instance.location)
        if image is None:
            ref = plane.instance.ref
            cache = self.cache
            self._decoder.start(lambda state: cache.get(ref), lambda _img: self._show_plane())
            return
        self.message.hide()
        if plane.frame >= image.frame_count:
            return
        frame = image.stored_frame(plane.frame)
        # The library's spacing comes from the same header; both are checked (0\\0 is no spacing).
        spacing = image.pixel_spacing or usable_spacing(plane.instance.pixel_spacing)
        frame, spacing = self._transform(frame, spacing)
        self._frame, self._units = frame, image.units
        self._image = image
        self._spacing = spacing
        self._color = image.is_color
        if image.notes != self._notes:
            self._notes = list(image.notes)
            self._show_banner()
        if self.state.window is None and not image.is_color:
            self.state.window = initial_window(image, plane.frame)
        self._photometric = image.photometric
        self._draw(frame, image.is_color)
        self.measurements.show_plane(self.state.index)
        self._show_segmentation(plane)
        if getattr(self, "_fit_pending", False):
            self._fit_pending = False
            self.fit()
        self._update_corners()
        self.sig_plane_shown.emit(self.state.index)

    def _transform(self, frame: np.ndarray, spacing):
        turns = (self.state.rotation // 90) % 4
        if turns:
            frame = np.rot90(frame, k=-turns)
            if spacing and turns % 2:
                spacing = (spacing[1], spacing[0])
        if self.state.flip_horizontal:
            frame = frame[:, ::-1]
        if self.state.flip_vertical:
            frame = frame[::-1]
        return frame, spacing

    def set_segmentation(self, segmentation) -> None:
        """Draw a DICOM SEG's masks on the images of this series they refer to (None: stop)."""
        self.segmentation = segmentation
        if self.state.current is not None:
            self._show_segmentation(self.state.current)

    def _show_segmentation(self, plane) -> None:
        from medviewer.dicom.seg import colour_overlay

        mask = self.segmentation.mask_for(plane.instance.sop_uid) if self.segmentation else None
        if mask is None or plane.frame != 0 or getattr(self, "_rect", None) is None:
            self.seg_item.hide()
            return
        rgba, _spacing = self._transform(colour_overlay(mask, self.segmentation.colours), None)
        self.seg_item.setImage(np.ascontiguousarray(rgba), autoLevels=False, levels=(0, 255))
        self.seg_item.setRect(0, 0, *self._rect)
        self.seg_item.show()

    def _show_banner(self) -> None:
        lines = self._warnings + self._notes
        self.banner.setText("\u26a0 " + "  \u26a0 ".join(lines))
        self.banner.setVisible(bool(lines))

    def _stored_levels(self) -> tuple[float, float]:
        return self._image.stored_levels(*linear_levels(self.state.window))

    def modality_values(self, stored: np.ndarray) -> np.ndarray:
        """Return modality values (HU for CT) for stored values taken from the frame on screen."""
        frames = getattr(self._image, "frames", None)
        slope, intercept = getattr(frames, "slope", 1.0), getattr(frames, "intercept", 0.0)
        values = np.asarray(stored, dtype=np.float64)
        return values * slope + intercept if (slope, intercept) != (1.0, 0.0) else values

    def frame_values(self) -> np.ndarray | None:
        """Return the modality values of the frame on screen (as displayed: rotated, flipped)."""
        if self._frame is None or getattr(self, "_color", False):
            return None
        return self.modality_values(self._frame)

    def _draw(self, frame: np.ndarray, color: bool) -> None:
        row_mm, col_mm = self._spacing or (1.0, 1.0)
        if color:
            shown = 255 - frame if self.state.invert else frame
            self.image_item.setImage(shown, autoLevels=False, levels=(0, 255))
        else:
            self._apply_lut()
            self.image_item.setImage(frame, autoLevels=False, levels=self._stored_levels())
        rect = (frame.shape[1] * col_mm, frame.shape[0] * row_mm)
        # Scrolling a stack keeps the size: skip the geometry change (and its re-layout).
        if rect != getattr(self, "_rect", None):
            self._rect = rect
            self.image_item.setRect(0, 0, *rect)

    def _apply_lut(self) -> None:
        inverted = (getattr(self, "_photometric", "") == "MONOCHROME1") != self.state.invert
        lut = INVERTED_LUT if inverted else GREY_LUT
        if lut is not getattr(self, "_lut", None):
            self._lut = lut
            self.image_item.setLookupTable(lut)

    def _apply_window(self) -> None:
        if self._frame is not None and not getattr(self, "_color", False) and self.state.window:
            self.image_item.setLevels(self._stored_levels())
            self._update_corners()

    def _on_decode_failed(self, exc: Exception) -> None:
        from medviewer.errors import MedViewerError
        from medviewer.qt.workers import error_detail

        if not isinstance(exc, MedViewerError):  # a decoder bug, not a bad file: keep the trace
            log.error("decoding failed unexpectedly\n%s", error_detail(exc))
        self.image_item.clear()
        self._frame = None
        self._image = None
        self.message.setText(f"This image cannot be shown:\n{exc}")
        self.message.show()

    # -- interaction ----------------------------------------------------------------------------
    def _on_window_drag(self, dx: float, dy: float) -> None:
        window = self.state.window
        if window is None:
            return
        # Sensitivity scales with the width so fine and coarse windows both feel right.
        step = max(window.width, 1.0) / 256.0
        width = max(1.0, window.width + dx * step * 2)
        center = window.center - dy * step * 2
        self.state.set_window(Window(center, width, "manual", window.function))

    def fit(self) -> None:
        """Fit the image to the viewport."""
        self.box.autoRange(padding=0.02)

    def zoom(self, factor: float) -> None:
        """Zoom in (factor < 1) or out around the centre."""
        self.box.scaleBy((factor, factor))

    def set_tool(self, tool: str) -> None:
        """Choose what a left drag does: ``window``, ``region`` or a measurement tool."""
        self.box.tool = tool

    # -- measurements -------------------------------------------------------------------------
    def _on_tool_drag(self, start, now, finished: bool) -> None:
        if self._frame is None:
            return
        if self.box.tool in ("region", "sentences"):
            self._region_drag(start, now, finished)
        elif self.box.tool in TOOLS:
            self.measurements.drag(self.box.tool, start, now, finished)

    def _on_tool_click(self, at, double: bool) -> None:
        if self._frame is not None and self.box.tool == "polygon":
            self.measurements.click_polygon(at, double)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt naming
        """Enter closes a polygon being drawn, Escape abandons it."""
        if self.measurements.polygon_in_progress():
            if event.key() in (Qt.Key_Return, Qt.Key_Enter):
                self.measurements.close_polygon()
                event.accept()
                return
            if event.key() == Qt.Key_Escape:
                self.measurements.cancel_polygon()
                event.accept()
                return
        super().keyPressEvent(event)

    def _region_drag(self, start, now, finished: bool) -> None:
        """Draw the search rectangle; on release report it in image pixels."""
        x0, y0 = min(start.x(), now.x()), min(start.y(), now.y())
        w, h = abs(now.x() - start.x()), abs(now.y() - start.y())
        if getattr(self, "_region_roi", None) is None:
            self._region_roi = pg.RectROI((x0, y0), (max(w, 1e-3), max(h, 1e-3)),
                                          pen=pg.mkPen((47, 155, 224), width=2), movable=False)
            self.box.addItem(self._region_roi)
        self._region_roi.setPos((x0, y0), update=False)
        self._region_roi.setSize((max(w, 1e-3), max(h, 1e-3)))
        if finished:
            row_mm, col_mm = self._spacing or (1.0, 1.0)
            signal = (self.sig_sentence_region if self.box.tool == "sentences"
                      else self.sig_region_selected)
            signal.emit(int(x0 / col_mm), int(y0 / row_mm),
                        max(1, int(w / col_mm)), max(1, int(h / row_mm)))

    def clear_region(self) -> None:
        """Remove the search rectangle."""
        if getattr(self, "_region_roi", None) is not None:
            self.box.removeItem(self._region_roi)
            self._region_roi = None

    def _clear_measurements(self) -> None:
        self.clear_region()
        self.measurements.clear_items()

    def clear_measurements(self) -> int:
        """Delete every measurement of the image on screen (from the library too)."""
        return self.measurements.delete_plane()

    def delete_last_measurement(self) -> bool:
        """Delete the newest measurement of the image on screen."""
        return self.measurements.delete_last()

    # -- corner text, markers, scale bar, probe ---------------------------------------------
    def corner_text(self, name: str) -> str:
        """Return the text of a corner (``tl``, ``tr``, ``bl``, ``br``) or edge marker."""
        return self.overlay.text(name)

    def _set_overlay(self, name: str, text: str) -> bool:
        return self.overlay.set_text(name, text)

    def _update_corners(self) -> None:
        changed = self._update_corner_text()
        changed = self._update_markers() or changed
        changed = self._update_scale_bar(repaint=False) or changed
        if changed:
            self.view.viewport().update()

    def _update_corner_text(self) -> bool:
        plane = self.state.current
        if plane is None or not self.show_corner_text:
            return any([self._set_overlay(name, "") for name in CORNERS])
        changed = self._set_overlay("tl", "" if self.hide_identifying
                                    else "\n".join(self.patient_text))
        series = self.series
        top_right = list(self.study_text)
        if series is not None:
            top_right.append(f"{series.modality} {series.description}".strip())
        changed = self._set_overlay("tr", "\n".join(t for t in top_right if t)) or changed
        count = len(self.state.planes)
        lines = [self._probe] if self._probe else []
        lines.append(f"Im {self.state.index + 1}/{count}")
        if plane.instance.frames > 1:
            lines.append(f"Frame {plane.frame + 1}/{plane.instance.frames}")
        image = self._image
        place = []
        if image is not None and image.slice_location is not None:
            place.append(f"Loc {image.slice_location:.1f} mm")
        if image is not None and image.slice_thickness:
            place.append(f"Thk {image.slice_thickness:.3g} mm")
        if place:
            lines.append("  ".join(place))
        lines.append(f"{plane.instance.columns} x {plane.instance.rows}")
        if self._spacing:
            lines.append(f"{self._spacing[1]:.3g} x {self._spacing[0]:.3g} mm")
        changed = self._set_overlay("bl", "\n".join(lines)) or changed
        right = []
        window = self.state.window
        if window is not None and not getattr(self, "_color", False):
            right.append(f"W {window.width:.0f}  L {window.center:.0f}")
        right.append(f"Zoom {self.zoom_percent():.0f}%")
        flags = [name for name, on in (("inverted", self.state.invert),
                                       (f"rotated {self.state.rotation}\u00b0", self.state.rotation),
                                       ("flipped H", self.state.flip_horizontal),
                                       ("flipped V", self.state.flip_vertical)) if on]
        if flags:
            right.append(", ".join(flags))
        return self._set_overlay("br", "\n".join(right)) or changed

    def _update_markers(self) -> bool:
        image = self._image
        labels = None
        if image is not None and self.state.current is not None:
            labels = edge_labels(image.orientation, image.patient_orientation,
                                 rotation=self.state.rotation,
                                 flip_horizontal=self.state.flip_horizontal,
                                 flip_vertical=self.state.flip_vertical)
        changed = False
        for edge in EDGES:
            changed = self._set_overlay(edge, getattr(labels, edge) if labels else "") or changed
        return changed

    def _update_scale_bar(self, repaint: bool = True) -> bool:
        bar = None
        width = self.view.viewport().width()
        if self._spacing and self._frame is not None and self.state.current is not None:
            view_width = self.box.viewRect().width()  # scene units are mm when spaced
            box_width = self.box.width()
            if view_width > 0 and box_width > 0:
                found = scale_bar_length(view_width / box_width, width * 0.3)
                if found is not None:
                    bar = (found[0] * box_width / view_width, found[1])
        changed = self.overlay.set_scale_bar(bar)
        if changed and repaint:
            self.view.viewport().update()
        return changed

    def _on_mouse_moved(self, scene_pos) -> None:
        """Show the pixel value under the cursor (HU for CT) in the bottom-left corner."""
        text = ""
        if (scene_pos is not None and self._frame is not None and self._frame.ndim == 2
                and self.box.sceneBoundingRect().contains(scene_pos)):
            point = self.box.mapSceneToView(scene_pos)
            row_mm, col_mm = self._spacing or (1.0, 1.0)
            col, row = int(math.floor(point.x() / col_mm)), int(math.floor(point.y() / row_mm))
            rows, cols = self._frame.shape
            if 0 <= row < rows and 0 <= col < cols:
                value = float(self.modality_values(self._frame[row, col]))
                units = f" {self._units}" if self._units else ""
                text = f"x {col}  y {row}:  {value:.0f}{units}" if value.is_integer() \
                    else f"x {col}  y {row}:  {value:.2f}{units}"
        if text != self._probe:
            self._probe = text
            self._update_corners()

    @property
    def probe_text(self) -> str:
        """Return the probe's text: the pixel under the cursor and its value."""
        return self._probe

    def zoom_percent(self) -> float:
        """Return screen pixels per image pixel, in percent."""
        if self._frame is None:
            return 100.0
        view_range = self.box.viewRect()
        if view_range.width() <= 0:
            return 100.0
        col_mm = self._spacing[1] if self._spacing else 1.0
        pixels_shown = view_range.width() / col_mm
        return 100.0 * self.box.width() / max(pixels_shown, 1e-6)

"""Measurements drawn on a viewport, kept in the library per image.

The :class:`~medviewer.measurements.model.Measurement` objects are the truth
(points in stored-frame pixels); the pyqtgraph ROIs are only their drawing on the
frame as shown (rotated, flipped, in millimetres).  A measurement is saved when
drawing ends and again when a handle is dragged; it is drawn again whenever its
image is shown, in any viewport, after any restart.

Tools: ``length``, ``rectangle``, ``ellipse`` and ``freehand`` are one drag;
``angle`` is two drags (the first arm, then from the vertex to the second arm's
end); ``cobb`` is two drags (one line along each endplate); ``polygon`` is clicks,
one per vertex, closed by a double click or Enter and abandoned by Escape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor

from medviewer.measurements.model import Measurement, MeasurementValues, measure
from medviewer.measurements.transform import to_display, to_stored

MEASURE_PEN = pg.mkPen(QColor(255, 214, 10), width=2)
PENDING_PEN = pg.mkPen(QColor(255, 214, 10), width=1, style=pg.QtCore.Qt.DashLine)
LABEL_BACKING = pg.mkBrush(0, 0, 0, 165)  # measurement text stays legible over bone
TOOLS = ("length", "angle", "cobb", "rectangle", "ellipse", "freehand", "polygon")
FREEHAND_STEP = 2.0  # screen-independent: keep a freehand vertex every 2 image pixels
MAX_FREEHAND_POINTS = 200


@dataclass
class _Drawn:
    measurement: Measurement
    parts: list  # ROIs
    label: pg.TextItem


class MeasurementLayer:
    """Draw, edit, store and delete the measurements of one viewport (GUI thread only)."""

    def __init__(self, viewport) -> None:
        self.viewport = viewport
        self.library_path: str | None = None
        self._by_plane: dict[int, list[Measurement]] = {}
        self._drawn: dict[int, list[_Drawn]] = {}
        self._shown_plane: int | None = None
        self._dragging: list | None = None  # temporary items of the drag in progress
        self._pending: list[tuple[float, float]] | None = None  # first line of angle/Cobb
        self._pending_item = None
        self._path: list[tuple[float, float]] = []
        self._vertices: list[QPointF] = []  # the polygon being clicked
        self._vertices_item = None

    # -- series -----------------------------------------------------------------------------
    def load(self, library_path: str | None, planes) -> None:
        """Read the stored measurements of a series' planes (GUI thread; one small query)."""
        self.clear_items()
        self._by_plane.clear()
        self.library_path = library_path
        if not library_path or not planes:
            return
        from medviewer.measurements.store import measurements_for_series
        from medviewer.store import Library

        index = {(p.instance.id, p.frame): n for n, p in enumerate(planes)}
        with Library(library_path) as library:
            found = measurements_for_series(library, planes[0].instance.series_ref)
        for m in found:
            plane = index.get((m.instance_ref, m.frame))
            if plane is not None:
                self._by_plane.setdefault(plane, []).append(m)

    def clear_items(self) -> None:
        """Remove every drawing (the measurements stay)."""
        box = self.viewport.box
        for entries in self._drawn.values():
            for entry in entries:
                for part in entry.parts:
                    box.removeItem(part)
                box.removeItem(entry.label)
        self._drawn.clear()
        self._shown_plane = None
        self._cancel_pending()
        self._remove_dragging()
        self.cancel_polygon()

    def on_transform_changed(self) -> None:
        """Rotation or flips changed: the drawings are made again from the measurements."""
        self.clear_items()

    def show_plane(self, index: int) -> None:
        """Show the measurements of one plane and hide the last plane's."""
        if self._shown_plane is not None and self._shown_plane != index:
            for entry in self._drawn.get(self._shown_plane, ()):
                for part in (*entry.parts, entry.label):
                    part.setVisible(False)
        if index not in self._drawn:
            self._drawn[index] = [self._draw(m) for m in self._by_plane.get(index, [])]
        for entry in self._drawn[index]:
            # Labels were computed when drawn (the pixels under them do not change).
            for part in (*entry.parts, entry.label):
                part.setVisible(True)
        if self._shown_plane != index:
            self._cancel_pending()
            self.cancel_polygon()
        self._shown_plane = index

    def on_screen(self) -> list[tuple[Measurement, MeasurementValues]]:
        """Return the measurements of the plane on screen with their values."""
        index = self.viewport.state.index
        return [(m, self.values(m)) for m in self._by_plane.get(index, [])]

    # -- coordinates ----------------------------------------------------------------------------
    def _geometry(self):
        vp = self.viewport
        plane = vp.state.current
        shape = (plane.instance.rows, plane.instance.columns)
        if vp._image is not None and not vp._image.is_color:
            shape = tuple(vp._image.frames.shape[1:3])
        row_mm, col_mm = vp._spacing or (1.0, 1.0)
        args = (vp.state.rotation, vp.state.flip_horizontal, vp.state.flip_vertical)
        return shape, row_mm, col_mm, args

    def _to_scene(self, points) -> list[QPointF]:
        shape, row_mm, col_mm, args = self._geometry()
        return [QPointF(x * col_mm, y * row_mm) for x, y in to_display(points, shape, *args)]

    def _to_stored(self, scene_points) -> list[tuple[float, float]]:
        shape, row_mm, col_mm, args = self._geometry()
        shown = [(p.x() / col_mm, p.y() / row_mm) for p in scene_points]
        return to_stored(shown, shape, *args)

    def values(self, measurement: Measurement) -> MeasurementValues:
        """Return what a measurement measures on the stored frame (modality units)."""
        vp = self.viewport
        image = vp._image
        values = None
        if image is not None and not image.is_color:
            values = image.frames[measurement.frame]
        spacing = image.pixel_spacing if image is not None else None
        if spacing is None and vp.state.current is not None:
            from medviewer.dicom.pixels import usable_spacing

            spacing = usable_spacing(vp.state.current.instance.pixel_spacing)
        return measure(measurement, values, spacing, vp._units)

    # -- drawing ----------------------------------------------------------------------------------
    def _draw(self, m: Measurement) -> _Drawn:
        box = self.viewport.box
        scene = self._to_scene(m.points)
        parts = []
        if m.kind == "length":
            parts.append(pg.LineSegmentROI([scene[0], scene[1]], pen=MEASURE_PEN))
        elif m.kind == "cobb":
            parts.append(pg.LineSegmentROI([scene[0], scene[1]], pen=MEASURE_PEN))
            parts.append(pg.LineSegmentROI([scene[2], scene[3]], pen=MEASURE_PEN))
        elif m.kind == "angle":
            parts.append(pg.PolyLineROI([scene[0], scene[1], scene[2]], closed=False,
                                        pen=MEASURE_PEN))
        elif m.kind == "rectangle":
            xs, ys = [p.x() for p in scene], [p.y() for p in scene]
            parts.append(pg.RectROI((min(xs), min(ys)), (max(abs(xs[1] - xs[0]), 1e-3),
                                                         max(abs(ys[1] - ys[0]), 1e-3)),
                                    pen=MEASURE_PEN))
        elif m.kind == "ellipse":
            parts.append(self._ellipse_roi(scene))
        else:  # polygon, freehand
            parts.append(pg.PolyLineROI(scene, closed=True, pen=MEASURE_PEN))
        label = pg.TextItem(color=(255, 214, 10), anchor=(0, 1), fill=LABEL_BACKING)
        for part in parts:
            box.addItem(part)
        box.addItem(label)
        entry = _Drawn(m, parts, label)
        for part in parts:
            part.sigRegionChangeFinished.connect(lambda *_a, e=entry: self._on_edited(e))
            part.sigRegionChanged.connect(lambda *_a, e=entry: self._update_label(e, live=True))
        self._update_label(entry)
        return entry

    @staticmethod
    def _ellipse_roi(scene: list[QPointF]):
        p = np.array([[q.x(), q.y()] for q in scene])
        centre = (p[0] + p[1]) / 2.0
        a = float(np.linalg.norm(p[1] - p[0])) / 2.0
        b = float(np.linalg.norm(p[3] - p[2])) / 2.0
        angle = math.degrees(math.atan2(p[1][1] - p[0][1], p[1][0] - p[0][0]))
        roi = pg.EllipseROI((centre[0] - a, centre[1] - b), (max(2 * a, 1e-3), max(2 * b, 1e-3)),
                            pen=MEASURE_PEN)
        if abs(angle) > 1e-6:
            roi.setAngle(angle, center=(0.5, 0.5))
        return roi

    def _points_of(self, entry: _Drawn) -> list[QPointF]:
        kind = entry.measurement.kind
        parts = entry.parts
        if kind in ("length", "cobb", "angle", "polygon", "freehand"):
            return [part.mapToParent(h.pos()) for part in parts for h in part.getHandles()]
        roi = parts[0]
        w, h = roi.size().x(), roi.size().y()
        if kind == "rectangle":
            return [roi.mapToParent(QPointF(0, 0)), roi.mapToParent(QPointF(w, h))]
        return [roi.mapToParent(QPointF(0, h / 2)), roi.mapToParent(QPointF(w, h / 2)),
                roi.mapToParent(QPointF(w / 2, 0)), roi.mapToParent(QPointF(w / 2, h))]

    def _update_label(self, entry: _Drawn, live: bool = False) -> None:
        m = entry.measurement
        if live:
            try:
                m = Measurement(m.kind, self._to_stored(self._points_of(entry)), frame=m.frame,
                                uid=m.uid)
            except ValueError:
                return
        text = self.values(m).text()
        if entry.measurement.label:
            text = f"{entry.measurement.label}\n{text}"
        entry.label.setText(text)
        bounds = entry.parts[0].mapRectToParent(entry.parts[0].boundingRect())
        for part in entry.parts[1:]:
            bounds = bounds.united(part.mapRectToParent(part.boundingRect()))
        entry.label.setPos(bounds.right(), bounds.top())

    def _on_edited(self, entry: _Drawn) -> None:
        try:
            entry.measurement.points = Measurement(
                entry.measurement.kind, self._to_stored(self._points_of(entry))).points
        except ValueError:
            return
        self._save(entry.measurement)
        self._update_label(entry)

    # -- the drag tools -------------------------------------------------------------------------
    def drag(self, tool: str, start: QPointF, now: QPointF, finished: bool) -> None:
        """Follow a left drag of a measurement tool (scene coordinates)."""
        box = self.viewport.box
        if self._dragging is None:
            self._path = [(start.x(), start.y())]
            if tool in ("length", "angle", "cobb"):
                item = pg.LineSegmentROI([start, now], pen=PENDING_PEN, movable=False)
            elif tool == "rectangle":
                item = pg.RectROI(start, [1e-3, 1e-3], pen=PENDING_PEN, movable=False)
            elif tool == "ellipse":
                item = pg.EllipseROI(start, [1e-3, 1e-3], pen=PENDING_PEN, movable=False)
            else:
                item = pg.PlotCurveItem(pen=PENDING_PEN)
            box.addItem(item)
            self._dragging = [item]
        item = self._dragging[0]
        x0, y0 = min(start.x(), now.x()), min(start.y(), now.y())
        w, h = abs(now.x() - start.x()) or 1e-3, abs(now.y() - start.y()) or 1e-3
        if isinstance(item, pg.LineSegmentROI):
            item.movePoint(item.getHandles()[1], now, finish=False)
        elif isinstance(item, pg.ROI):
            item.setPos((x0, y0), update=False)
            item.setSize((w, h))
        else:
            step = FREEHAND_STEP * min(self._geometry()[1:3])
            last = self._path[-1]
            if math.hypot(now.x() - last[0], now.y() - last[1]) >= step:
                self._path.append((now.x(), now.y()))
                xs, ys = zip(*self._path, strict=True)
                item.setData(np.array(xs), np.array(ys))
        if not finished:
            return
        self._remove_dragging()
        self._finish(tool, start, now)

    def _finish(self, tool: str, start: QPointF, now: QPointF) -> None:
        if tool in ("angle", "cobb"):
            if self._pending is None:
                # First arm (angle) or first endplate line (Cobb): wait for the second drag.
                self._pending = [(start.x(), start.y()), (now.x(), now.y())]
                self._pending_item = pg.PlotCurveItem(
                    x=np.array([start.x(), now.x()]), y=np.array([start.y(), now.y()]),
                    pen=MEASURE_PEN)
                self.viewport.box.addItem(self._pending_item)
                return
            first = [QPointF(*p) for p in self._pending]
            self._cancel_pending()
            scene = first + ([now] if tool == "angle" else [start, now])
        elif tool == "ellipse":
            x0, x1 = sorted((start.x(), now.x()))
            y0, y1 = sorted((start.y(), now.y()))
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            scene = [QPointF(x0, cy), QPointF(x1, cy), QPointF(cx, y0), QPointF(cx, y1)]
        elif tool == "freehand":
            path = self._path[:: max(1, len(self._path) // MAX_FREEHAND_POINTS + 1)]
            scene = [QPointF(*p) for p in path]
        else:
            scene = [start, now]
        try:
            plane = self.viewport.state.current
            m = Measurement(tool, self._to_stored(scene), sop_uid=plane.instance.sop_uid,
                            frame=plane.frame, instance_ref=plane.instance.id)
        except ValueError:
            return  # e.g. a freehand drag too short to enclose anything
        if self._is_degenerate(m):
            return
        self.add(m)

    # -- the polygon (click) tool -------------------------------------------------------------
    def polygon_in_progress(self) -> bool:
        """Return whether a polygon has vertices but is not closed yet."""
        return bool(self._vertices)

    def click_polygon(self, at: QPointF, double: bool) -> None:
        """Add a vertex where clicked (scene coordinates); a double click closes the polygon."""
        if double:
            # The double click's first press and release already added its vertex.
            if self._vertices:
                self.close_polygon()
            return
        self._vertices.append(QPointF(at))
        if self._vertices_item is None:
            self._vertices_item = pg.PlotDataItem(pen=PENDING_PEN, symbol="o", symbolSize=5,
                                                  symbolPen=MEASURE_PEN, symbolBrush=None)
            self.viewport.box.addItem(self._vertices_item)
        xs = [p.x() for p in self._vertices] + [self._vertices[0].x()]
        ys = [p.y() for p in self._vertices] + [self._vertices[0].y()]
        self._vertices_item.setData(np.array(xs), np.array(ys))

    def close_polygon(self) -> bool:
        """Close the polygon being clicked into a measurement; return whether one was made."""
        scene = _without_repeats(self._vertices)
        self.cancel_polygon()
        if len(scene) < 3:
            return False
        plane = self.viewport.state.current
        m = Measurement("polygon", self._to_stored(scene), sop_uid=plane.instance.sop_uid,
                        frame=plane.frame, instance_ref=plane.instance.id)
        if self._is_degenerate(m):
            return False
        self.add(m)
        return True

    def cancel_polygon(self) -> None:
        """Abandon the polygon being clicked."""
        if self._vertices_item is not None:
            self.viewport.box.removeItem(self._vertices_item)
        self._vertices, self._vertices_item = [], None

    @staticmethod
    def _is_degenerate(m: Measurement) -> bool:
        pts = np.asarray(m.points)
        return float(np.ptp(pts[:, 0])) + float(np.ptp(pts[:, 1])) < 1e-6

    def add(self, m: Measurement) -> None:
        """Add a measurement to the plane on screen, store it and draw it."""
        index = self.viewport.state.index
        self._by_plane.setdefault(index, []).append(m)
        self._save(m)
        entry = self._draw(m)
        self._drawn.setdefault(index, []).append(entry)

    def _remove_dragging(self) -> None:
        for item in self._dragging or ():
            self.viewport.box.removeItem(item)
        self._dragging = None

    def _cancel_pending(self) -> None:
        if self._pending_item is not None:
            self.viewport.box.removeItem(self._pending_item)
        self._pending, self._pending_item = None, None

    # -- store ------------------------------------------------------------------------------------
    def _save(self, m: Measurement) -> None:
        if not self.library_path or m.instance_ref is None:
            return
        from medviewer.measurements.store import add_measurement
        from medviewer.store import Library

        with Library(self.library_path) as library:
            add_measurement(library, m.instance_ref, m)

    def delete_last(self) -> bool:
        """Delete the newest measurement of the plane on screen; return whether there was one."""
        index = self.viewport.state.index
        found = self._by_plane.get(index)
        if not found:
            return False
        self.delete(found[-1])
        return True

    def delete(self, m: Measurement) -> None:
        """Delete one measurement from the library and the screen."""
        for plane, items in self._by_plane.items():
            if m in items:
                items.remove(m)
                for entry in list(self._drawn.get(plane, ())):
                    if entry.measurement is m:
                        for part in (*entry.parts, entry.label):
                            self.viewport.box.removeItem(part)
                        self._drawn[plane].remove(entry)
        if self.library_path and m.id is not None:
            from medviewer.measurements.store import delete_measurement
            from medviewer.store import Library

            with Library(self.library_path) as library:
                delete_measurement(library, m.id)

    def delete_plane(self) -> int:
        """Delete every measurement of the plane on screen; return how many."""
        items = list(self._by_plane.get(self.viewport.state.index, ()))
        for m in items:
            self.delete(m)
        return len(items)


def _without_repeats(points: list[QPointF]) -> list[QPointF]:
    """Drop vertices that repeat the one before (a double click lands on the last vertex)."""
    kept: list[QPointF] = []
    for p in points:
        if not kept or math.hypot(p.x() - kept[-1].x(), p.y() - kept[-1].y()) > 1e-6:
            kept.append(p)
    return kept

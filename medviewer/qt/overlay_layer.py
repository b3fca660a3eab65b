"""A heatmap layer over a viewport's image: viridis, colour bar, opacity, threshold, PNG export.

The layer draws a map computed on the image as it opens (original
orientation) and turns it with the viewport's rotation and flips, so it stays
on the anatomy it belongs to.  It remembers which plane (file and frame) the
map was computed on and hides itself on any other plane.  A dashed outline
marks the part of the image the model saw (its centre crop) when that is not
all of it.  GUI thread only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QWidget

from medviewer.explain.render import FADE, NOTE

OUTLINE_COLOUR = QColor(201, 162, 39)


def viridis_rgba(threshold: float = 0.0, fade: float = FADE) -> np.ndarray:
    """Return the (256, 4) uint8 LUT: viridis, clear below ``threshold``, fading in over ``fade``."""
    lut = pg.colormap.get("viridis").getLookupTable(0.0, 1.0, 256, alpha=False)
    values = np.linspace(0.0, 1.0, 256)
    alpha = np.clip(values / fade, 0.0, 1.0) if fade > 0 else np.ones(256)
    alpha[values < threshold] = 0.0
    return np.concatenate([lut, np.round(alpha * 255).astype(np.uint8)[:, None]], axis=1)


def paint_colour_bar(painter: QPainter, rect: QRectF, *, title: str = "", threshold: float = 0.0,
                     opacity: float = 1.0) -> None:
    """Paint the legend (title, viridis bar as seen over mid grey, 0 / 0.5 / 1 ticks) into ``rect``."""
    painter.save()
    painter.setRenderHint(QPainter.Antialiasing, False)
    painter.fillRect(rect, QColor(20, 22, 26, 215))
    font = QFont()
    font.setPointSizeF(8.5)
    painter.setFont(font)
    metrics = painter.fontMetrics()
    line = metrics.height()
    # The title wraps onto as many lines as it needs (at most 5); the bar takes the rest.
    bound = painter.boundingRect(QRectF(rect.left() + 5, rect.top() + 3, rect.width() - 10, 5 * line),
                                 Qt.TextWordWrap | Qt.AlignLeft | Qt.AlignTop, title)
    title_h = min(bound.height(), 5 * line)
    painter.setPen(QColor(235, 235, 235))
    painter.drawText(QRectF(rect.left() + 5, rect.top() + 3, rect.width() - 10, title_h),
                     Qt.TextWordWrap | Qt.AlignLeft | Qt.AlignTop, title)
    bar = QRectF(rect.left() + 8, rect.top() + title_h + 0.5 * line + 6, 14,
                 rect.height() - title_h - 1.5 * line - 14)
    lut = viridis_rgba(threshold)
    gradient = QLinearGradient(bar.bottomLeft(), bar.topLeft())
    shown = max(opacity, 0.75)  # the bar stays readable at low overlay opacity
    for i in range(0, 256, 15):
        a = lut[i, 3] / 255.0 * shown
        colour = [int(round(128 * (1 - a) + c * a)) for c in lut[i, :3]]
        gradient.setColorAt(i / 255.0, QColor(*colour))
    painter.fillRect(bar, gradient)
    painter.setPen(QColor(220, 220, 220))
    for value, text in ((1.0, "1 high"), (0.5, "0.5"), (0.0, "0 low")):
        y = bar.bottom() - value * bar.height()
        painter.drawLine(QPointF(bar.right(), y), QPointF(bar.right() + 4, y))
        painter.drawText(QPointF(bar.right() + 7, y + metrics.ascent() / 2 - 1), text)
    if threshold > 0:
        y = bar.bottom() - threshold * bar.height()
        painter.setPen(QPen(QColor(255, 255, 255), 2))
        painter.drawLine(QPointF(bar.left() - 4, y), QPointF(bar.right() + 2, y))
    painter.restore()


RIGHT_MARKER_STRIP = 34  # canvas margin + the widest edge marker letter + a gap


class ColourBarWidget(QWidget):
    """The overlay's legend, floating over the right edge of a viewport's canvas."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WA_TransparentForMouseEvents)
        self.title = ""
        self.threshold = 0.0
        self.opacity = 1.0
        self.hide()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt naming
        painter = QPainter(self)
        paint_colour_bar(painter, QRectF(self.rect()), title=self.title, threshold=self.threshold,
                         opacity=self.opacity)
        painter.end()


def transform_like_viewport(array: np.ndarray, rotation: int, flip_horizontal: bool,
                            flip_vertical: bool) -> np.ndarray:
    """Turn an image-oriented array as the viewport turns its frame (same order: rotate, then flip)."""
    turns = (int(rotation) // 90) % 4
    if turns:
        array = np.rot90(array, k=-turns)
    if flip_horizontal:
        array = array[:, ::-1]
    if flip_vertical:
        array = array[::-1]
    return np.ascontiguousarray(array)


class OverlayLayer(QObject):
    """A heatmap over one :class:`~medviewer.qt.viewport_widget.ViewportWidget`.

    Signals
    -------
    sig_changed()
        The map, its visibility, opacity or threshold changed.
    """

    sig_changed = Signal()

    def __init__(self, viewport) -> None:
        super().__init__(viewport)
        self.viewport = viewport
        self.item = pg.ImageItem()
        self.item.setZValue(10)  # above the image, below measurements (added later, same z)
        self.item.setVisible(False)
        viewport.box.addItem(self.item)
        self.outline = QGraphicsRectItem()
        pen = QPen(OUTLINE_COLOUR, 1.5, Qt.DashLine)
        pen.setCosmetic(True)
        self.outline.setPen(pen)
        self.outline.setZValue(11)
        self.outline.setVisible(False)
        viewport.box.addItem(self.outline)
        self.legend = ColourBarWidget(viewport.view)
        self.image_map: np.ndarray | None = None
        self.seen: np.ndarray | None = None
        self.title = ""
        self.plane_key: tuple | None = None
        self.opacity = 0.5
        self.threshold = 0.0
        self.enabled = True
        self._shown: np.ndarray | None = None
        viewport.sig_plane_shown.connect(lambda _index: self.refresh())
        # Hide at once when another plane is chosen (its pixels may decode later).
        viewport.state.connect("series_changed", self._hide_if_stale)
        viewport.state.connect("index_changed", lambda index: self._hide_if_stale())
        viewport.box.sigRangeChanged.connect(lambda *_: self.legend.isVisible() and self._place_legend())
        viewport.view.installEventFilter(self)

    # -- public API ---------------------------------------------------------------------------
    def set_map(self, image_map: np.ndarray, *, title: str = "", plane_key: tuple | None = None,
                seen: np.ndarray | None = None) -> None:
        """Show a map (rows, cols) in [0, 1] computed on the plane ``plane_key`` (current plane if None)."""
        self.image_map = np.clip(np.asarray(image_map, dtype=np.float32), 0.0, 1.0)
        self.seen = None if seen is None else np.asarray(seen, dtype=bool)
        self.title = title
        self.plane_key = plane_key if plane_key is not None else self.current_plane_key()
        self.refresh()

    def clear(self) -> None:
        """Forget the map."""
        self.image_map = self.seen = self.plane_key = None
        self.refresh()

    def set_opacity(self, opacity: float) -> None:
        """Set the overlay's opacity (0..1)."""
        self.opacity = float(np.clip(opacity, 0.0, 1.0))
        self.item.setOpacity(self.opacity)
        self.legend.opacity = self.opacity
        self.legend.update()
        self.sig_changed.emit()

    def set_threshold(self, threshold: float) -> None:
        """Leave values below ``threshold`` (0..1) uncoloured."""
        self.threshold = float(np.clip(threshold, 0.0, 1.0))
        self.item.setLookupTable(viridis_rgba(self.threshold))
        self.legend.threshold = self.threshold
        self.legend.update()
        self.sig_changed.emit()

    def set_enabled(self, enabled: bool) -> None:
        """Show or hide the overlay (the map is kept)."""
        self.enabled = bool(enabled)
        self.refresh()

    def toggle(self) -> None:
        """Flip :meth:`set_enabled`."""
        self.set_enabled(not self.enabled)

    @property
    def visible(self) -> bool:
        """Whether the heatmap is on screen now."""
        return self.item.isVisible()

    def displayed_map(self) -> np.ndarray | None:
        """Return the map as drawn (turned like the viewport's frame), or None when hidden."""
        return self._shown if self.visible else None

    def current_plane_key(self) -> tuple | None:
        """Return (file location, frame) of the viewport's current plane."""
        plane = self.viewport.state.current
        return None if plane is None else (plane.instance.location, plane.frame)

    # -- drawing ------------------------------------------------------------------------------
    def _hide_if_stale(self) -> None:
        if self.visible and self.plane_key != self.current_plane_key():
            self.refresh()

    def refresh(self) -> None:
        """Redraw for the viewport's current plane, orientation and geometry."""
        viewport = self.viewport
        state = viewport.state
        show = (self.enabled and self.image_map is not None and viewport._frame is not None
                and viewport.image_item.image is not None
                and self.plane_key == self.current_plane_key())
        if show:
            shown = transform_like_viewport(self.image_map, state.rotation, state.flip_horizontal,
                                            state.flip_vertical)
            show = shown.shape == viewport._frame.shape[:2]  # a map of another image never shows
        if not show:
            self._shown = None
            self.item.setVisible(False)
            self.outline.setVisible(False)
            self.legend.hide()
            self.sig_changed.emit()
            return
        self._shown = shown
        self.item.setImage(shown, autoLevels=False, levels=(0.0, 1.0))
        self.item.setLookupTable(viridis_rgba(self.threshold))
        self.item.setOpacity(self.opacity)
        image = viewport.image_item
        rect = image.mapRectToParent(image.boundingRect())
        self.item.setRect(rect)
        self.item.setVisible(True)
        self._place_outline(rect, shown.shape, state)
        self.legend.title = self.title
        self.legend.threshold, self.legend.opacity = self.threshold, self.opacity
        self._place_legend()
        self.legend.show()
        self.legend.raise_()
        self.legend.update()
        self.sig_changed.emit()

    def _place_outline(self, rect: QRectF, shape: tuple[int, int], state) -> None:
        if self.seen is None or self.seen.all() or not self.seen.any():
            self.outline.setVisible(False)
            return
        seen = transform_like_viewport(self.seen, state.rotation, state.flip_horizontal, state.flip_vertical)
        rows, cols = np.flatnonzero(seen.any(axis=1)), np.flatnonzero(seen.any(axis=0))
        sx, sy = rect.width() / shape[1], rect.height() / shape[0]
        self.outline.setRect(QRectF(rect.left() + cols[0] * sx, rect.top() + rows[0] * sy,
                                    (cols[-1] + 1 - cols[0]) * sx, (rows[-1] + 1 - rows[0]) * sy))
        self.outline.setVisible(True)

    def _place_legend(self) -> None:
        view = self.viewport.view.rect()
        width = 104
        height = int(min(260, max(150, view.height() * 0.42)))
        x = view.width() - width - 10
        try:
            # Beside the image when the canvas has room there, so the legend hides no anatomy.
            shown = self.item.mapRectToParent(self.item.boundingRect())
            on_screen = self.viewport.box.mapViewToDevice(shown)
            right = (on_screen.boundingRect() if hasattr(on_screen, "boundingRect") else on_screen).right()
            if right + width + 16 <= view.width():
                x = int(right) + 8
        except Exception:  # noqa: BLE001 - before the first layout the mapping may be undefined
            pass
        # Never over the right edge's orientation marker (it sits mid-height in a strip of
        # about RIGHT_MARKER_STRIP pixels): a reader must always see which side is which.
        x = min(x, view.width() - width - RIGHT_MARKER_STRIP)
        self.legend.setGeometry(x, (view.height() - height) // 2, width, height)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt naming
        from PySide6.QtCore import QEvent

        if event.type() == QEvent.Resize and self.legend.isVisible():
            self._place_legend()
        return False

    # -- export -------------------------------------------------------------------------------
    def export_png(self, path: str | Path, *, legend: bool = True) -> tuple[int, int]:
        """Write the image as displayed (window, orientation) with the overlay; return (width, height).

        The image part has the displayed frame's pixel size; ``legend`` adds a
        colour-bar strip on the right.

        Raises
        ------
        RuntimeError
            Nothing is shown, or the file cannot be written.
        """
        base = self.viewport.image_item.getPixmap()
        if base is None or base.isNull() or self._shown is None:
            raise RuntimeError("no image with an overlay is shown")
        overlay = self.item.getPixmap()
        cols, rows = base.width(), base.height()
        strip = max(120, cols // 5) if legend else 0
        canvas = QImage(cols + strip, rows, QImage.Format_RGB32)
        canvas.fill(QColor(20, 22, 26))
        painter = QPainter(canvas)
        painter.drawPixmap(0, 0, base)
        painter.setOpacity(self.opacity)
        painter.drawPixmap(0, 0, overlay)
        painter.setOpacity(1.0)
        if self.outline.isVisible():
            box = self.outline.rect()
            rect = self.item.mapRectToParent(self.item.boundingRect())
            sx, sy = cols / rect.width(), rows / rect.height()
            pen = QPen(OUTLINE_COLOUR, 1, Qt.DashLine)
            painter.setPen(pen)
            painter.drawRect(QRectF((box.left() - rect.left()) * sx, (box.top() - rect.top()) * sy,
                                    box.width() * sx - 1, box.height() * sy - 1))
        if legend:
            note_h = min(rows // 3, 5 * painter.fontMetrics().height())
            paint_colour_bar(painter, QRectF(cols, 0, strip, rows - note_h), title=self.title,
                             threshold=self.threshold, opacity=self.opacity)
            painter.setPen(QColor(224, 184, 74))
            painter.drawText(QRectF(cols + 5, rows - note_h, strip - 8, note_h),
                             Qt.TextWordWrap | Qt.AlignLeft | Qt.AlignBottom, NOTE)
        painter.end()
        if not canvas.save(str(path), "PNG"):
            raise RuntimeError(f"could not write {path}")
        return canvas.width(), canvas.height()

"""Corner text, orientation markers and the scale bar, painted in the canvas's own pass.

The text used to be four QLabels over the canvas, each a quarter of it, each with
a drop-shadow effect: every scrolled slice re-rendered and blurred four
offscreen buffers (issue 19: p50 10.9 ms, 4.2 ms without the shadows).  Here each
block of text is rendered once into a small pixmap on a dark backing (legible
over bone, as an outline would be) and re-rendered only when its text changes;
each frame blits the pixmaps in the view's ``drawForeground``, after the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen, QPixmap

TEXT_COLOR = QColor(235, 235, 235)
MARKER_COLOR = QColor(255, 214, 10)
BACKING = QColor(0, 0, 0, 165)
MARGIN = 6  # pixels between a block and the edge of the canvas
PAD = 3  # pixels between text and the edge of its backing

CORNERS = ("tl", "tr", "bl", "br")
EDGES = ("left", "right", "top", "bottom")


@dataclass
class _Block:
    text: str
    pixmap: QPixmap | None


class OverlayPainter:
    """Hold the overlay's text and paint it (GUI thread only).

    Blocks are named: the corners ``tl``, ``tr``, ``bl``, ``br`` and the edge
    markers ``left``, ``right``, ``top``, ``bottom``.
    """

    def __init__(self) -> None:
        self.font = QFont()
        self.font.setPointSize(10)
        self.marker_font = QFont()
        self.marker_font.setPointSize(13)
        self.marker_font.setBold(True)
        self._blocks: dict[str, _Block] = {}
        self.scale_bar: tuple[float, str] | None = None  # (length in screen pixels, label)
        self._scale_label: _Block | None = None
        self.visible = True

    def set_text(self, name: str, text: str) -> bool:
        """Set one block's text; return whether it changed (and so needs a repaint)."""
        block = self._blocks.get(name)
        if block is not None and block.text == text:
            return False
        self._blocks[name] = _Block(text, None)
        return True

    def text(self, name: str) -> str:
        """Return one block's text (for tests and the screenshot check)."""
        block = self._blocks.get(name)
        return block.text if block else ""

    def set_scale_bar(self, bar: tuple[float, str] | None) -> bool:
        """Set the scale bar as (screen pixels, label), or hide it; return whether it changed."""
        if bar is not None:
            bar = (round(bar[0]), bar[1])
        if bar == self.scale_bar:
            return False
        self.scale_bar = bar
        if bar is not None and (self._scale_label is None or self._scale_label.text != bar[1]):
            self._scale_label = _Block(bar[1], None)
        return True

    def block_rect(self, name: str, width: int, height: int) -> QRectF | None:
        """Return where a block is painted in a ``width`` x ``height`` canvas (None: not shown)."""
        block = self._blocks.get(name)
        if not self.visible or block is None or not block.text:
            return None
        size = self._pixmap(name, block, 1.0).deviceIndependentSize()
        x, y = _place(name, size.width(), size.height(), width, height)
        return QRectF(x, y, size.width(), size.height())

    # -- painting --------------------------------------------------------------------------------
    def paint(self, painter: QPainter, width: int, height: int, ratio: float) -> None:
        """Paint every block into a canvas of ``width`` x ``height`` device-independent pixels."""
        if not self.visible:
            return
        for name, block in self._blocks.items():
            if not block.text:
                continue
            pixmap = self._pixmap(name, block, ratio)
            size = pixmap.deviceIndependentSize()
            x, y = _place(name, size.width(), size.height(), width, height)
            painter.drawPixmap(QPointF(x, y), pixmap)
        if self.scale_bar is not None:
            self._paint_scale_bar(painter, width, height, ratio)

    def _pixmap(self, name: str, block: _Block, ratio: float) -> QPixmap:
        if block.pixmap is not None and block.pixmap.devicePixelRatio() == ratio:
            return block.pixmap
        marker = name in EDGES
        font = self.marker_font if marker else self.font
        metrics = QFontMetrics(font)
        lines = block.text.split("\n")
        text_w = max(metrics.horizontalAdvance(line) for line in lines)
        line_h = metrics.lineSpacing()
        w, h = text_w + 2 * PAD, line_h * len(lines) + 2 * PAD
        pixmap = QPixmap(max(1, round(w * ratio)), max(1, round(h * ratio)))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(Qt.transparent)
        p = QPainter(pixmap)
        p.setRenderHint(QPainter.TextAntialiasing)
        p.setPen(Qt.NoPen)
        p.setBrush(BACKING)
        p.drawRoundedRect(QRectF(0, 0, w, h), 3, 3)
        p.setFont(font)
        p.setPen(MARKER_COLOR if marker else TEXT_COLOR)
        right_aligned = name in ("tr", "br")
        for i, line in enumerate(lines):
            x = PAD + (text_w - metrics.horizontalAdvance(line) if right_aligned else 0)
            p.drawText(QPointF(x, PAD + i * line_h + metrics.ascent()), line)
        p.end()
        block.pixmap = pixmap
        return pixmap

    def _paint_scale_bar(self, painter: QPainter, width: int, height: int, ratio: float) -> None:
        length, _label = self.scale_bar
        label = self._pixmap("scale", self._scale_label, ratio)
        size = label.deviceIndependentSize()
        # Above the bottom marker, centred: clear of the corner text in both bottom corners.
        y = height - MARGIN - 30
        x0 = (width - length) / 2.0
        painter.save()
        painter.setRenderHint(QPainter.Antialiasing, False)
        for color, thick in ((QColor(0, 0, 0, 200), 4), (TEXT_COLOR, 2)):
            painter.setPen(QPen(color, thick))
            painter.drawLine(QPointF(x0, y), QPointF(x0 + length, y))
            for x in (x0, x0 + length / 2.0, x0 + length):
                tick = 6 if x != x0 + length / 2.0 else 4
                painter.drawLine(QPointF(x, y - tick), QPointF(x, y))
        painter.restore()
        painter.drawPixmap(QPointF(x0 + length + 6, y - size.height() / 2.0), label)


def _place(name: str, w: float, h: float, width: int, height: int) -> tuple[float, float]:
    if name == "tl":
        return MARGIN, MARGIN
    if name == "tr":
        return width - MARGIN - w, MARGIN
    if name == "bl":
        return MARGIN, height - MARGIN - h
    if name == "br":
        return width - MARGIN - w, height - MARGIN - h
    if name == "left":
        return MARGIN, (height - h) / 2.0
    if name == "right":
        return width - MARGIN - w, (height - h) / 2.0
    if name == "top":
        return (width - w) / 2.0, MARGIN
    return (width - w) / 2.0, height - MARGIN - h  # bottom


class CanvasView(pg.GraphicsView):
    """pyqtgraph's view with the overlay painted in the same pass as the image.

    Signals
    -------
    sig_mouse_moved(QPointF)
        Scene position of every mouse move, and ``None`` when the mouse leaves.
        (The scene's own signal drops moves that come faster than 60 a second,
        so a probe would miss where the mouse stopped.)
    """

    sig_mouse_moved = Signal(object)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.overlay = OverlayPainter()

    def mouseMoveEvent(self, ev) -> None:  # noqa: N802 - Qt naming
        self.sig_mouse_moved.emit(self.mapToScene(ev.position().toPoint()))
        super().mouseMoveEvent(ev)

    def leaveEvent(self, ev) -> None:  # noqa: N802 - Qt naming
        self.sig_mouse_moved.emit(None)
        super().leaveEvent(ev)

    def drawForeground(self, painter: QPainter, rect) -> None:  # noqa: N802 - Qt naming
        super().drawForeground(painter, rect)
        painter.save()
        painter.resetTransform()  # viewport pixels, not scene units
        viewport = self.viewport()
        self.overlay.paint(painter, viewport.width(), viewport.height(),
                           viewport.devicePixelRatioF())
        painter.restore()

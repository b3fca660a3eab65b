"""The pyqtgraph canvas: an image in a view box with radiology mouse conventions.

Left drag changes window/level (or draws a measurement when a tool is on),
middle drag pans, right drag zooms, the wheel scrolls through the stack and
Ctrl+wheel zooms.  The canvas draws; the state lives in ``ViewerState``.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)


class RadiologyViewBox(pg.ViewBox):
    """A view box whose mouse gestures follow PACS viewers, not plotting tools.

    Signals
    -------
    sig_window_drag(float, float)
        Pixels moved horizontally and vertically during a window/level drag.
    sig_scroll(int)
        Wheel steps (positive = forward/next slice).
    sig_tool_drag(QPointF, QPointF, bool)
        Start and current scene positions of a measurement drag, and whether it finished.
    sig_tool_click(QPointF, bool)
        A left click of a click tool (the polygon), and whether it was a double click.
    """

    sig_window_drag = Signal(float, float)
    sig_scroll = Signal(int)
    sig_tool_drag = Signal(object, object, bool)
    sig_tool_click = Signal(object, bool)
    click_tools = ("polygon",)  # tools that take clicks, not drags

    def __init__(self) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.tool = "window"  # "window", "length" or "ellipse"
        self.setMouseEnabled(True, True)

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802 - Qt naming
        button = ev.button()
        if button == Qt.MouseButton.LeftButton:
            ev.accept()
            if self.tool == "window":
                delta = ev.pos() - ev.lastPos()
                self.sig_window_drag.emit(float(delta.x()), float(delta.y()))
            else:
                start = self.mapSceneToView(ev.buttonDownScenePos())
                now = self.mapSceneToView(ev.scenePos())
                self.sig_tool_drag.emit(start, now, bool(ev.isFinish()))
        elif button == Qt.MouseButton.MiddleButton:
            ev.accept()
            delta = self.mapToView(ev.pos()) - self.mapToView(ev.lastPos())
            self.translateBy(x=-delta.x(), y=-delta.y())
        elif button == Qt.MouseButton.RightButton:
            ev.accept()
            delta = ev.pos() - ev.lastPos()
            factor = 1.01 ** delta.y()
            center = self.mapToView(ev.buttonDownPos())
            self.scaleBy((factor, factor), center=center)
        else:
            ev.ignore()

    def mouseClickEvent(self, ev):  # noqa: N802 - Qt naming
        if ev.button() == Qt.MouseButton.LeftButton and self.tool in self.click_tools:
            ev.accept()
            self.sig_tool_click.emit(self.mapSceneToView(ev.scenePos()), bool(ev.double()))
        else:
            super().mouseClickEvent(ev)

    def wheelEvent(self, ev, axis=None):  # noqa: N802 - Qt naming
        modifiers = ev.modifiers()
        delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            factor = 0.9 if delta > 0 else 1.0 / 0.9
            self.scaleBy((factor, factor), center=self.mapToView(QPointF(ev.pos())))
        else:
            steps = 1 if delta < 0 else -1
            self.sig_scroll.emit(steps)
        ev.accept()

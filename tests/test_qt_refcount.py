"""Guard against Qt bindings that corrupt reference counts while painting.

PySide6 6.12.0 loses a reference to ``None`` on each QPainter call; on Python
3.11 the viewer aborted ("deallocating None") after a few thousand paints,
i.e. within minutes of scrolling.  This runs many paints in a subprocess and
checks the interpreter survives with ``None``'s count intact.
"""

from __future__ import annotations

import subprocess
import sys

PAINT_LOOP = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QRectF
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QApplication
app = QApplication([])
image = QImage(64, 64, QImage.Format_ARGB32)
before = sys.getrefcount(None)
for _ in range(20000):
    painter = QPainter(image)
    painter.setPen(QPen(QColor(1, 2, 3)))
    painter.setBrush(QBrush(QColor(1, 2, 3)))
    painter.drawRect(QRectF(0, 0, 10, 10))
    painter.end()
print(sys.getrefcount(None) - before)
"""


def test_painting_keeps_reference_counts():
    out = subprocess.run([sys.executable, "-c", PAINT_LOOP], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-500:]
    assert abs(int(out.stdout.strip())) < 1000

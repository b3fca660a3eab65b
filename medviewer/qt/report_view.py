"""Show a standalone HTML report (with inline SVG charts) in a QTextBrowser.

QTextBrowser renders a subset of HTML and no SVG: an inline chart would show as
its bare text ("0.00.20.40.60.81.0").  This view renders each ``<svg>`` element
with QtSvg to an image resource of the document and puts an ``<img>`` in its
place, so the app shows the same report as the saved file.
"""

from __future__ import annotations

import re

from PySide6.QtCore import QByteArray, QRectF, QSize, QUrl
from PySide6.QtGui import QColor, QImage, QPainter, QTextDocument
from PySide6.QtWidgets import QTextBrowser, QWidget

_SVG = re.compile(r"<svg\b.*?</svg>", re.DOTALL | re.IGNORECASE)
_SIZE = re.compile(r'\b(width|height)="(\d+(?:\.\d+)?)"')


def svg_to_image(svg: str, scale: float = 2.0) -> QImage:
    """Render one SVG document to an image (``scale`` times its size, for sharp text)."""
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    size = renderer.defaultSize()
    if size.isEmpty():
        size = QSize(520, 80)
    image = QImage(int(size.width() * scale), int(size.height() * scale),
                   QImage.Format_ARGB32_Premultiplied)
    image.fill(QColor(0, 0, 0, 0))
    painter = QPainter(image)
    renderer.render(painter, QRectF(0, 0, image.width(), image.height()))
    painter.end()
    return image


def split_svg(html: str) -> tuple[str, list[tuple[str, str, int, int]]]:
    """Replace inline SVGs by ``<img src="chart-N.png">``; return (html, [(name, svg, w, h)])."""
    charts: list[tuple[str, str, int, int]] = []

    def replace(match: re.Match) -> str:
        svg = match.group(0)
        opening = svg[:svg.index(">") + 1]
        sizes = {k: int(float(v)) for k, v in _SIZE.findall(opening)}
        name = f"chart-{len(charts) + 1}.png"
        charts.append((name, svg, sizes.get("width", 520), sizes.get("height", 80)))
        # A block of its own: an inline image would flow into the paragraph before it.
        return f'<p><img src="{name}" width="{sizes.get("width", 520)}" ' \
               f'height="{sizes.get("height", 80)}"></p>'

    return _SVG.sub(replace, html), charts


class ReportBrowser(QTextBrowser):
    """A QTextBrowser that shows a standalone HTML report, its SVG charts drawn as images."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # The report is a paper-like document with its own dark-on-light styling.
        self.setStyleSheet("QTextBrowser { background: #fbfbfb; color: #1b1d21; }")
        self.charts: list[str] = []

    def set_report(self, html: str) -> None:
        """Show ``html``, with every inline SVG rendered as an image resource."""
        body, charts = split_svg(html)
        document = self.document()
        for name, svg, _w, _h in charts:
            document.addResource(QTextDocument.ImageResource, QUrl(name), svg_to_image(svg))
        self.charts = [name for name, *_ in charts]
        self.setHtml(body)

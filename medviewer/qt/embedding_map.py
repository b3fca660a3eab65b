"""The embedding map: the library's cases in 2-D, coloured by label, the query marked."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QDialog, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from medviewer.qt.workers import TaskRunner

# Colour-blind-safe categorical colours (Okabe-Ito), grey for unlabelled cases.
PALETTE = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178),
           (213, 94, 0), (204, 121, 167), (255, 255, 255)]
UNLABELLED = (120, 120, 120)


class EmbeddingMapDialog(QDialog):
    """Show an :class:`~medviewer.retrieval.search.EmbeddingMap`; clicking a point opens its case.

    ``compute(method, state)`` returns the map; it runs on a worker thread.
    """

    sig_open_case = Signal(int)

    def __init__(self, compute, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Embedding map")
        self.resize(820, 700)
        self.compute = compute
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Projection:", self))
        self.method = QComboBox(self)
        for name, key in (("PCA", "pca"), ("t-SNE", "tsne"), ("UMAP", "umap")):
            self.method.addItem(name, key)
        row.addWidget(self.method)
        self.status = QLabel("", self)
        row.addWidget(self.status, 1)
        layout.addLayout(row)
        self.plot = pg.PlotWidget(self)
        self.plot.setBackground("#121417")
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.setAspectLocked(True)
        self.legend = self.plot.addLegend(offset=(10, 10))
        layout.addWidget(self.plot, 1)
        self.hint = QLabel("Each point is a case; nearby points look alike to the model. "
                           "Click a point to open it. \u2605 = the current image.", self)
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint)
        self.runner = TaskRunner(self, message=self.status.setText)
        self.runner.sig_progress.connect(lambda f, s: self.status.setText(s or "Computing\u2026"))
        self.method.activated.connect(lambda _i: self.refresh())
        self.map = None
        self.refresh()

    def refresh(self) -> None:
        """Compute the projection off the GUI thread."""
        method = self.method.currentData()
        compute = self.compute
        self.status.setText("Computing\u2026")
        self.runner.start(lambda state: compute(method, state), self.show_map)

    def show_map(self, mapped) -> None:
        """Draw the points."""
        self.map = mapped
        self.plot.clear()
        self.legend.clear()
        groups = sorted({p for p in mapped.primary if p})
        colours = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(groups)}
        for group in groups + [""]:
            mask = np.array([p == group for p in mapped.primary])
            if not mask.any():
                continue
            colour = colours.get(group, UNLABELLED)
            scatter = pg.ScatterPlotItem(
                mapped.xy[mask, 0], mapped.xy[mask, 1], size=8, pen=None,
                brush=pg.mkBrush(*colour, 200), data=mapped.case_ids[mask],
                name=group or "unlabelled")
            scatter.sigClicked.connect(self._clicked)
            self.plot.addItem(scatter)
        if mapped.query_xy is not None:
            star = pg.ScatterPlotItem([mapped.query_xy[0]], [mapped.query_xy[1]], symbol="star",
                                      size=22, pen=pg.mkPen("w", width=1.5),
                                      brush=pg.mkBrush(255, 60, 60), name="this image")
            self.plot.addItem(star)
        self.status.setText(f"{len(mapped.case_ids)} cases, {mapped.method.upper()}")

    def _clicked(self, _item, points, _event=None) -> None:
        if len(points):
            self.sig_open_case.emit(int(points[0].data()))

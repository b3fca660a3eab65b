"""The Tools menu's measurement entries and the measurements list (kept out of the main window)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QLabel, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout)

from medviewer.qt.key_image_actions import add_key_image_actions

# Tool -> (menu text, key, what the status bar says about using it).
TOOLS = {
    "length": ("Measure length", "L", "Length: drag from end to end"),
    "angle": ("Measure angle", "N", "Angle: drag the first arm to the vertex, then drag from "
              "the vertex along the second arm"),
    "cobb": ("Measure Cobb angle", "Shift+N", "Cobb angle: drag a line along each endplate"),
    "rectangle": ("Rectangle ROI (mean / SD / min / max)", "B", "Rectangle ROI: drag corner to corner"),
    "ellipse": ("Ellipse ROI (mean / SD / min / max)", "E", "Ellipse ROI: drag its bounding box"),
    "freehand": ("Freehand ROI (mean / SD / min / max)", "D", "Freehand ROI: drag around the region"),
    "polygon": ("Polygon ROI (mean / SD / min / max)", "P",
                "Polygon ROI: click each vertex; double-click or Enter closes, Escape cancels"),
}
TOOL_HELP = {tool: help_text for tool, (_t, _k, help_text) in TOOLS.items()}


def add_measurement_actions(window, menu) -> None:
    """Add the measurement tools, deletion and the measurements list to a menu."""
    for tool, (text, key, _help) in TOOLS.items():
        window._action(menu, text, lambda _c=False, t=tool: window.set_tool(t), key)
    window._action(menu, "Delete the last measurement on this image",
                   lambda: window._on_active(lambda v: v.delete_last_measurement()), "Delete")
    window._action(menu, "Delete all measurements on this image",
                   lambda: window._on_active(lambda v: v.clear_measurements()), "Shift+Delete")
    window._action(menu, "Measurements\u2026", lambda: show_measurements(window), "Ctrl+M")
    add_key_image_actions(window, menu)


def show_measurements(window) -> None:
    """Open the list of the library's measurements."""
    if not window.library_path:
        window.statusBar().showMessage("Open a library first", 4000)
        return
    dialog = MeasurementsDialog(window.library_path, window)
    dialog.sig_changed_library = lambda: _redraw(window)
    dialog.open()
    window._measurements_dialog = dialog


def _redraw(window) -> None:
    # Measurements deleted or imported in the list: every viewport reads its series again.
    for viewport in window.viewports:
        if viewport.series is not None and viewport.state.planes:
            viewport.measurements.load(viewport.library_path, viewport.state.planes)
            viewport.measurements.show_plane(viewport.state.index)


class MeasurementsDialog(QDialog):
    """List every measurement of a library; delete, export as SR, import an SR."""

    def __init__(self, library_path: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Measurements")
        self.resize(860, 420)
        self.library_path = library_path
        self.sig_changed_library = lambda: None
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, 5, self)
        self.table.setHorizontalHeaderLabels(["Kind", "Values", "Label", "Series", "Image"])
        self.table.setSelectionBehavior(QTableWidget.SelectRows)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        layout.addWidget(self.table, 1)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.Close, self)
        self.delete_button = QPushButton("Delete", self)
        self.export_button = QPushButton("Export as DICOM SR\u2026", self)
        self.import_button = QPushButton("Import DICOM SR\u2026", self)
        for button in (self.delete_button, self.export_button, self.import_button):
            buttons.addButton(button, QDialogButtonBox.ActionRole)
        buttons.rejected.connect(self.reject)
        self.delete_button.clicked.connect(self.delete_selected)
        self.export_button.clicked.connect(self._choose_export)
        self.import_button.clicked.connect(self._choose_import)
        layout.addWidget(buttons)
        self.refresh()

    def refresh(self) -> None:
        """Read the library's measurements into the table."""
        from medviewer.measurements.store import list_measurements
        from medviewer.store import Library

        with Library(self.library_path) as library:
            rows = list_measurements(library)
        self._ids = [m.id for m, _l, _s in rows]
        self.table.setRowCount(len(rows))
        for r, (m, location, series) in enumerate(rows):
            points = ", ".join(f"({x:.0f}, {y:.0f})" for x, y in m.points[:4])
            cells = [m.kind, points + (" \u2026" if len(m.points) > 4 else ""), m.label,
                     series, location]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.UserRole, m.id)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.message.setText(f"{len(rows)} measurement(s)" if rows else
                             "No measurements yet: choose a tool in Tools and drag on an image.")
        self.delete_button.setEnabled(bool(rows))
        self.export_button.setEnabled(bool(rows))

    def delete_selected(self) -> int:
        """Delete the selected rows' measurements; return how many."""
        from medviewer.measurements.store import delete_measurement
        from medviewer.store import Library

        ids = sorted({self._ids[i.row()] for i in self.table.selectedIndexes()})
        with Library(self.library_path) as library:
            for measurement_id in ids:
                delete_measurement(library, measurement_id)
        self.refresh()
        self.sig_changed_library()
        return len(ids)

    def export_to(self, folder: str) -> list:
        """Write the measurements as TID 1500 SR files into a folder; say what was written."""
        from medviewer.errors import MedViewerError
        from medviewer.measurements.sr import export_report
        from medviewer.store import Library

        try:
            with Library(self.library_path) as library:
                files = export_report(library, folder)
        except MedViewerError as exc:
            self.message.setText(f"Not exported: {exc}")
            return []
        self.message.setText(f"Wrote {len(files)} SR file(s) to {folder}")
        return files

    def import_from(self, paths: list[str]) -> None:
        """Read SR measurement reports; say what came in and what did not."""
        from medviewer.errors import MedViewerError
        from medviewer.measurements.sr import import_report
        from medviewer.store import Library

        lines = []
        with Library(self.library_path) as library:
            for path in paths:
                try:
                    summary = import_report(library, path)
                except MedViewerError as exc:
                    lines.append(str(exc))
                    continue
                line = f"{summary.imported} imported, {summary.updated} updated"
                if summary.skipped:
                    line += f"; {len(summary.skipped)} skipped: {'; '.join(sorted(set(summary.skipped)))}"
                lines.append(line)
        self.refresh()
        self.message.setText("\n".join(lines))
        self.sig_changed_library()

    def _choose_export(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export measurements as DICOM SR")
        if folder:
            self.export_to(folder)

    def _choose_import(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Import DICOM SR measurement reports")
        if paths:
            self.import_from(paths)

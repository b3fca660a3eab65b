"""Small dialogs: the one way to show an unexpected error, and the shortcut cheat sheet."""

from __future__ import annotations

import logging

from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QMessageBox, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

log = logging.getLogger("medviewer")


def show_unexpected_error(parent: QWidget | None, message: str, detail: str) -> None:
    """Show an unexpected error once: a short message, the traceback under Details; log it."""
    log.error("%s\n%s", message, detail)
    box = QMessageBox(QMessageBox.Warning, "MedViewer", message, QMessageBox.Ok, parent)
    box.setInformativeText("The error was logged. Your library and saved work are unaffected.")
    box.setDetailedText(detail)
    box.open()


class ShortcutSheetDialog(QDialog):
    """List every action that has a keyboard shortcut, grouped by menu."""

    def __init__(self, rows: list[tuple[str, str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard and mouse")
        self.resize(560, 640)
        layout = QVBoxLayout(self)
        mouse = [("Mouse", "Left drag", "Window / level (or measure, with a tool on)"),
                 ("Mouse", "Middle drag", "Pan"), ("Mouse", "Right drag", "Zoom"),
                 ("Mouse", "Wheel", "Scroll through the stack"), ("Mouse", "Ctrl + wheel", "Zoom"),
                 ("Mouse", "Drop files or folders", "Import into the open library")]
        table = QTableWidget(len(rows) + len(mouse), 3, self)
        table.setHorizontalHeaderLabels(["Group", "Keys", "Action"])
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QTableWidget.NoEditTriggers)
        for r, (group, keys, text) in enumerate(rows + mouse):
            for c, value in enumerate((group, keys, text)):
                table.setItem(r, c, QTableWidgetItem(value))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(table)
        buttons = QDialogButtonBox(QDialogButtonBox.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.table = table

"""A DICOM SR document's text, readable: what opening or importing a report shows.

Basic, Enhanced and Comprehensive SR hold no pixels; instead of "no pixel data" the
reader sees the content tree as text (headings, text, codes, numbers with units),
through the same extraction the report import uses (``medviewer.reports.importers``).
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QLabel, QPlainTextEdit,
                               QVBoxLayout)

MAX_DOCUMENTS_SHOWN = 3  # an import of a hundred SR files must not open a hundred windows


def is_sr_text_document(path: str) -> bool:
    """Return whether a file is a text SR document (header read only)."""
    import pydicom

    from medviewer.reports.importers import SR_TEXT_CLASSES

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except Exception:  # noqa: BLE001 - anything unreadable is simply not an SR to show
        return False
    return str(ds.get("SOPClassUID", "")) in SR_TEXT_CLASSES


def add_sr_action(window, menu) -> None:
    """Add "Open DICOM SR report" to a menu."""
    window._action(menu, "Open DICOM SR report\u2026", lambda: choose_sr_document(window),
                   "Ctrl+Shift+O")


def choose_sr_document(window) -> None:
    """Ask for an SR file and show its text."""
    path, _ = QFileDialog.getOpenFileName(window, "Open DICOM SR report", str(Path.home()))
    if path:
        show_sr_document(window, path)


def show_sr_document(window, path: str) -> SRTextDialog:
    """Show an SR document's text in a window of its own (modeless: read beside the images)."""
    dialog = SRTextDialog(path, window)
    dialog.show()
    window._sr_dialogs = [d for d in getattr(window, "_sr_dialogs", []) if d.isVisible()]
    window._sr_dialogs.append(dialog)
    return dialog


class SRTextDialog(QDialog):
    """The title, kind and text content of one DICOM SR document."""

    def __init__(self, path: str, parent=None) -> None:
        super().__init__(parent)
        self.path = path
        self.setWindowTitle(f"Structured report \u2014 {os.path.basename(path)}")
        self.resize(620, 520)
        layout = QVBoxLayout(self)
        self.heading = QLabel(self)
        self.heading.setWordWrap(True)
        layout.addWidget(self.heading)
        self.text = QPlainTextEdit(self)
        self.text.setReadOnly(True)
        font = QFont(self.text.font())
        font.setPointSizeF(font.pointSizeF() * 1.15)  # read at arm's length, like a report
        self.text.setFont(font)
        layout.addWidget(self.text, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._read()

    def _read(self) -> None:
        import pydicom

        from medviewer.reports.importers import SR_TEXT_CLASSES, sr_text

        try:
            ds = pydicom.dcmread(self.path)
        except Exception as exc:  # noqa: BLE001 - shown in words; nothing is lost
            self.heading.setText(f"Cannot read {self.path}: {exc}")
            return
        kind = SR_TEXT_CLASSES.get(str(ds.get("SOPClassUID", "")))
        if kind is None:
            self.heading.setText(f"{self.path} is not a text structured report "
                                 "(Basic, Enhanced or Comprehensive SR).")
            return
        title_seq = ds.get("ConceptNameCodeSequence")
        title = str(title_seq[0].get("CodeMeaning", "")) if title_seq else "Report"
        date = str(ds.get("ContentDate", "") or ds.get("StudyDate", ""))
        when = f"{date[:4]}-{date[4:6]}-{date[6:8]}" if len(date) == 8 else date
        status = " \u00b7 ".join(str(v).title() for v in (ds.get("CompletionFlag"),
                                                          ds.get("VerificationFlag")) if v)
        self.heading.setText(f"<b>{title}</b><br>{kind}" + (f" \u00b7 {when}" if when else "")
                             + (f" \u00b7 {status}" if status else ""))
        self.text.setPlainText(sr_text(ds) or "(the report holds no text)")

"""The first-run page: what a new user can do before any library exists.

It fills the viewer area while no library is open, so a radiologist who has never
read the documentation sees the three ways in (the demo, a folder, a PACS) and the
libraries they used recently.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QPushButton, QSizePolicy, QVBoxLayout, QWidget)

from medviewer import __version__

# (signal name, title, explanation) of each way in, in the order shown.
CHOICES = (
    ("demo", "Open the demo library",
     "80 synthetic chest radiographs and 4 CT series with a small model: classify a case, "
     "see its similar cases and where the model looks. Ready in under a minute."),
    ("folder", "Import a folder\u2026",
     "DICOM files, DICOMDIRs and zip archives, or PNG/JPEG radiographs with a label table. "
     "Broken files are skipped with a reason; the rest loads."),
    ("pacs", "Query a PACS\u2026",
     "Search a DICOM or DICOMweb server by patient, date or modality and retrieve studies "
     "into a new library."),
)


class ChoiceButton(QPushButton):
    """A large button with a title and a line of explanation."""

    def __init__(self, title: str, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcomeChoice")
        self.setCursor(Qt.PointingHandCursor)
        self.setMinimumHeight(92)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 12, 18, 12)
        heading = QLabel(f"<b>{title}</b>", self)
        heading.setObjectName("welcomeChoiceTitle")
        detail = QLabel(text, self)
        detail.setObjectName("welcomeChoiceText")
        detail.setWordWrap(True)
        for label in (heading, detail):
            # Clicks on the labels belong to the button.
            label.setAttribute(Qt.WA_TransparentForMouseEvents)
            layout.addWidget(label)
        self.title = title


class WelcomePage(QWidget):
    """Shown in place of the viewports while no library is open.

    Signals
    -------
    sig_demo, sig_folder, sig_pacs
        The user chose one of the three ways in.
    sig_open_library(str)
        The user chose a recent library.
    """

    sig_demo = Signal()
    sig_folder = Signal()
    sig_pacs = Signal()
    sig_open_library = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcomePage")
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        column = QVBoxLayout()
        column.addStretch(1)
        title = QLabel(f"<span style='font-size:22pt'><b>MedViewer</b></span>"
                       f"&nbsp;&nbsp;<span style='color:#8a8f98'>{__version__}</span>", self)
        column.addWidget(title)
        subtitle = QLabel("Which past cases look like this one, and does the model see it the "
                          "way we do?", self)
        subtitle.setObjectName("welcomeSubtitle")
        subtitle.setWordWrap(True)
        column.addWidget(subtitle)
        column.addSpacing(14)
        self.buttons: dict[str, ChoiceButton] = {}
        for key, heading, text in CHOICES:
            button = ChoiceButton(heading, text, self)
            button.clicked.connect(getattr(self, f"sig_{key}").emit)
            self.buttons[key] = button
            column.addWidget(button)
            column.addSpacing(6)
        self.recent_title = QLabel("<b>Recent libraries</b>", self)
        column.addSpacing(8)
        column.addWidget(self.recent_title)
        self.recent = QListWidget(self)
        self.recent.setMaximumHeight(130)
        self.recent.itemActivated.connect(lambda item: self.sig_open_library.emit(item.data(Qt.UserRole)))
        column.addWidget(self.recent)
        note = QLabel("Drop files or folders anywhere in this window to import them. "
                      "F1 lists the keyboard shortcuts. Not for primary diagnosis.", self)
        note.setObjectName("welcomeNote")
        note.setWordWrap(True)
        column.addSpacing(8)
        column.addWidget(note)
        column.addStretch(2)
        holder = QFrame(self)
        holder.setLayout(column)
        holder.setMaximumWidth(640)
        holder.setMinimumWidth(420)
        outer.addWidget(holder, 4)
        outer.addStretch(1)

    def set_recent(self, libraries: list[str]) -> None:
        """List the recent libraries that still exist (the others are not offered)."""
        self.recent.clear()
        for path in libraries:
            if Path(path).is_file():
                item = QListWidgetItem(f"{Path(path).stem}    \u2014    {Path(path).parent}")
                item.setData(Qt.UserRole, path)
                item.setToolTip(path)
                self.recent.addItem(item)
        shown = self.recent.count() > 0
        self.recent.setVisible(shown)
        self.recent_title.setVisible(shown)

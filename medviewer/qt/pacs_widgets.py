"""Pieces of the PACS windows: their style additions, the message bar, the query form."""

from __future__ import annotations

import html

from PySide6.QtCore import QDate, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from medviewer.pacs import StudyQuery

# Addition to the app style: a message bar whose colour says whether something went wrong.
DIALOG_STYLE = """
QLabel#pacsMessage { padding: 6px 8px; border-radius: 3px; }
QLabel#pacsMessage[level="error"] { background: #4a2222; color: #ffd6cf; }
QLabel#pacsMessage[level="ok"] { background: #173a26; color: #c4eed3; }
QLabel#pacsMessage[level="info"] { background: #23262b; color: #d9dde3; }
"""
MODALITIES = ("Any", "CR", "DX", "CT", "MR", "US", "MG", "NM", "PT", "XA", "RF")


def sentence(text: str) -> str:
    """Return ``text`` with a capital first letter and a full stop."""
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?", "\u2026")) else ".")


class MessageBar(QLabel):
    """What happened, in bold, and what to do about it; hidden until there is something to say."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.setObjectName("pacsMessage")
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.hide()

    @property
    def level(self) -> str:
        """The last message's level: "info", "ok" or "error"."""
        return self.property("level") or ""

    def say(self, text: str, level: str = "info", hint: str = "") -> None:
        """Show ``text`` at ``level`` ("info", "ok", "error") with an optional ``hint``."""
        body = f"<b>{html.escape(sentence(text))}</b>"
        if hint:
            body += f"<br>{html.escape(sentence(hint))}"
        self.setText(body)
        self.setProperty("level", level)
        self.style().unpolish(self)  # the colour comes from the level property
        self.style().polish(self)
        self.show()


class StudyQueryForm(QGroupBox):
    """The fields of a study search (what :class:`StudyQuery` supports) and its button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Find studies", parent)
        self.patient_name = QLineEdit(self)
        self.patient_name.setPlaceholderText("e.g. DOE or DOE^JANE")
        self.patient_name.setToolTip("Matches names that start with what you type; "
                                     "* and ? are wildcards.")
        self.patient_id = QLineEdit(self)
        self.patient_id.setPlaceholderText("exact, or with * wildcards")
        self.accession = QLineEdit(self)
        self.accession.setPlaceholderText("exact, or with * wildcards")
        self.modality = QComboBox(self)
        self.modality.setEditable(True)
        self.modality.addItems(MODALITIES)
        self.any_date = QCheckBox("Any date", self)
        self.any_date.setChecked(True)
        today = QDate.currentDate()
        self.date_from = QDateEdit(today.addMonths(-1), self)
        self.date_to = QDateEdit(today, self)
        dates = QHBoxLayout()
        dates.addWidget(self.any_date)
        for text, edit in (("from", self.date_from), ("to", self.date_to)):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            dates.addWidget(QLabel(text, self))
            dates.addWidget(edit)
        dates.addStretch(1)
        self.any_date.toggled.connect(self._update_dates)
        self._update_dates()
        self.search_button = QPushButton("Search", self)
        self.search_button.setObjectName("primaryButton")
        grid = QGridLayout(self)
        for column, (label, field) in enumerate((("Patient name", self.patient_name),
                                                 ("Patient ID", self.patient_id),
                                                 ("Accession", self.accession))):
            grid.addWidget(QLabel(label, self), 0, 2 * column)
            grid.addWidget(field, 0, 2 * column + 1)
        grid.addWidget(QLabel("Modality", self), 1, 0)
        grid.addWidget(self.modality, 1, 1)
        grid.addWidget(QLabel("Study date", self), 1, 2)
        grid.addLayout(dates, 1, 3, 1, 3)
        grid.addWidget(self.search_button, 0, 6, 2, 1)
        for column in (1, 3, 5):
            grid.setColumnStretch(column, 1)

    def _update_dates(self) -> None:
        self.date_from.setEnabled(not self.any_date.isChecked())
        self.date_to.setEnabled(not self.any_date.isChecked())

    def study_query(self) -> StudyQuery:
        """Return the query the fields describe."""
        name = self.patient_name.text().strip()
        if name and not any(c in name for c in "*?"):
            name += "*"  # names match from the start, as in every PACS client
        date = ""
        if not self.any_date.isChecked():
            start, end = sorted((self.date_from.date(), self.date_to.date()))
            date = f"{start.toString('yyyyMMdd')}-{end.toString('yyyyMMdd')}"
        modality = self.modality.currentText().strip().upper()
        return StudyQuery(patient_id=self.patient_id.text().strip(), patient_name=name,
                          study_date=date, modality="" if modality == "ANY" else modality,
                          accession=self.accession.text().strip())

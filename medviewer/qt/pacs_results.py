"""The PACS window's results table and the words it uses for matches and retrieves."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from medviewer.pacs import StudyMatch

COLUMNS = ("Patient name", "Patient ID", "Date", "Modality", "Description", "Accession",
           "Series", "Images", "In library")
UID_ROLE = Qt.UserRole
SORT_ROLE = Qt.UserRole + 1
IN_LIBRARY = COLUMNS.index("In library")
DESCRIPTION = COLUMNS.index("Description")
MAX_REASONS = 8  # files listed by name when an import skips some; the rest are counted
SORT_ARROW = 18  # pixels the header's sort indicator needs beside the title
ALL_COLOUR = QColor("#7fd49b")


def person_name(value: str) -> str:
    """Return a DICOM PN (``DOE^JANE^^^``) the way it is read: ``DOE, JANE``."""
    parts = [p for p in value.split("=")[0].split("^") if p]
    return ", ".join(parts[:2]) + "".join(f" {p}" for p in parts[2:])


def study_date(value: str) -> str:
    """Return ``YYYYMMDD`` as ``YYYY-MM-DD`` (other text unchanged)."""
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:8]}"
    return value


def library_share(match: StudyMatch) -> tuple[str, int]:
    """Return how much of a study the library holds ("all", "part (n of m)", "none") and a rank."""
    if match.complete_in_library:
        return "all", 2
    if match.in_library:
        total = f" of {match.instances}" if match.instances else ""
        return f"part ({match.in_library}{total})", 1
    return "none", 0


def _count(value: int | None) -> tuple[str, int]:
    """Return a cell's text and sort key for a count the PACS may not have sent."""
    return ("", -1) if value is None else (str(value), value)


def _plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else words or word + 's'}"


def retrieve_summary(report, titles: dict[str, str]) -> tuple[str, bool]:
    """Describe a :class:`~medviewer.services.pacs.RetrieveReport` in plain words.

    Parameters
    ----------
    report : RetrieveReport
    titles : dict
        Study UID to a readable title (patient, date, description).

    Returns
    -------
    text : str
        One line per fact: retrieved, already present, imported, failed with reasons.
    failed : bool
        Whether anything failed.
    """
    lines, failed = [], False
    fetched = [t for t in report.transfers if t.files]
    if fetched:
        lines.append(f"Retrieved {_plural(len(fetched), 'study', 'studies')} "
                     f"({_plural(len(report.files), 'image')}).")
    skipped = sum(t.skipped_instances for t in report.transfers)
    if report.already_present or skipped:
        lines.append(f"Already in the library, not fetched again: "
                     f"{_plural(len(report.already_present), 'study', 'studies')}"
                     + (f" and {_plural(skipped, 'image')} of the others." if skipped else "."))
    if report.imported is not None:
        lines.append(f"Imported {_plural(report.imported.instances, 'image')} into the library.")
        skipped_files = report.imported.skipped
        failed = bool(skipped_files)
        lines += [f"Not imported: {Path(item.path).name}: {item.reason}."
                  for item in skipped_files[:MAX_REASONS]]
        if len(skipped_files) > MAX_REASONS:
            lines.append(f"... and {len(skipped_files) - MAX_REASONS} more files not imported.")
    for transfer in report.transfers:
        if transfer.failed or transfer.warnings or not (transfer.files
                                                       or transfer.skipped_instances):
            failed = True
            reasons = "; ".join(transfer.warnings) or "the PACS sent no image"
            lines.append(f"Failed: {titles.get(transfer.study_uid, transfer.study_uid)}: "
                         f"{reasons}.")
    return "\n".join(lines) or "Nothing to retrieve.", failed


class _Item(QTableWidgetItem):
    """A cell that sorts by its sort key (numbers as numbers, unknown counts first)."""

    def __init__(self, text: str, key) -> None:
        super().__init__(text)
        self.setData(SORT_ROLE, key)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        return self.data(SORT_ROLE) < other.data(SORT_ROLE)


class ResultsTable(QTableWidget):
    """Studies found on a PACS: sortable, several rows selectable, read-only."""

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.setWordWrap(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.Interactive)
        header.setStretchLastSection(False)
        header.setSectionResizeMode(DESCRIPTION, QHeaderView.Stretch)
        header.setSortIndicator(COLUMNS.index("Date"), Qt.DescendingOrder)  # newest first
        self.matches: dict[str, StudyMatch] = {}

    def keyPressEvent(self, event) -> None:
        """Keep Enter here: the dialog would take it as "Search" and drop the selection."""
        if event.key() in (Qt.Key_Return, Qt.Key_Enter):
            event.accept()
            return
        super().keyPressEvent(event)

    def show_matches(self, matches: list[StudyMatch]) -> None:
        """Replace the rows with ``matches``."""
        self.setSortingEnabled(False)  # rows would move while they are filled
        self.clearContents()
        self.setRowCount(len(matches))
        self.matches = {m.study_uid: m for m in matches}
        for row, match in enumerate(matches):
            cells = ((person_name(match.patient_name), match.patient_name.lower()),
                     (match.patient_id, match.patient_id),
                     (study_date(match.study_date), match.study_date + match.study_time),
                     ("/".join(match.modalities), "/".join(match.modalities)),
                     (match.description, match.description.lower()),
                     (match.accession, match.accession),
                     _count(match.series), _count(match.instances))
            for column, (text, key) in enumerate(cells):
                item = _Item(text, key)
                if column in (6, 7):
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.setItem(row, column, item)
            first = self.item(row, 0)
            first.setData(UID_ROLE, match.study_uid)
            first.setToolTip(f"Study Instance UID {match.study_uid}")
            self._set_share(row, match)
        self.resizeColumnsToContents()
        for column in range(len(COLUMNS)):
            if column != DESCRIPTION:
                self.setColumnWidth(column, self.columnWidth(column) + SORT_ARROW)
        self.setSortingEnabled(True)

    def _set_share(self, row: int, match: StudyMatch) -> None:
        text, rank = library_share(match)
        item = _Item(text, rank)
        if rank == 2:
            item.setForeground(QBrush(ALL_COLOUR))
        self.setItem(row, IN_LIBRARY, item)

    def set_in_library(self, counts: dict[str, int]) -> None:
        """Update the "In library" column from instance counts by study UID."""
        sorting = self.isSortingEnabled()
        self.setSortingEnabled(False)
        for row in range(self.rowCount()):
            uid = self.item(row, 0).data(UID_ROLE)
            if uid in counts and uid in self.matches:
                self.matches[uid] = replace(self.matches[uid], in_library=counts[uid])
                self._set_share(row, self.matches[uid])
        self.setSortingEnabled(sorting)

    def study_uids(self) -> list[str]:
        """Return the Study Instance UIDs of every row, top to bottom."""
        return [self.item(row, 0).data(UID_ROLE) for row in range(self.rowCount())]

    def selected_study_uids(self) -> list[str]:
        """Return the Study Instance UIDs of the selected rows, top to bottom."""
        rows = sorted(index.row() for index in self.selectionModel().selectedRows())
        return [self.item(row, 0).data(UID_ROLE) for row in rows]

    def in_library(self, uid: str) -> str:
        """Return the "In library" text of a study's row."""
        for row in range(self.rowCount()):
            if self.item(row, 0).data(UID_ROLE) == uid:
                return self.item(row, IN_LIBRARY).text()
        raise KeyError(uid)

    def titles(self) -> dict[str, str]:
        """Return a readable title per study UID: patient, date, description."""
        return {uid: ", ".join(p for p in (person_name(m.patient_name), study_date(m.study_date),
                                           m.description) if p)
                for uid, m in self.matches.items()}

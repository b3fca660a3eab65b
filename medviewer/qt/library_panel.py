"""The library browser: patients > studies > series, with thumbnails and search."""

from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QLabel, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from medviewer.display.render import thumbnail
from medviewer.qt.workers import TaskRunner
from medviewer.services.session import Session
from medviewer.store.library import Library

THUMB = 56
SERIES_ROLE = Qt.UserRole + 1


def _thumbnail(library_path: str, series_id: int) -> np.ndarray | None:
    """Render the middle image of a series as a small grey/RGB array (worker thread)."""
    from medviewer.dicom.pixels import decode

    with Library(library_path) as library:
        instances = library.instances(series_id)
    if not instances:
        return None
    image = decode(instances[len(instances) // 2].ref)
    return thumbnail(image, image.frame_count // 2, THUMB)


def to_qimage(pixels: np.ndarray) -> QImage:
    """Wrap 8-bit grey or RGB pixels in a QImage (copied, so the array may go)."""
    pixels = np.ascontiguousarray(pixels)
    h, w = pixels.shape[:2]
    if pixels.ndim == 2:
        return QImage(pixels.data, w, h, pixels.strides[0], QImage.Format_Grayscale8).copy()
    return QImage(pixels.data, w, h, pixels.strides[0], QImage.Format_RGB888).copy()


def _patient_title(patient) -> str:
    """Return "name — ID", or the one of them there is (a radiograph has only its file name)."""
    from medviewer.display.corner_text import format_person_name

    name = format_person_name(patient.name)
    if name and patient.patient_id:
        return f"{name}  \u2014  {patient.patient_id}"
    return name or patient.patient_id or "(no name, no ID)"


class LibraryPanel(QWidget):
    """Browse the session's library; double-click (or Enter) opens a series.

    Signals
    -------
    sig_series_chosen(int)
        The id of the series to open.
    sig_search_left()
        Escape or Enter in the search box: the viewer's keys should reach the viewer again.
    """

    sig_series_chosen = Signal(int)
    sig_search_left = Signal()

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.library_path: str | None = None
        self.hide_identifying = False
        self._thumbs: dict[int, np.ndarray] = {}
        self._thumb_lock = threading.Lock()
        self._items: dict[int, QTreeWidgetItem] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search patient, study, series, label\u2026")
        self.search.setClearButtonEnabled(True)
        layout.addWidget(self.search)
        self.summary = QLabel(self)
        self.summary.setObjectName("librarySummary")
        layout.addWidget(self.summary)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderHidden(True)
        self.tree.setIconSize(QSize(THUMB, THUMB))
        self.tree.setUniformRowHeights(False)
        layout.addWidget(self.tree, 1)
        self._search_timer = QTimer(self, singleShot=True, interval=250)
        self._search_timer.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        # Activated = double-click or Enter (per platform style); listening to
        # itemDoubleClicked as well opened the series twice.
        # Enter/Escape hand the keyboard back to the viewer: a search box that keeps the focus
        # swallows every single-key viewer shortcut (1-6, I, R, Space) typed after a search.
        self.search.returnPressed.connect(self.sig_search_left.emit)
        self.search.installEventFilter(self)
        self.tree.itemActivated.connect(self._on_activated)
        self._runner = TaskRunner(self)
        self._thumb_timer = QTimer(self, interval=200)
        self._thumb_timer.timeout.connect(self._apply_thumbnails)
        session.connect("library_opened", self.set_library)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt naming
        from PySide6.QtCore import QEvent

        if (watched is self.search and event.type() == QEvent.KeyPress
                and event.key() == Qt.Key_Escape):
            self.sig_search_left.emit()
            return True
        return super().eventFilter(watched, event)

    def set_library(self, path: str | None) -> None:
        """Show a library (or nothing)."""
        self.library_path = path
        with self._thumb_lock:
            self._thumbs.clear()
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the tree from the library, keeping the search."""
        self.tree.clear()
        self._items.clear()
        if not self.library_path:
            self.summary.setText("No library open. Use File \u25b8 Open the demo library, "
                                 "File \u25b8 Import folder, or drop a folder here.")
            self.summary.setWordWrap(True)
            return
        text = self.search.text().strip()
        with Library(self.library_path) as library:
            counts = library.counts()
            patients = library.patients(text)
            first_series = None
            for n, patient in enumerate(patients, start=1):
                who = f"Patient {n}" if self.hide_identifying else _patient_title(patient)
                p_item = QTreeWidgetItem([f"{who}  ({patient.studies} studies)"])
                self.tree.addTopLevelItem(p_item)
                for study in library.studies(patient.id):
                    date = _format_date(study.study_date)
                    s_item = QTreeWidgetItem([f"{date}  {study.description or 'study'}"])
                    p_item.addChild(s_item)
                    for series in library.series(study.id):
                        labels = library.series_label_names(series.id)
                        noun = "image" if series.instances == 1 else "images"
                        count = (f"{series.instances} {noun}" if series.frames == series.instances
                                 else f"{series.instances} {noun}, {series.frames} frames")
                        text_lines = f"{series.modality} {series.description or ''}".strip()
                        text_lines += f"\n{count}"
                        if labels:
                            text_lines += "\n" + ", ".join(labels)
                        if series.warnings and any(w.code != "sorted by instance number"
                                                   for w in series.warnings):
                            text_lines += "\n\u26a0 geometry"
                        item = QTreeWidgetItem([text_lines])
                        item.setData(0, SERIES_ROLE, series.id)
                        item.setToolTip(0, "\n".join(w.message for w in series.warnings) or
                                        series.series_uid)
                        s_item.addChild(item)
                        self._items[series.id] = item
                        first_series = first_series or item
        self.tree.expandAll() if len(patients) <= 20 else self.tree.expandToDepth(0)
        self.summary.setText(f"{counts['patients']} patients, {counts['studies']} studies, "
                             f"{counts['series']} series, {counts['instances']} images"
                             + (f"  \u2014  {len(patients)} match" if text else ""))
        self._apply_thumbnails()
        self._start_thumbnails()

    def _start_thumbnails(self) -> None:
        missing = [sid for sid in self._items if sid not in self._thumbs]
        if not missing or not self.library_path:
            return
        path, thumbs, lock = self.library_path, self._thumbs, self._thumb_lock

        def work(state):
            for n, sid in enumerate(missing):
                state.check()
                try:
                    pixels = _thumbnail(path, sid)
                except Exception:  # noqa: BLE001 - a series without a thumbnail still lists
                    pixels = None
                if pixels is not None:
                    with lock:
                        thumbs[sid] = pixels
                state.set_progress((n + 1) / len(missing))
            return True

        self._runner.start(work, lambda _r: (self._apply_thumbnails(), self._thumb_timer.stop()))
        self._thumb_timer.start()

    def _apply_thumbnails(self) -> None:
        with self._thumb_lock:
            ready = [(sid, px) for sid, px in self._thumbs.items()]
        for sid, pixels in ready:
            item = self._items.get(sid)
            if item is not None and item.icon(0).isNull():
                item.setIcon(0, QIcon(QPixmap.fromImage(to_qimage(pixels))))

    def select_series(self, series_id: int) -> None:
        """Highlight a series in the tree."""
        item = self._items.get(series_id)
        if item is not None:
            self.tree.setCurrentItem(item)

    def series_order(self) -> list[int]:
        """Return series ids in tree order (for next/previous series)."""
        return list(self._items)

    def _on_activated(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        series_id = item.data(0, SERIES_ROLE)
        if series_id is not None:
            self.sig_series_chosen.emit(int(series_id))


def _format_date(value: str) -> str:
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value or "(no date)"

"""The Teaching window: collections, key images, exemplars, notes, search, quiz and export.

Every action calls one function of :mod:`medviewer.services.teaching` (one
transaction each, committed with ``synchronous=FULL`` before the panel shows the
change), so what the panel shows survives a kill, as with the CLI.  The panel
learns what is on screen through a :class:`TeachingContext` (the case in the
viewer with its window/level and overlay, the last similar-case results), so it
does not reach into the main window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox,
                               QHBoxLayout,
                               QInputDialog, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QMainWindow, QMessageBox, QPlainTextEdit, QPushButton, QSplitter,
                               QVBoxLayout, QWidget)

from medviewer.qt.workers import TaskRunner


@dataclass
class ShownCase:
    """The case on screen as the viewer shows it."""

    case_id: int
    window: tuple[float, float] | None = None
    overlay: str = ""
    overlay_map: object = None  # np.ndarray on the image's pixel grid, or None


@dataclass
class TeachingContext:
    """What the Teaching panel may ask of the rest of the app (all called on the GUI thread).

    Attributes
    ----------
    library_path : callable
        ``() -> str or None``.
    shown_case : callable
        ``() -> ShownCase or None``: the library case in the viewer.
    last_results : callable
        ``() -> SearchResult or None``: the last similar-case search of a library case.
    open_case : callable, optional
        ``(case_id) -> None``: show a case in the viewer.
    """

    library_path: Callable[[], str | None]
    shown_case: Callable[[], ShownCase | None] = lambda: None
    last_results: Callable[[], object] = lambda: None
    open_case: Callable[[int], None] | None = None


NOTE_TEMPLATE = (("history", "History"), ("findings", "Findings"), ("diagnosis", "Diagnosis"),
                 ("discussion", "Discussion"), ("citations", "References"))


class TeachingPanel(QWidget):
    """Curate teaching collections of the open library.

    Signals
    -------
    sig_changed()
        A change was stored (collections, items, notes or tags).
    sig_exported(object)
        An export finished; the :class:`~medviewer.teaching.TeachingExport`.
    """

    sig_changed = Signal()
    sig_exported = Signal(object)

    def __init__(self, context: TeachingContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self._note_case: int | None = None
        self._windows: list[QWidget] = []
        self._export = TaskRunner(self, message=lambda m: self._say(f"Export failed: {m}"))
        self._export.sig_progress.connect(
            lambda f, s: self.message.setText(f"{s or 'Exporting'} ({f * 100:.0f}%)"))
        self._export.sig_errored.connect(lambda _exc: self.export_button.setEnabled(True))
        self._build()
        self.refresh()

    # -- layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        split = QSplitter(Qt.Horizontal, self)
        outer.addWidget(split, 1)
        self.message = QLabel(self)
        self.message.setObjectName("panelMessage")
        self.message.setWordWrap(True)
        outer.addWidget(self.message)

        left = QWidget(split)
        lv = QVBoxLayout(left)
        lv.addWidget(QLabel("<b>Collections</b>", left))
        self.collections = QListWidget(left)
        lv.addWidget(self.collections, 2)
        row = QHBoxLayout()
        self.new_button = QPushButton("New\u2026", left)
        self.rename_button = QPushButton("Rename\u2026", left)
        self.delete_button = QPushButton("Delete", left)
        for b in (self.new_button, self.rename_button, self.delete_button):
            row.addWidget(b)
        lv.addLayout(row)
        search = QGroupBox("Search cases", left)
        form = QFormLayout(search)
        self.search_text = QLineEdit(search)
        self.search_text.setPlaceholderText("words in notes")
        self.search_label = QComboBox(search)
        self.search_tag = QComboBox(search)
        self.search_modality = QComboBox(search)
        self.search_from = QLineEdit(search)
        self.search_from.setPlaceholderText("YYYYMMDD")
        self.search_to = QLineEdit(search)
        self.search_to.setPlaceholderText("YYYYMMDD")
        form.addRow("Text", self.search_text)
        form.addRow("Label", self.search_label)
        form.addRow("Tag", self.search_tag)
        form.addRow("Modality", self.search_modality)
        form.addRow("From", self.search_from)
        form.addRow("To", self.search_to)
        self.search_in_collection = QCheckBox("in the chosen collection only", search)
        form.addRow(self.search_in_collection)
        self.search_button = QPushButton("Search", search)
        form.addRow(self.search_button)
        lv.addWidget(search)
        self.hits = QListWidget(left)
        self.hits.setWordWrap(True)
        lv.addWidget(self.hits, 2)
        self.add_hit_button = QPushButton("Add the found case to the collection", left)
        lv.addWidget(self.add_hit_button)
        split.addWidget(left)

        middle = QWidget(split)
        mv = QVBoxLayout(middle)
        self.items_title = QLabel("<b>Cases</b>", middle)
        mv.addWidget(self.items_title)
        self.items = QListWidget(middle)
        mv.addWidget(self.items, 1)
        cap = QHBoxLayout()
        cap.addWidget(QLabel("Caption", middle))
        self.caption = QLineEdit(middle)
        self.caption.setPlaceholderText("key image caption, e.g. 'PA film: hyperinflation'")
        cap.addWidget(self.caption, 1)
        mv.addLayout(cap)
        self.add_current_button = QPushButton("Add the case on screen (as shown)", middle)
        self.add_results_button = QPushButton("Add the last similar-case results", middle)
        self.add_results_button.setToolTip("The query as a teaching case; its nearest cases "
                                           "as similar and its farthest as dissimilar "
                                           "exemplars")
        self.remove_button = QPushButton("Remove from the collection", middle)
        self.open_button = QPushButton("Show in the viewer", middle)
        for b in (self.add_current_button, self.add_results_button, self.remove_button,
                  self.open_button):
            mv.addWidget(b)
        bottom = QHBoxLayout()
        self.quiz_button = QPushButton("Start a quiz\u2026", middle)
        self.scores_button = QPushButton("Scores", middle)
        self.scores_button.setToolTip("Every learner's score on this collection")
        self.export_button = QPushButton("Export package\u2026", middle)
        self.export_button.setObjectName("primaryButton")
        bottom.addWidget(self.quiz_button)
        bottom.addWidget(self.scores_button)
        bottom.addWidget(self.export_button)
        mv.addLayout(bottom)
        split.addWidget(middle)

        right = QWidget(split)
        rv = QVBoxLayout(right)
        self.note_title = QLabel("<b>Teaching note</b> (choose a case)", right)
        rv.addWidget(self.note_title)
        note_form = QFormLayout()
        self.note_fields: dict[str, QPlainTextEdit | QLineEdit] = {}
        for key, label in NOTE_TEMPLATE:
            edit = QLineEdit(right) if key == "diagnosis" else QPlainTextEdit(right)
            if isinstance(edit, QPlainTextEdit):
                edit.setTabChangesFocus(True)
                edit.setMinimumHeight(60)
            self.note_fields[key] = edit
            note_form.addRow(label, edit)
        self.tags_edit = QLineEdit(right)
        self.tags_edit.setPlaceholderText("comma-separated, e.g. copd, chest")
        note_form.addRow("Tags", self.tags_edit)
        rv.addLayout(note_form, 1)
        self.save_note_button = QPushButton("Save note", right)
        self.save_note_button.setObjectName("primaryButton")
        rv.addWidget(self.save_note_button)
        split.addWidget(right)
        split.setSizes([300, 380, 420])

        self.new_button.clicked.connect(lambda: self.new_collection())
        self.rename_button.clicked.connect(lambda: self.rename_collection())
        self.delete_button.clicked.connect(lambda: self.delete_collection())
        self.collections.currentItemChanged.connect(
            lambda *_: (self._show_items(), self.update_actions()))
        self.items.currentItemChanged.connect(lambda *_: self._show_note())
        self.search_button.clicked.connect(self.search)
        self.search_text.returnPressed.connect(self.search)
        self.add_hit_button.clicked.connect(lambda: self.add_found_case())
        self.add_current_button.clicked.connect(lambda: self.add_current_case())
        self.add_results_button.clicked.connect(lambda: self.add_last_results())
        self.remove_button.clicked.connect(lambda: self.remove_item())
        self.open_button.clicked.connect(self._open_in_viewer)
        self.save_note_button.clicked.connect(lambda: self.save_note())
        self.quiz_button.clicked.connect(lambda: self.start_quiz())
        self.scores_button.clicked.connect(lambda: self.show_scores())
        self.export_button.clicked.connect(lambda: self.export())

    # -- helpers ----------------------------------------------------------------------------
    @property
    def library(self) -> str | None:
        """Return the open library's path."""
        return self.context.library_path()

    def _say(self, text: str) -> None:
        self.message.setText(text)

    def _guard(self, action: Callable[[], object]):
        """Run a store action; show an expected problem in the panel, return None then."""
        from medviewer.errors import MedViewerError

        if not self.library:
            self._say("Open a library first.")
            return None
        try:
            return action()
        except MedViewerError as exc:
            self._say(str(exc))
            return None

    def current_collection(self) -> int | None:
        """Return the id of the chosen collection."""
        item = self.collections.currentItem()
        return None if item is None else int(item.data(Qt.UserRole))

    def current_item(self):
        """Return the chosen :class:`CollectionItem`."""
        item = self.items.currentItem()
        return None if item is None else item.data(Qt.UserRole)

    # -- collections ------------------------------------------------------------------------
    def refresh(self, select: int | None = None) -> None:
        """Re-read the collections (keeping the choice) and the search choices."""
        from medviewer.services import teaching

        keep = select if select is not None else self.current_collection()
        self.collections.blockSignals(True)
        self.collections.clear()
        if self.library:
            for c in teaching.list_collections(self.library):
                item = QListWidgetItem(f"{c.name}  ({_count(c.cases, 'case')}, "
                                       f"{_count(c.exemplars, 'exemplar')})")
                item.setData(Qt.UserRole, c.id)
                self.collections.addItem(item)
                if c.id == keep:
                    self.collections.setCurrentItem(item)
        if self.collections.currentItem() is None and self.collections.count():
            self.collections.setCurrentRow(0)
        self.collections.blockSignals(False)
        self._fill_search_choices()
        self._show_items()
        self.update_actions()

    def update_actions(self) -> None:
        """Enable the add buttons when there is a case on screen / a search to add."""
        has_collection = self.current_collection() is not None
        shown = self.context.shown_case() if self.library else None
        self.add_current_button.setEnabled(has_collection and shown is not None)
        self.add_results_button.setEnabled(has_collection and
                                           self.context.last_results() is not None)

    def _fill_search_choices(self) -> None:
        from medviewer.services import teaching
        from medviewer.store import Library

        labels, tags, modalities = [], [], []
        if self.library:
            with Library(self.library) as library:
                labels, modalities = library.label_names(), library.modalities()
                tags = [t for t, _n in teaching.all_tags(library)]
        for combo, values, anyone in ((self.search_label, labels, "any label"),
                                      (self.search_tag, tags, "any tag"),
                                      (self.search_modality, modalities, "any modality")):
            current = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(anyone, "")
            for v in values:
                combo.addItem(v, v)
            index = combo.findData(current)
            combo.setCurrentIndex(max(0, index))
            combo.blockSignals(False)

    def new_collection(self, name: str | None = None) -> int | None:
        """Create a collection (asks for its name when None); return its id."""
        from medviewer.services import teaching

        if name is None:
            name, ok = QInputDialog.getText(self, "New collection", "Name:")
            if not ok:
                return None
        created = self._guard(lambda: teaching.create_collection(self.library, name))
        if created is None:
            return None
        self.refresh(select=created.id)
        self._say(f"Collection \u201c{created.name}\u201d created.")
        self.sig_changed.emit()
        return created.id

    def rename_collection(self, name: str | None = None) -> bool:
        """Rename the chosen collection."""
        from medviewer.services import teaching

        collection = self.current_collection()
        if collection is None:
            self._say("Choose a collection first.")
            return False
        if name is None:
            old = teaching.get_collection(self.library, collection).name
            name, ok = QInputDialog.getText(self, "Rename collection", "New name:", text=old)
            if not ok:
                return False
        done = self._guard(lambda: teaching.rename_collection(self.library, collection, name))
        if done is None:
            return False
        self.refresh(select=done.id)
        self._say(f"Renamed to \u201c{done.name}\u201d.")
        self.sig_changed.emit()
        return True

    def delete_collection(self, confirm: bool = True) -> bool:
        """Delete the chosen collection (its cases, notes and tags stay in the library)."""
        from medviewer.services import teaching

        collection = self.current_collection()
        if collection is None:
            return False
        if confirm and QMessageBox.question(
                self, "Delete collection", "Delete this collection? Its cases, notes and tags "
                "stay in the library.") != QMessageBox.Yes:
            return False
        if self._guard(lambda: teaching.delete_collection(self.library, collection) or True):
            self.refresh()
            self._say("Collection deleted.")
            self.sig_changed.emit()
            return True
        return False

    # -- items ------------------------------------------------------------------------------
    def _show_items(self) -> None:
        from medviewer.services import teaching

        keep = self.current_item()
        self.items.blockSignals(True)
        self.items.clear()
        collection = self.current_collection()
        if collection is not None and self.library:
            for it in teaching.collection_items(self.library, collection):
                labels = ", ".join(it.labels) or "no label"
                if it.role == "case":
                    shown = it.key_images[0] if it.key_images else None
                    extra = ""
                    if shown is not None and shown.window_width:
                        extra += f" \u00b7 W {shown.window_width:g} / L {shown.window_center:g}"
                    if shown is not None and shown.overlay:
                        extra += f" \u00b7 overlay {shown.overlay}"
                    text = f"Case {it.case_id} \u00b7 {it.modality} \u00b7 {labels}{extra}"
                else:
                    score = f" (distance {it.score:.3f})" if it.score is not None else ""
                    text = f"      {it.role}: case {it.case_id} \u00b7 {labels}{score}"
                row = QListWidgetItem(text)
                row.setData(Qt.UserRole, it)
                self.items.addItem(row)
                if keep is not None and it.id == keep.id:
                    self.items.setCurrentItem(row)
        self.items.blockSignals(False)
        self._show_note()

    def add_current_case(self) -> bool:
        """Add the case on screen with its window/level, overlay and caption as a key image."""
        from medviewer.services import teaching

        collection = self.current_collection()
        shown = self.context.shown_case()
        if collection is None:
            self._say("Create or choose a collection first.")
            return False
        if shown is None:
            self._say("The image on screen is not a case of this library.")
            return False
        key = self._guard(lambda: teaching.add_current_case(
            self.library, collection, shown.case_id, window=shown.window,
            overlay=shown.overlay, caption=self.caption.text().strip(),
            overlay_map=shown.overlay_map))
        if key is None:
            return False
        self._show_items()
        self._select_case(shown.case_id)
        self.refresh()
        self._say(f"Case {shown.case_id} added as shown" +
                  (f" (W {key.window_width:g} / L {key.window_center:g})"
                   if key.window_width else "") +
                  (f" with the {key.overlay} overlay" if key.overlay else "") + ".")
        self.sig_changed.emit()
        return True

    def add_last_results(self, similar: int | None = None, dissimilar: int | None = None) -> int:
        """Add the last similar-case search: query as a case, hits as exemplars; return how many."""
        from medviewer.services import teaching

        collection = self.current_collection()
        result = self.context.last_results()
        if collection is None:
            self._say("Create or choose a collection first.")
            return 0
        if result is None:
            self._say("Search similar cases of a library case first (Similar cases panel).")
            return 0
        added = self._guard(lambda: teaching.add_retrieval_result(
            self.library, collection, result, similar=similar, dissimilar=dissimilar))
        if added is None:
            return 0
        n_similar = sum(1 for a in added if a.role == "similar")
        self.refresh()
        self._select_case(result.query_case)
        self._say(f"Added the query with {n_similar} similar and {len(added) - n_similar} "
                  "dissimilar exemplars.")
        self.sig_changed.emit()
        return len(added)

    def add_found_case(self) -> bool:
        """Add the chosen search hit as a teaching case."""
        from medviewer.services import teaching

        hit = self.hits.currentItem()
        collection = self.current_collection()
        if hit is None or collection is None:
            self._say("Choose a collection and a found case first.")
            return False
        case_id = int(hit.data(Qt.UserRole))
        if self._guard(lambda: teaching.add_cases(self.library, collection, [case_id])) is None:
            return False
        self.refresh()
        self._select_case(case_id)
        self.sig_changed.emit()
        return True

    def remove_item(self) -> bool:
        """Remove the chosen item (a teaching case takes its exemplars with it)."""
        from medviewer.services import teaching

        item = self.current_item()
        if item is None:
            return False
        if self._guard(lambda: teaching.remove_item(self.library, item.id) or True):
            self.refresh()
            self.sig_changed.emit()
            return True
        return False

    def _select_case(self, case_id: int) -> None:
        for row in range(self.items.count()):
            it = self.items.item(row).data(Qt.UserRole)
            if it.case_id == int(case_id) and it.role == "case":
                self.items.setCurrentRow(row)
                return

    def _open_in_viewer(self) -> None:
        item = self.current_item()
        if item is not None and self.context.open_case is not None:
            self.context.open_case(item.case_id)

    # -- notes --------------------------------------------------------------------------------
    def _show_note(self) -> None:
        from medviewer.services import teaching

        item = self.current_item()
        self._note_case = None if item is None else item.case_id
        enabled = item is not None
        for edit in list(self.note_fields.values()) + [self.tags_edit, self.save_note_button]:
            edit.setEnabled(enabled)
        if item is None or not self.library:
            self.note_title.setText("<b>Teaching note</b> (choose a case)")
            for edit in self.note_fields.values():
                edit.clear() if isinstance(edit, QLineEdit) else edit.setPlainText("")
            self.tags_edit.clear()
            return
        note = teaching.get_note(self.library, item.case_id)
        self.note_title.setText(f"<b>Teaching note</b> \u00b7 case {item.case_id}")
        for key, edit in self.note_fields.items():
            value = getattr(note, key)
            edit.setText(value) if isinstance(edit, QLineEdit) else edit.setPlainText(value)
        self.tags_edit.setText(", ".join(teaching.case_tags(self.library, item.case_id)))

    def note_values(self) -> dict[str, str]:
        """Return the note fields as typed."""
        return {k: (e.text() if isinstance(e, QLineEdit) else e.toPlainText())
                for k, e in self.note_fields.items()}

    def save_note(self) -> bool:
        """Store the note and the tags of the chosen case (one transaction)."""
        from medviewer.services import teaching

        case_id = self._note_case
        if case_id is None:
            return False
        tags = [t.strip() for t in self.tags_edit.text().split(",") if t.strip()]
        values = self.note_values()
        if self._guard(lambda: teaching.save_note_and_tags(self.library, case_id, tags,
                                                           **values)) is None:
            return False
        self._fill_search_choices()
        self._say(f"Note of case {case_id} saved.")
        self.sig_changed.emit()
        return True

    # -- search ---------------------------------------------------------------------------------
    def search(self) -> list:
        """Find cases by text, label, tag, modality and study date; list them."""
        from medviewer.services import teaching

        criteria = {"text": self.search_text.text().strip() or None,
                    "label": self.search_label.currentData() or None,
                    "tag": self.search_tag.currentData() or None,
                    "modality": self.search_modality.currentData() or None,
                    "date_from": self.search_from.text().strip() or None,
                    "date_to": self.search_to.text().strip() or None,
                    "collection": (self.current_collection()
                                   if self.search_in_collection.isChecked() else None)}
        hits = self._guard(lambda: teaching.search(self.library, **criteria)) or []
        self.hits.clear()
        for hit in hits:
            date = hit.study_date
            date = f"{date[:4]}-{date[4:6]}-{date[6:]}" if len(date) == 8 else date
            row = QListWidgetItem(f"Case {hit.case_id} \u00b7 {hit.modality} {date} \u00b7 "
                                  f"{', '.join(hit.labels) or 'no label'}" +
                                  (f" \u00b7 tags {', '.join(hit.tags)}" if hit.tags else ""))
            row.setData(Qt.UserRole, hit.case_id)
            self.hits.addItem(row)
        self._say(f"{_count(len(hits), 'case')} found.")
        return hits

    # -- quiz and export ------------------------------------------------------------------------
    def start_quiz(self, learner: str | None = None):
        """Open the quiz of the chosen collection for a learner; return its window."""
        from medviewer.qt.quiz_window import QuizWindow
        from medviewer.services.teaching_quiz import LibraryQuiz

        collection = self.current_collection()
        if collection is None:
            self._say("Choose a collection first.")
            return None
        if learner is None:
            learner, ok = QInputDialog.getText(self, "Quiz", "Learner's name or alias:")
            if not ok:
                return None
        runner = self._guard(lambda: LibraryQuiz(self.library, collection, learner))
        if runner is None:
            return None
        window = QuizWindow(runner)
        window.start()
        self._windows.append(window)
        return window

    def show_scores(self) -> list[dict]:
        """Say every learner's score on the chosen collection."""
        from medviewer.services import teaching

        collection = self.current_collection()
        if collection is None:
            return []
        rows = self._guard(lambda: teaching.learner_scores(self.library, collection)) or []
        self._say("; ".join(f"{r['trainee']}: {r['correct']}/{r['graded']} correct, "
                            f"{r['answered']} answered" for r in rows)
                  or "Nobody has taken this quiz yet.")
        return rows

    def export(self, folder: str | None = None) -> bool:
        """Export the chosen collection as a de-identified package in the background."""
        from medviewer.services import teaching

        collection = self.current_collection()
        if collection is None:
            self._say("Choose a collection first.")
            return False
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Empty folder for the package")
            if not folder:
                return False
        library = self.library
        self.export_button.setEnabled(False)
        self._say("Exporting\u2026")
        self._export.start(lambda state: teaching.export(library, collection, folder,
                                                         state=state), self._on_exported)
        return True

    def _on_exported(self, result) -> None:
        self.export_button.setEnabled(True)
        withheld = f" {len(result.skipped)} images withheld (burned-in text)." \
            if result.skipped else ""
        self._say(f"Exported {len(result.cases)} cases to {result.out_dir}. "
                  f"{result.removed_summary()}{withheld}")
        self.sig_exported.emit(result)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


class TeachingWindow(QMainWindow):
    """A window around the :class:`TeachingPanel`."""

    def __init__(self, context: TeachingContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Teaching files")
        self.resize(1240, 760)
        self.panel = TeachingPanel(context, self)
        self.setCentralWidget(self.panel)

"""The similar-cases panel: index status, search, neighbours with thumbnails, vote, relevance."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QBuffer, QIODevice, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFrame, QHBoxLayout, QLabel, QPushButton,
                               QScrollArea, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from medviewer.qt.library_panel import to_qimage
from medviewer.qt.workers import TaskRunner
from medviewer.services.session import Session

THUMB = 56


def _hit_thumbnail(location: str, frame: int) -> np.ndarray | None:
    """Render a result as a small display image (worker thread)."""
    from medviewer.dicom.pixels import decode
    from medviewer.dicom.sources import FileRef
    from medviewer.display.render import thumbnail

    try:
        return thumbnail(decode(FileRef.from_display(location)), frame, THUMB)
    except Exception:  # noqa: BLE001 - a result without a thumbnail still lists
        return None


class ResultRow(QFrame):
    """One neighbour: thumbnail, similarity, labels, open and relevance buttons."""

    sig_open = Signal(object)
    sig_mark = Signal(object, bool)

    def __init__(self, hit, thumb: np.ndarray | None, far: bool, parent: QWidget | None = None,
                 rank: int | None = None):
        super().__init__(parent)
        self.hit = hit
        self.far = far
        self.setObjectName("resultRow")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        picture = QLabel(self)
        picture.setFixedSize(THUMB, THUMB)
        picture.setAlignment(Qt.AlignCenter)
        if thumb is not None:
            pixmap = QPixmap.fromImage(to_qimage(thumb))
            picture.setPixmap(pixmap.scaled(THUMB, THUMB, Qt.KeepAspectRatio, Qt.SmoothTransformation))
            # A larger picture on hover (the list stays compact so five or more results fit).
            buffer = QBuffer()
            buffer.open(QIODevice.WriteOnly)
            pixmap.scaled(256, 256, Qt.KeepAspectRatio, Qt.SmoothTransformation).save(buffer, "PNG")
            encoded = bytes(buffer.data().toBase64()).decode()
            picture.setToolTip(f"<img src='data:image/png;base64,{encoded}'>")
        layout.addWidget(picture)
        score = (f"similarity {hit.similarity:.2f}" if hit.similarity is not None
                 else f"distance {hit.distance:.3g}")
        labels = ", ".join(hit.labels) or "no labels"
        date = hit.study_date
        date = f"{date[:4]}-{date[4:6]}-{date[6:]}" if len(date) == 8 else date
        text = QLabel(f"<b>{'Far' if far else '#'}{rank or hit.rank}</b> &nbsp;{score}<br>{labels}"
                      f"<br><span style='color:#8a8f98'>{hit.modality} {date}</span>", self)
        text.setWordWrap(True)
        layout.addWidget(text, 1)
        buttons = QVBoxLayout()
        buttons.setSpacing(2)
        open_button = QToolButton(self)
        open_button.setText("Open")
        open_button.setToolTip("Show beside the query, with linked window/level and zoom")
        open_button.clicked.connect(lambda: self.sig_open.emit(self.hit))
        self.yes = QToolButton(self)
        self.yes.setText("\u2714")
        self.yes.setToolTip("Relevant")
        self.yes.setCheckable(True)
        self.no = QToolButton(self)
        self.no.setText("\u2718")
        self.no.setToolTip("Not relevant")
        self.no.setCheckable(True)
        self.yes.clicked.connect(lambda: self._mark(True))
        self.no.clicked.connect(lambda: self._mark(False))
        self.mark: bool | None = None
        buttons.addWidget(open_button)
        marks = QHBoxLayout()
        marks.setSpacing(2)
        marks.addWidget(self.yes)
        marks.addWidget(self.no)
        buttons.addLayout(marks)
        layout.addLayout(buttons)
        self.setMinimumHeight(THUMB + 8)

    def _mark(self, relevant: bool) -> None:
        self.set_mark(relevant)
        self.sig_mark.emit(self.hit, relevant)

    def set_mark(self, relevant: bool | None) -> None:
        """Show a mark: the button filled green or red and the row tinted (None: unmarked)."""
        self.mark = relevant
        self.yes.setChecked(relevant is True)
        self.no.setChecked(relevant is False)
        self.yes.setStyleSheet("background: #2e7d32; color: white;" if relevant is True else "")
        self.no.setStyleSheet("background: #b23b3b; color: white;" if relevant is False else "")
        self.setStyleSheet({True: "QFrame#resultRow { border-left: 4px solid #2e7d32; }",
                            False: "QFrame#resultRow { border-left: 4px solid #b23b3b; }"}.get(relevant, ""))
        self.yes.setToolTip("Marked relevant" if relevant is True else "Relevant")
        self.no.setToolTip("Marked not relevant" if relevant is False else "Not relevant")

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt naming
        self.sig_open.emit(self.hit)


class SimilarCasesPanel(QWidget):
    """Search the library for cases like the one on screen.

    Library, model, searcher and the last search live in the
    :class:`~medviewer.services.session.Session`; the panel draws the session's search
    result and clears it when the session does.  Results open through
    :attr:`sig_open_case` (a hit) and :attr:`sig_open_case_id` (a case of the map).

    Signals
    -------
    sig_results(object)
        The :class:`~medviewer.retrieval.search.SearchResult` drawn.
    """

    sig_open_case = Signal(object)
    sig_open_case_id = Signal(int)
    sig_results = Signal(object)

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        # The last index status read ("ready", "stale", "missing", ...; "" before any read).
        self.index_state = ""
        # The search on screen, the reader's marks on it (case id -> relevant) and its thumbnails.
        self._found, self._marks, self._thumbs, self._vote_text = None, {}, {}, ""
        self.feedback_note = ""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        self.status = QLabel("Load a model to search similar cases.", self)
        self.status.setWordWrap(True)
        self.status.setObjectName("panelMessage")
        self.index_button = QPushButton("Build index", self)
        self.index_button.setEnabled(False)
        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        top.addWidget(self.index_button)
        layout.addLayout(top)
        options = QHBoxLayout()
        options.addWidget(QLabel("k", self))
        self.k = QSpinBox(self)
        self.k.setRange(1, 50)
        self.k.setValue(5)
        options.addWidget(self.k)
        self.farthest = QCheckBox("farthest too", self)
        options.addWidget(self.farthest)
        filters = options
        self.label_filter = QComboBox(self)
        self.label_filter.addItem("any label", "")
        self.modality_filter = QComboBox(self)
        self.modality_filter.setToolTip("Default: the query's modality family (CR, DX and PNG radiographs "
                                        "together; CT; MR ...). Other modalities only when asked for.")
        self.modality_filter.addItem("query's modality family", "")
        self.modality_filter.addItem("all modalities", "*")
        filters.addWidget(self.label_filter, 1)
        filters.addWidget(self.modality_filter, 1)
        layout.addLayout(options)
        self.same_patient = QCheckBox("Exclude the query's patient", self)
        self.same_patient.setChecked(True)
        layout.addWidget(self.same_patient)
        buttons = QHBoxLayout()
        self.search_button = QPushButton("Find similar cases", self)
        self.search_button.setToolTip("Tip: press G and drag a rectangle on the image to search with that "
                                      "region only.")
        self.search_button.setEnabled(False)
        buttons.addWidget(self.search_button, 2)
        self.map_button = QPushButton("Map\u2026", self)
        self.map_button.setToolTip("The library's cases in 2-D (PCA, t-SNE, UMAP)")
        self.map_button.setEnabled(False)
        buttons.addWidget(self.map_button, 1)
        self.region_hint = QLabel("Tip: press G and drag a rectangle on the image to search "
                                  "with that region only.", self)  # shown as the search button's tooltip
        self.region_hint.hide()
        self.teach_button = QPushButton("Add to teaching\u2026", self)
        self.teach_button.setToolTip("The query as a teaching case, its results as similar and "
                                     "dissimilar exemplars")
        self.teach_button.setEnabled(False)
        # clicked(bool) must not reach add_to_teaching's ``collection`` argument: a False
        # there was taken for a collection name (AttributeError: 'bool' has no 'strip').
        self.teach_button.clicked.connect(lambda _checked=False: self.add_to_teaching())
        buttons.addWidget(self.teach_button, 1)
        layout.addLayout(buttons)
        self.applicability = QLabel("", self)
        self.applicability.setWordWrap(True)
        self.applicability.setObjectName("applicabilityLabel")
        self.applicability.hide()
        layout.addWidget(self.applicability)
        self.vote = QLabel("", self)
        self.vote.setObjectName("voteLabel")
        self.vote.setWordWrap(True)
        layout.addWidget(self.vote)
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.results_host = QWidget(self.scroll)
        self.results_layout = QVBoxLayout(self.results_host)
        self.results_layout.addStretch(1)
        self.scroll.setWidget(self.results_host)
        layout.addWidget(self.scroll, 1)
        self._indexer = TaskRunner(self, message=self.status.setText)
        self._search = TaskRunner(self, message=self.vote.setText)
        self._indexer.sig_progress.connect(
            lambda f, s: self.status.setText(f"{s or 'Indexing'} ({f * 100:.0f}%)"))
        self.index_button.clicked.connect(self.build_index)
        self.search_button.clicked.connect(lambda: self.search_current())
        self.map_button.clicked.connect(self.show_map)
        session.connect("library_opened", lambda path: self._on_library(path))
        session.connect("model_loaded", lambda runner: self._on_model())
        session.connect("results_found", self._on_results)
        session.connect("results_cleared",
                        lambda: self.session.search is None and self._clear_results())

    # -- setup ----------------------------------------------------------------------------
    @property
    def library_path(self) -> str | None:
        """Return the session's library."""
        return self.session.library_path

    @property
    def runner(self):
        """Return the session's model."""
        return self.session.runner

    @property
    def result(self):
        """Return the search result on screen (None when there is none)."""
        found = self.session.search
        return found.result if found is not None else None

    def _on_library(self, path: str | None) -> None:
        self.index_state = ""
        self._search.cancel()
        self._fill_filters()
        self.check_index()

    def _on_model(self) -> None:
        self.index_state = ""
        self._search.cancel()
        self.check_index()

    def _fill_filters(self) -> None:
        for combo, keep in ((self.label_filter, 1), (self.modality_filter, 2)):
            while combo.count() > keep:
                combo.removeItem(keep)
        if not self.library_path:
            return
        with self.session.library() as library:
            labels, modalities = library.label_names(), library.modalities()
        for label in labels:
            self.label_filter.addItem(label, label)
        from medviewer.inference.applicability import MODALITY_FAMILIES, modality_family

        families = {}
        for modality in modalities:
            families.setdefault(modality_family(modality), []).append(modality)
        for family, members in sorted(families.items()):
            codes = sorted(set(members) | (set(MODALITY_FAMILIES.get(family, ())) if len(members) > 1 else set()))
            if len(members) > 1:  # several values in one choice: the whole family
                self.modality_filter.addItem(f"{family}s: {', '.join(members)}", ",".join(codes))
            for modality in members:
                self.modality_filter.addItem(modality, modality)

    def check_index(self) -> None:
        """Read the index status off the GUI thread and say what it means."""
        if not self.library_path or self.runner is None:
            return
        from medviewer.services.retrieval import index_status
        from medviewer.store import Library

        path, runner = self.library_path, self.runner

        def work(state):
            with Library(path) as library:
                return path, runner, index_status(library, runner)

        self._indexer.start(work, self._on_status)

    def _on_status(self, checked) -> None:
        path, runner, status = checked
        if (path, runner) != (self.library_path, self.runner):
            return  # read for a library or model no longer open
        self.session.set_index_status(status)
        ready = status.state == "ready"
        self.status.setText(("Index ready: " if ready else "") + status.message)
        self.index_button.setText("Rebuild index" if ready else
                                  "Update index" if status.state == "stale" else "Build index")
        self.index_button.setEnabled(True)
        self.search_button.setEnabled(ready or status.state == "stale")
        self.map_button.setEnabled(ready or status.state == "stale")
        self.index_state = status.state

    def build_index(self) -> None:
        """Build or update the index in the background (progress, cancel by rebuilding)."""
        from medviewer.services.retrieval import build_index
        from medviewer.store import Library

        path, runner = self.library_path, self.runner
        rebuild = self.index_button.text() == "Rebuild index"

        def work(state):
            with Library(path) as library:
                return build_index(library, runner, rebuild=rebuild, state=state)

        self.index_button.setEnabled(False)
        self._indexer.start(work, lambda report: self.check_index())

    # -- search -----------------------------------------------------------------------------
    def current_filter(self):
        """Return the filter the controls describe."""
        from medviewer.retrieval.filters import SearchFilter

        label, modality = self.label_filter.currentData(), self.modality_filter.currentData()
        chosen = tuple(m for m in (modality or "").split(",") if m and m != "*")
        return SearchFilter(labels=(label,) if label else (), modalities=chosen,
                            exclude_same_patient=self.same_patient.isChecked())

    def search_current(self, region=None) -> None:
        """Search with the case on screen (or a region of it) in the background."""
        image = self.session.image
        if image is None or image.case_id is None:
            self.vote.setText("The image on screen is not a case of this library; open a case "
                              "(radiograph or the key slice of a series).")
            return
        if self.session.runner is None:
            self.vote.setText("Load a model first (Model panel).")
            return
        k = self.k.value()
        job = self.session.search_job(k=k, farthest=k if self.farthest.isChecked() else 0,
                                      filters=self.current_filter(), region=region,
                                      thumbnail=_hit_thumbnail,
                                      any_modality=self.modality_filter.currentData() == "*")
        self.vote.setText("Searching\u2026")
        self._search.start(job, self.session.accept)

    def _clear_results(self) -> None:
        while self.results_layout.count() > 1:
            item = self.results_layout.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self.vote.setText("")
        self.applicability.hide()
        self.teach_button.setEnabled(False)

    def _on_results(self, result) -> None:
        from medviewer.qt.model_panel import show_applicability

        found = result
        thumbs = result.thumbnails
        result = result.result
        self._clear_results()
        self._found, self._marks, self._thumbs = found, {}, thumbs
        show_applicability(self.applicability, found.applicability)
        if found.notes and found.applicability is not None:
            self.applicability.setText(self.applicability.text() + "<br>" + "<br>".join(found.notes))
        elif found.notes:
            self.applicability.setText("<br>".join(found.notes))
            self.applicability.show()
        self.teach_button.setEnabled(result.query_case is not None)
        text = result.vote.text if result.nearest else "No case passes the filters."
        seconds = sum(result.timings.values()) if result.timings else 0.0
        extra = "".join(f"<br><span style='color:#c9a227'>{w}</span>" for w in result.warnings)
        self._vote_text = (f"<b>{text}</b><br><span style='color:#8a8f98'>{result.candidates} "
                           f"cases searched in {seconds * 1000:.0f} ms; "
                           f"{'; '.join(result.filters) or 'no filters'}</span>{extra}")
        self.vote.setText(self._vote_text)
        position = 0
        for far, hits in ((False, result.nearest), (True, result.farthest)):
            if far and hits:
                header = QLabel("<b>Farthest</b>", self.results_host)
                self.results_layout.insertWidget(position, header)
                position += 1
            for hit in hits:
                row = ResultRow(hit, thumbs.get((hit.location, hit.frame)), far, self.results_host)
                row.sig_open.connect(self.sig_open_case)
                row.sig_mark.connect(self._mark)
                self.results_layout.insertWidget(position, row)
                position += 1
        self.sig_results.emit(result)

    def show_map(self) -> None:
        """Open the embedding map with the current case marked."""
        from medviewer.qt.embedding_map import EmbeddingMapDialog

        image = self.session.image
        case_id = image.case_id if image is not None else None
        session, path, runner = self.session, self.library_path, self.runner

        def compute(method, state):
            return session.open_searcher(path, runner).embedding_map(method, query_case=case_id,
                                                                     state=state)

        dialog = EmbeddingMapDialog(compute, self)
        dialog.sig_open_case.connect(self.sig_open_case_id)
        dialog.show()
        self._map_dialog = dialog

    def add_to_teaching(self, collection: str | None = None) -> int:
        """Add the last result to a teaching collection (asked for, created if new).

        Returns the number of exemplars added (the query itself is added as the case).
        """
        from PySide6.QtWidgets import QInputDialog

        from medviewer.services.teaching import (
            add_retrieval_result,
            create_collection,
            list_collections,
        )
        from medviewer.store import Library

        if self.result is None or self.result.query_case is None or not self.library_path:
            return 0
        with Library(self.library_path) as library:
            names = [c.name for c in list_collections(library)]
            if collection is None:
                collection, ok = QInputDialog.getItem(self, "Teaching collection",
                                                      "Collection (type a new name to create one):",
                                                      names or ["Teaching cases"], 0, True)
                if not ok or not collection.strip():
                    return 0
            collection = collection.strip()
            if collection not in names:
                create_collection(library, collection)
            items = add_retrieval_result(library, collection, self.result)
        self.vote.setText(self.vote.text() + f"<br>Added to teaching collection "
                          f"\u201c{collection}\u201d with {len(items)} exemplars.")
        return len(items)

    def _mark(self, hit, relevant: bool) -> None:
        from medviewer.services.retrieval import mark_relevance
        from medviewer.store import Library

        if self.result is None or not self.library_path:
            return
        with Library(self.library_path) as library:
            mark_relevance(library, self.result, hit, relevant)
        self._marks[hit.case_id] = relevant
        self.rerank()

    def rerank(self) -> None:
        """Re-rank the nearest results by the marks so far (Rocchio query movement) and redraw them."""
        from medviewer.retrieval.feedback import rerank

        found = getattr(self, "_found", None)
        if found is None or not found.pool or not self._marks:
            return
        pool = list(found.pool)
        for hit in self.result.nearest:  # a marked shown hit is in the pool (same filters) or added
            if hit.case_id not in {h.case_id for h in pool}:
                pool.append(hit)
        usable = [h for h in pool if found.vectors.get(h.case_id) is not None]
        marks = {i: self._marks[h.case_id] for i, h in enumerate(usable) if h.case_id in self._marks}
        order = rerank(found.vectors["query"], np.stack([found.vectors[h.case_id] for h in usable]), marks).order
        # Marked "not relevant" results stay visible at the bottom (their state shows); the
        # rest of the k places go to the relevant ones and the best unmarked candidates.
        rejected = [usable[i] for i in order if marks.get(int(i)) is False]
        shown = [usable[i] for i in order if marks.get(int(i)) is not False]
        shown = shown[:max(0, len(self.result.nearest) - len(rejected))] + rejected
        for row in self.rows():
            if row.far is False:
                self.results_layout.removeWidget(row)
                row.hide()  # at once: deleteLater waits for the event loop, and would still paint
                row.deleteLater()
        for position, hit in enumerate(shown):
            row = ResultRow(hit, self._thumbs.get((hit.location, hit.frame)), False, self.results_host,
                            rank=position + 1)
            row.set_mark(self._marks.get(hit.case_id))
            row.sig_open.connect(self.sig_open_case)
            row.sig_mark.connect(self._mark)
            self.results_layout.insertWidget(position, row)
        self.feedback_note = (f"Re-ranked by your {len(marks)} mark{'s' if len(marks) != 1 else ''} "
                              f"(Rocchio: the query moved towards relevant results and away from the others); "
                              "marked relevant first, not relevant last")
        self.vote.setText(self._vote_text + f"<br><span style='color:#7fb77e'>{self.feedback_note}</span>")

    def rows(self) -> list[ResultRow]:
        """Return the result rows on screen (for tests)."""
        return [self.results_layout.itemAt(i).widget() for i in range(self.results_layout.count())
                if isinstance(self.results_layout.itemAt(i).widget(), ResultRow)]

"""The report panel (the case's report by section, typed or pasted reports) and text search."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFrame, QHBoxLayout, QLabel, QLineEdit,
                               QPlainTextEdit,
                               QPushButton, QScrollArea, QSpinBox, QTextBrowser, QToolButton,
                               QVBoxLayout, QWidget)

from medviewer.qt.library_panel import to_qimage
from medviewer.qt.similar_panel import THUMB, _hit_thumbnail
from medviewer.qt.workers import TaskRunner

_TITLES = {"indication": "Indication", "comparison": "Comparison", "technique": "Technique",
           "findings": "Findings", "impression": "Impression", "body": "Report"}


def report_html(report) -> str:
    """Return the report as headed sections (HTML), or a line saying there is none."""
    from medviewer.reports.sections import SECTION_ORDER

    if report is None:
        return "<i>No report for this case.</i> Type or paste one with <b>Edit</b>."
    parts = []
    for name in SECTION_ORDER:
        text = report.sections.get(name)
        if text:
            body = escape(text).replace("\n", "<br>")
            parts.append(f"<h4 style='margin:6px 0 2px 0'>{_TITLES[name]}</h4><p style='margin:0'>{body}</p>")
    source = {"sr": "DICOM SR", "csv": "report table", "txt": "text file", "typed": "typed",
              "synthetic": "generated"}.get(report.source, report.source)
    return "".join(parts) + f"<p style='color:#8a8f98;font-size:small'>Source: {escape(source)}</p>"


def _rows(matches, with_cases: bool = False) -> str:
    rows = []
    for m in matches:
        cases = ""
        if with_cases:
            shown = ", ".join(str(c) for c in m.cases[:4]) + (", \u2026" if len(m.cases) > 4
                                                               else "")
            word = "cases" if len(m.cases) > 1 else "case"
            cases = f"<td style='color:#8a8f98;padding-left:8px'>{word} {shown}</td>"
        rows.append(f"<tr><td style='padding-right:8px'>{m.cosine:+.2f}</td>"
                    f"<td>{escape(m.sentence)}</td>{cases}</tr>")
    return "<table>" + "".join(rows) + "</table>"


def matches_html(found) -> str:
    """Return sentence matches as HTML: the model's applicability in words, then the tables."""
    verdict = found.applicability
    parts = []
    if verdict is not None:
        warn = (not verdict.applicable) or bool(verdict.unusual)
        style = ("background:#5a4300;color:#ffe7a3;font-weight:bold" if warn else "color:#9fb3a0")
        parts.append(f"<p style='{style}'>{escape(verdict.summary())}</p>")
    where = "the image" if found.region is None else escape(found.target)
    extra = f", {found.patches} patch{'es' if found.patches != 1 else ''}" if found.region else ""
    parts.append(f"<b>Sentences by similarity to {where}</b> (cosine in the model's joint space"
                 f"{extra}; a ranking, not a probability)")
    parts.append(_rows(found.own) if found.own else
                 "<p><i>The case's report has no sentences.</i></p>")
    if found.library:
        parts.append("<b>From other reports in the library</b>" + _rows(found.library, True))
    parts += [f"<p style='color:#c9a227'>{escape(n)}</p>" for n in found.notes]
    return "".join(parts)


class ReportPanel(QWidget):
    """Show the report of the case on screen, section by section; type or paste one.

    Reports stay in the library file; nothing is sent anywhere.
    """

    sig_saved = Signal(int)
    sig_matched = Signal(object)  # SentenceMatches shown

    def __init__(self, session=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library_path: str | None = None
        self.case_id: int | None = None
        self.report = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        self.view = QTextBrowser(self)
        self.view.setOpenLinks(False)
        layout.addWidget(self.view, 1)
        self.editor = QPlainTextEdit(self)
        self.editor.setPlaceholderText("INDICATION: ...\nFINDINGS: ...\nIMPRESSION: ...")
        self.editor.hide()
        layout.addWidget(self.editor, 1)
        buttons = QHBoxLayout()
        self.edit_button = QPushButton("Edit", self)
        self.edit_button.setToolTip("Type or paste this case's report")
        self.save_button = QPushButton("Save", self)
        self.cancel_button = QPushButton("Cancel", self)
        for b in (self.save_button, self.cancel_button):
            b.hide()
        self.match_button = QPushButton("Sentences that match the image", self)
        self.match_button.setToolTip("Rank this report's sentences by the image-text model's "
                                     "similarity to the image (a ranking, not a probability)")
        self.match_button.setEnabled(False)
        buttons.addWidget(self.edit_button)
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.match_button)
        layout.addLayout(buttons)
        self.library_box = QCheckBox("Also rank sentences from the library's other reports", self)
        self.library_box.setToolTip("Region and image matching also list the closest sentences of "
                                    "other cases' reports (with the cases that hold them)")
        layout.addWidget(self.library_box)
        self.model_note = QLabel("", self)
        self.model_note.setObjectName("panelMessage")
        self.model_note.setWordWrap(True)
        layout.addWidget(self.model_note)
        # Matches can run long (two tables): they scroll instead of squeezing the report.
        self.message = QLabel("", self)
        self.message.setObjectName("panelMessage")
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.RichText)
        self.message.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        self.message_scroll = QScrollArea(self)
        self.message_scroll.setWidgetResizable(True)
        self.message_scroll.setFrameShape(QFrame.NoFrame)
        self.message_scroll.setWidget(self.message)
        layout.addWidget(self.message_scroll, 1)
        self.model_path: str | None = None  # an image-text bundle, when one is loaded
        self.loaded_model: str | None = None  # whatever bundle is loaded (image-only too)
        self.region = None  # the rectangle last matched (image pixels), None: the whole image
        self._matcher = TaskRunner(self, message=self.message.setText)
        self.match_button.clicked.connect(self.match_sentences)
        self.edit_button.clicked.connect(self.start_editing)
        self.save_button.clicked.connect(self.save)
        self.cancel_button.clicked.connect(self.stop_editing)
        self.show_case(None, None)
        if session is not None:
            self.bind_session(session)

    def bind_session(self, session) -> None:
        """Follow the app Session: the report of the case on screen (GUI thread)."""
        self.session = session
        session.connect("case_shown", lambda image: self._follow(
            session.library_path, image.case_id if image is not None else None))
        session.connect("library_opened", lambda path: self.show_case(path, None))
        session.connect("model_loaded", lambda runner: self.set_model(
            str(runner.bundle.path) if runner is not None else None))

    def set_model(self, bundle_path: str | None) -> None:
        """Offer sentence matching only with an image-text bundle; say so otherwise."""
        from medviewer.reports.learned import is_image_text_bundle
        from medviewer.services.region_sentences import model_problem

        self.loaded_model = bundle_path or None
        self.model_path = bundle_path if bundle_path and is_image_text_bundle(bundle_path) else None
        problem = model_problem(self.model_path or self.loaded_model)
        self.model_note.setText(problem or "Press Shift+G and drag a rectangle on the image to "
                                "rank the report's sentences against that region.")
        self.match_button.setToolTip(problem or "Rank this report's sentences by the image-text "
                                     "model's similarity to the image (a ranking, not a "
                                     "probability)")
        self._update_match_button()

    def _update_match_button(self) -> None:
        self.match_button.setEnabled(self.model_path is not None and self.report is not None)

    def match_sentences(self) -> None:
        """Rank the report's sentences against the whole image (button; GUI thread)."""
        self.match_region(None)

    def match_region(self, region) -> None:
        """Rank the report's sentences against ``region`` of the image (None: the whole image).

        GUI thread; the model runs on a worker.  Without an image-text model, or without a
        case on screen, the panel says so in words.
        """
        from medviewer.services.region_sentences import match_sentences, model_problem
        from medviewer.store import Library

        if self.case_id is None or not self.library_path:
            self.message.setText("No library case on screen: open a radiograph (or a series' key "
                                 "slice) to match its report.")
            return
        problem = model_problem(self.model_path or self.loaded_model)
        if problem:
            self.message.setText(problem)
            return
        path, case_id, model, region_ = self.library_path, self.case_id, self.model_path, region
        include = self.library_box.isChecked()
        runner = getattr(getattr(self, "session", None), "runner", None)

        def work(state):
            with Library(path) as library:
                return case_id, match_sentences(library, case_id, model, region=region_,
                                                include_library=include, runner=runner)

        self.region = region
        self.message.setText("Matching sentences…")
        self._matcher.start(work, self._show_matches)

    def _show_matches(self, payload) -> None:
        case_id, found = payload
        if case_id != self.case_id:
            return  # another case is on screen now
        self.message.setText(matches_html(found))
        # Room for the tables: the ranked sentences are what the user asked to see.
        self.message_scroll.setMinimumHeight(min(260, self.message.sizeHint().height() + 8))
        self.sig_matched.emit(found)

    def _follow(self, library_path: str | None, case_id: int | None) -> None:
        # Scrolling a CT stack shows plane after plane that is no case: read nothing again.
        if (library_path, case_id) != (self.library_path, self.case_id):
            self.show_case(library_path, case_id)

    def show_case(self, library_path: str | None, case_id: int | None) -> None:
        """Show the report of ``case_id`` (None: nothing on screen, or not a case)."""
        from medviewer.services.reports import case_report
        from medviewer.store import Library

        self.stop_editing()
        self.library_path, self.case_id, self.report = library_path, case_id, None
        self.message.setText("")
        self.message_scroll.setMinimumHeight(0)
        self.edit_button.setEnabled(bool(library_path) and case_id is not None)
        self._update_match_button()
        if not library_path or case_id is None:
            self.view.setHtml("<i>No case on screen.</i>")
            return
        with Library(library_path) as library:
            self.report = case_report(library, case_id)
        self.view.setHtml(self._header() + report_html(self.report))
        self._update_match_button()

    def _header(self) -> str:
        # Which image the report belongs to: the active viewport's, when two are side by side.
        return f"<p style='color:#8a8f98;margin:0 0 4px 0'>Case {self.case_id} (active viewport)</p>"

    def start_editing(self) -> None:
        """Swap the view for an editor holding the current text."""
        self.editor.setPlainText(self.report.text if self.report is not None else "")
        for w in (self.view, self.edit_button):
            w.hide()
        for w in (self.editor, self.save_button, self.cancel_button):
            w.show()
        self.editor.setFocus()

    def stop_editing(self) -> None:
        """Leave the editor without saving."""
        for w in (self.editor, self.save_button, self.cancel_button):
            w.hide()
        for w in (self.view, self.edit_button):
            w.show()

    def save(self) -> None:
        """Store the typed report for the case (the panel says why when it cannot)."""
        from medviewer.errors import MedViewerError
        from medviewer.services.reports import set_typed_report
        from medviewer.store import Library

        if not self.library_path or self.case_id is None:
            return
        try:
            with Library(self.library_path) as library:
                self.report = set_typed_report(library, self.case_id, self.editor.toPlainText())
        except MedViewerError as exc:
            self.message.setText(exc.message + (f" ({exc.hint})" if exc.hint else ""))
            return
        self.message.setText("Report saved in the library.")
        self.view.setHtml(self._header() + report_html(self.report))
        self.stop_editing()
        self.sig_saved.emit(self.case_id)


class TextHitRow(QFrame):
    """One case found by words: thumbnail, score, labels, matching sentence, Open."""

    sig_open = Signal(object)

    def __init__(self, hit, thumb, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.hit = hit
        self.setObjectName("resultRow")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        picture = QLabel(self)
        picture.setFixedSize(THUMB, THUMB)
        picture.setAlignment(Qt.AlignCenter)
        if thumb is not None:
            picture.setPixmap(QPixmap.fromImage(to_qimage(thumb)))
        layout.addWidget(picture)
        labels = ", ".join(hit.labels) or "no labels"
        snippet = f"<br><i>\u201c{escape(hit.snippet)}\u201d</i>" if hit.snippet else ""
        # Which ranker found it, with its own rank and raw score: a fused score alone would
        # hide that a case was found by the model only, or by the words only.
        how = (f"<br><span style='color:#8a8f98'>Found by {escape(hit.ranker_text())}</span>"
               if hit.rankers else "")
        kind = "fused score (RRF)" if len(hit.rankers) > 1 else "score"
        text = QLabel(f"<b>#{hit.rank}</b> &nbsp;{kind} {hit.score:.3g}{how}<br>"
                      f"{escape(labels)}{snippet}", self)
        text.setWordWrap(True)
        layout.addWidget(text, 1)
        open_button = QToolButton(self)
        open_button.setText("Open")
        open_button.setToolTip("Show beside the image on screen")
        open_button.clicked.connect(lambda: self.sig_open.emit(self.hit))
        layout.addWidget(open_button)

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt naming
        self.sig_open.emit(self.hit)


class TextSearchPanel(QWidget):
    """Find cases by a phrase in their reports (BM25), or by the image-text model, or both."""

    sig_open_case = Signal(object)
    sig_results = Signal(object)

    def __init__(self, session=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library_path: str | None = None
        self.model_path: str | None = None  # an image-text bundle, when one is loaded
        self.result = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        row = QHBoxLayout()
        self.query = QLineEdit(self)
        self.query.setPlaceholderText("e.g. cardiomegaly, no effusion, right lower lobe consolidation")
        self.query.setClearButtonEnabled(True)
        row.addWidget(self.query, 1)
        self.search_button = QPushButton("Search", self)
        row.addWidget(self.search_button)
        layout.addLayout(row)
        options = QHBoxLayout()
        self.rank = QComboBox(self)
        self.rank.addItem("Report words (BM25)", "bm25")
        self.rank.addItem("Image-text model", "learned")
        self.rank.addItem("Both (fused)", "fused")
        options.addWidget(self.rank, 1)
        options.addWidget(QLabel("k", self))
        self.k = QSpinBox(self)
        self.k.setRange(1, 50)
        self.k.setValue(10)
        options.addWidget(self.k)
        layout.addLayout(options)
        self.teach_button = QPushButton("Add results to a teaching collection\u2026", self)
        self.teach_button.setEnabled(False)
        layout.addWidget(self.teach_button)
        self.status = QLabel("Open a library to search its reports.", self)
        self.status.setObjectName("panelMessage")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.results_host = QWidget(self.scroll)
        self.results_layout = QVBoxLayout(self.results_host)
        self.results_layout.addStretch(1)
        self.scroll.setWidget(self.results_host)
        layout.addWidget(self.scroll, 1)
        # Expected problems (an empty phrase, a missing index) show in the panel; bugs once.
        self._search = TaskRunner(self, message=self.status.setText)
        self.search_button.clicked.connect(self.search)
        self.query.returnPressed.connect(self.search)
        self.teach_button.clicked.connect(lambda: self.add_to_teaching())
        self.set_model(None)
        if session is not None:
            self.bind_session(session)

    def bind_session(self, session) -> None:
        """Follow the app Session: its library, and its model when it is an image-text one."""
        self.session = session
        session.connect("library_opened", self.set_library)
        session.connect("model_loaded", lambda runner: self.set_model(
            str(runner.bundle.path) if runner is not None else None))

    def set_library(self, path: str | None) -> None:
        """Search this library (clears the results of the previous one)."""
        self.library_path = path
        self._clear()
        self.result = None
        self.teach_button.setEnabled(False)
        self.status.setText("Type a phrase and press Enter." if path else
                            "Open a library to search its reports.")

    def set_model(self, bundle_path: str | None) -> None:
        """Offer the learned rankings only with an image-text bundle."""
        from medviewer.reports.learned import is_image_text_bundle

        self.model_path = bundle_path if bundle_path and is_image_text_bundle(bundle_path) else None
        model = self.rank.model()
        for row in (1, 2):
            model.item(row).setEnabled(self.model_path is not None)
        if self.model_path is None:
            self.rank.setCurrentIndex(0)
        self.rank.setToolTip("" if self.model_path else
                             "The learned rankings need an image-text model (models.prior_train)")

    def search(self) -> None:
        """Run the search in the background; results replace the previous ones."""
        from medviewer.services.reports import text_search
        from medviewer.store import Library

        phrase = self.query.text().strip()
        if not self.library_path or not phrase:
            return
        path, k, rank, model = self.library_path, self.k.value(), self.rank.currentData(), self.model_path

        def work(state):
            with Library(path) as library:
                result = text_search(library, phrase, k=k, model=model if rank != "bm25" else None,
                                     rank=rank, allow_stale=True)
            thumbs = {h.case_id: _hit_thumbnail(h.location, 0) for h in result.hits}
            return result, thumbs

        self.status.setText("Searching\u2026")
        self._search.start(work, self._on_results)

    def _clear(self) -> None:
        while self.results_layout.count() > 1:
            item = self.results_layout.takeAt(0)
            if item.widget():
                item.widget().deleteLater()

    def _on_results(self, payload) -> None:
        result, thumbs = payload
        self.result = result
        self._clear()
        warnings = "".join(f"<br><span style='color:#c9a227'>{escape(w)}</span>" for w in result.warnings)
        fusion = f"<br>Fused by {escape(result.fusion)}." if result.fusion else ""
        self.status.setText(escape(result.summary) + fusion + warnings)
        for position, hit in enumerate(result.hits):
            row = TextHitRow(hit, thumbs.get(hit.case_id), self.results_host)
            row.sig_open.connect(self.sig_open_case)
            self.results_layout.insertWidget(position, row)
        self.teach_button.setEnabled(bool(result.hits))
        self.sig_results.emit(result)

    def add_to_teaching(self, collection: str | None = None) -> int:
        """Add the found cases to a teaching collection (asked for, created if new)."""
        from PySide6.QtWidgets import QInputDialog

        from medviewer.services.teaching import add_cases, create_collection, list_collections
        from medviewer.store import Library

        if self.result is None or not self.result.hits or not self.library_path:
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
            added = add_cases(library, collection, [h.case_id for h in self.result.hits])
        count = len(added) if isinstance(added, (list, tuple)) else int(added or 0)
        self.status.setText(self.status.text() + f"<br>Added {count} cases to \u201c{escape(collection)}\u201d.")
        return count

    def rows(self) -> list[TextHitRow]:
        """Return the result rows on screen (for tests)."""
        return [self.results_layout.itemAt(i).widget() for i in range(self.results_layout.count())
                if isinstance(self.results_layout.itemAt(i).widget(), TextHitRow)]

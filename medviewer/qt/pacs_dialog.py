"""The "Query a PACS" window: pick a node, find studies, retrieve them into the library.

Every network and library call runs on a worker through :class:`TaskRunner`, one
runner per kind of job so that a connection test never cancels a retrieve.  Expected
failures (a refused association, a timeout, an HTTP error) come back as results that
carry the service's message and hint and are shown in the message bar; anything else
goes through :func:`~medviewer.qt.workers.report_unexpected`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, QThreadPool, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from medviewer.errors import MedViewerError, TaskCancelled
from medviewer.pacs import NodeConfigError, StudyQuery
from medviewer.qt.pacs_nodes_dialog import NodeDialog, SetupPage
from medviewer.qt.pacs_results import ResultsTable, retrieve_summary
from medviewer.qt.pacs_widgets import DIALOG_STYLE, MessageBar, StudyQueryForm
from medviewer.qt.workers import TaskRunner
from medviewer.services import pacs
from medviewer.store.library import Library
from medviewer.tasks import TaskState

ECHO_HINTS = {"dimse": "Check the host, port and called AE title, and that the PACS "
                       "accepts this computer's AE title.",
              "dicomweb": "Check the base URL, the network and the credentials."}


@dataclass(frozen=True)
class _Problem:
    """An expected failure of a background job, in the service's words."""

    message: str
    hint: str = ""


def _expected(fn: Callable) -> Callable:
    """Wrap a task so that expected failures come back as a :class:`_Problem` (worker thread)."""
    def run(state):
        try:
            return fn(state)
        except TaskCancelled:
            raise
        except MedViewerError as exc:
            return _Problem(exc.message, exc.hint)
        except OSError as exc:  # a socket or disk error no service wrapped
            return _Problem(str(exc), "check the network, the disk and the folder permissions")
    return run


class PacsDialog(QDialog):
    """Find studies on a PACS and retrieve them into the open case library.

    Parameters
    ----------
    parent : QWidget or None
    library_path_provider : callable
        Returns the library to retrieve into (the caller may create one); called on the
        GUI thread only when the user retrieves.  A falsy return cancels the retrieve.
    current_library : callable, optional
        Returns the open library's path, or None, without creating one; the results'
        "In library" column uses it.  Without it, the last library retrieved into is used.
    config_path : path-like, optional
        The PACS node configuration (default: the user's ``pacs.json``).

    Signals
    -------
    sig_retrieved(str, list)
        After a retrieve: the library path and the Study Instance UIDs it now holds
        (in the order selected), so the main window can refresh and open the first.
    """

    sig_retrieved = Signal(str, list)

    def __init__(self, parent: QWidget | None, library_path_provider: Callable[[], str], *,
                 current_library: Callable[[], str | None] | None = None,
                 config_path=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Query a PACS")
        self.setStyleSheet(DIALOG_STYLE)
        self.resize(1120, 720)
        self.config_path = config_path
        self.report = None  # the last RetrieveReport
        self._library_path_provider = library_path_provider
        self._current_library = current_library
        self._library_path: str | None = None
        self._kinds: dict[str, str] = {}
        self._results_node = ""
        # Network calls wait for their timeout; keep them off the pool the viewer decodes on.
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(3)
        self._echo_runner, self._query_runner, self._retrieve_runner = (
            TaskRunner(self, self._pool) for _ in range(3))
        for runner in (self._echo_runner, self._query_runner, self._retrieve_runner):
            runner.sig_errored.connect(self._on_unexpected)
        self._query_runner.sig_errored.connect(lambda _exc: self.count_label.setText(""))
        self._retrieve_runner.sig_errored.connect(lambda _exc: self._set_retrieving(False))
        self._retrieve_runner.sig_progress.connect(self._on_progress)
        # Destroying the window (on quit) waits for the pool's jobs: ask them to stop first.
        # The slot holds the states only, never the half-destroyed window.
        self._states: dict[str, TaskState] = {}
        states = self._states
        self.destroyed.connect(lambda *_: [s.request_cancel() for s in states.values()])

        self.message = MessageBar(self)
        self.pages = QStackedWidget(self)
        self.setup = SetupPage(self.config_path, self)
        self.setup.button.clicked.connect(self._save_first_node)
        self.pages.addWidget(self.setup)
        self.pages.addWidget(self._main_page())
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(self.pages, 1)
        self.reload_nodes()

    # -- building ---------------------------------------------------------------------------
    def _main_page(self) -> QWidget:
        page = QWidget(self)
        nodes = QHBoxLayout()
        self.node_choice = QComboBox(page)
        self.node_choice.setMinimumWidth(380)
        self.node_choice.currentIndexChanged.connect(self._on_node_changed)
        self.test_button = QPushButton("Test connection", page)
        self.add_button = QPushButton("Add\u2026", page)
        self.edit_button = QPushButton("Edit\u2026", page)
        self.remove_button = QPushButton("Remove", page)
        self.test_button.clicked.connect(self.test_connection)
        self.add_button.clicked.connect(lambda: self.edit_node(None))
        self.edit_button.clicked.connect(lambda: self.edit_node(self.node_name()))
        self.remove_button.clicked.connect(self.remove_node)
        nodes.addWidget(QLabel("PACS", page))
        nodes.addWidget(self.node_choice, 1)
        for button in (self.test_button, self.add_button, self.edit_button, self.remove_button):
            nodes.addWidget(button)

        self.form = StudyQueryForm(page)
        # Enter anywhere in the form searches: the dialog clicks its default button.
        self.form.search_button.setDefault(True)
        self.form.search_button.clicked.connect(self.search)
        self.table = ResultsTable(page)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.count_label = QLabel("Fill in what you know and press Search (or Enter). "
                                  "Patient names match from the start.", page)
        self.count_label.setWordWrap(True)
        self.progress = QProgressBar(page)
        self.progress.setRange(0, 1000)
        self.progress.setMinimumWidth(220)
        self.cancel_button = QPushButton("Cancel", page)
        self.cancel_button.clicked.connect(self.cancel_retrieve)
        self.retrieve_button = QPushButton("Retrieve selected", page)
        self.retrieve_button.setObjectName("primaryButton")
        self.retrieve_button.clicked.connect(self.retrieve_selected)
        # Enter means Search, even after a click on another button (which would otherwise
        # become the default while it has focus).
        for button in (self.test_button, self.add_button, self.edit_button, self.remove_button,
                       self.cancel_button, self.retrieve_button):
            button.setAutoDefault(False)
        bottom = QHBoxLayout()
        bottom.addWidget(self.count_label, 1)
        for widget in (self.progress, self.cancel_button, self.retrieve_button):
            bottom.addWidget(widget)
        self.summary = QLabel("", page)
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(nodes)
        layout.addWidget(self.form)
        layout.addWidget(self.table, 1)
        layout.addLayout(bottom)
        layout.addWidget(self.summary)
        self._set_retrieving(False)
        return page

    # -- messages ---------------------------------------------------------------------------
    def _say_problem(self, problem: _Problem, doing: str) -> None:
        self.message.say(f"{doing} failed: {problem.message}", "error", problem.hint)

    def _on_unexpected(self, exc: Exception) -> None:
        from medviewer.qt.workers import report_unexpected

        if isinstance(exc, MedViewerError):
            self.message.say(exc.message, "error", exc.hint)
            return
        self.message.say(f"Something unexpected went wrong: {exc}", "error",
                         "the details are in the log; try again, or report it")
        report_unexpected(self, exc)

    # -- nodes ------------------------------------------------------------------------------
    def node_name(self) -> str:
        """Return the selected node's name ("" when there is none)."""
        return self.node_choice.currentData() or ""

    def reload_nodes(self, select: str | None = None) -> None:
        """List the configured nodes; show the setup form when there is none."""
        select = select or self.node_name()
        broken = False
        try:
            nodes = pacs.list_nodes(self.config_path).nodes
        except NodeConfigError as exc:
            nodes, broken = [], True  # say so on the main page; the setup form would overwrite
            self.message.say(exc.message, "error", exc.hint)
        self._kinds = {n.name: n.kind for n in nodes}
        self.node_choice.blockSignals(True)
        self.node_choice.clear()
        for node in nodes:
            self.node_choice.addItem(node.describe(), node.name)
        self.node_choice.setCurrentIndex(max(0, self.node_choice.findData(select)))
        self.node_choice.blockSignals(False)
        self.pages.setCurrentIndex(1 if nodes or broken else 0)
        (self.form.search_button if nodes or broken else self.setup.button).setDefault(True)
        self._update_buttons()

    def edit_node(self, name: str | None) -> NodeDialog | None:
        """Open the node form (window-modal, non-blocking) to add a node or edit ``name``."""
        try:
            node = pacs.list_nodes(self.config_path).node(name) if name else None
        except NodeConfigError as exc:
            self.message.say(exc.message, "error", exc.hint)
            return None
        dialog = NodeDialog(self.config_path, node, self)
        dialog.sig_saved.connect(self._on_node_saved)
        dialog.open()
        return dialog

    def remove_node(self) -> None:
        """Remove the selected node after asking."""
        name = self.node_name()
        if not name:
            return
        answer = QMessageBox.question(self, "Remove PACS", f"Remove {name!r} from MedViewer? "
                                      "Studies already retrieved stay in the library.")
        if answer != QMessageBox.Yes:
            return
        try:
            pacs.remove_node(name, self.config_path)
        except NodeConfigError as exc:
            self.message.say(exc.message, "error", exc.hint)
        self.reload_nodes()

    def _save_first_node(self) -> None:
        name = self.setup.editor.save()
        if name is not None:
            self.setup.editor.original = None  # if every node goes, this form adds a new one
            self._on_node_saved(name)

    def _on_node_saved(self, name: str) -> None:
        self.reload_nodes(select=name)
        self.test_connection()

    def _on_node_changed(self) -> None:
        # Results belong to the node that found them; a retrieve in flight keeps its own.
        self.message.hide()
        self.table.show_matches([])
        self.count_label.setText("")
        self._update_buttons()

    def test_connection(self) -> None:
        """Verify the selected node (C-ECHO or a DICOMweb query) on a worker."""
        name, config = self.node_name(), self.config_path
        if not name:
            return
        self.message.say(f"Testing the connection to {name}\u2026")
        self._echo_runner.start(_expected(lambda state: pacs.echo(name, config)), self._on_echo)

    def _on_echo(self, result) -> None:
        if isinstance(result, _Problem):
            self._say_problem(result, "The connection test")
            return
        ms = f"{result.seconds * 1000:.0f} ms"
        if result.ok:
            self.message.say(f"Connected: {result.node} answered in {ms}", "ok")
        else:
            self.message.say(f"No connection to {result.node} ({ms}): {result.status}",
                             "error", ECHO_HINTS.get(self._kinds.get(result.node, ""), ""))

    # -- query ------------------------------------------------------------------------------
    def _library_for_marks(self) -> str | None:
        path = self._current_library() if self._current_library else self._library_path
        return path if path and Path(path).is_file() else None

    def search(self) -> None:
        """Query the selected node on a worker; a new search replaces one in flight."""
        name, config, query = self.node_name(), self.config_path, self.form.study_query()
        if not name:
            return
        library_path = self._library_for_marks()

        def work(state):
            library = Library(library_path) if library_path else None
            try:
                return pacs.query(name, query, library=library, config_path=config, state=state)
            finally:
                if library is not None:
                    library.close()

        self.message.hide()
        self.count_label.setText(f"Searching {name}\u2026")
        self._states["query"] = self._query_runner.start(
            _expected(work), lambda result: self._on_matches(name, query, result))

    def _on_matches(self, name: str, query: StudyQuery, result) -> None:
        if isinstance(result, _Problem):
            self.count_label.setText("")
            self._say_problem(result, f"The search on {name}")
            return
        self._results_node = name
        self.table.show_matches(result)
        count = f"{len(result)} {'study' if len(result) == 1 else 'studies'} on {name}"
        if len(result) >= query.limit:
            count = f"The first {query.limit} studies on {name}: narrow the search to see others"
        self.count_label.setText(f"{count}. Select the ones you want (Ctrl or Shift for several)."
                                 if result else f"No study on {name} matches.")
        self._update_buttons()

    # -- retrieve ---------------------------------------------------------------------------
    def retrieve_selected(self) -> None:
        """Retrieve the selected studies into the library on a worker, with progress."""
        uids = self.table.selected_study_uids()
        if not uids or self._retrieve_runner.busy:
            return
        try:
            path = self._library_path_provider()
        except MedViewerError as exc:
            self.message.say(exc.message, "error", exc.hint)
            return
        if not path:
            self.message.say("Nothing was retrieved: there is no library to put the studies "
                             "in", "error", "open or create a library first")
            return
        self._library_path = str(path)
        name, config, shown = self._results_node, self.config_path, self.table.study_uids()

        def work(state):
            with Library(path) as library:
                report = pacs.retrieve(name, uids, library, config_path=config, state=state)
                counts = {uid: len(pacs.library_instances(library, uid)) for uid in shown}
            return report, counts

        self.message.hide()
        self.summary.setText("")
        self._states["retrieve"] = self._retrieve_runner.start(
            _expected(work), lambda result: self._on_retrieved(str(path), uids, result))
        self._set_retrieving(True)

    def cancel_retrieve(self) -> None:
        """Stop the retrieve in flight; its result is dropped and the window stays usable."""
        self._retrieve_runner.cancel()
        self._set_retrieving(False)
        self.message.say("Retrieve cancelled. Run it again to finish: images already in the "
                         "library are not fetched twice")

    def _on_progress(self, fraction: float, status: str) -> None:
        self.progress.setValue(round(fraction * 1000))
        if status:
            self.count_label.setText(status)

    def _on_retrieved(self, path: str, uids: list[str], result) -> None:
        self._set_retrieving(False)
        if isinstance(result, _Problem):
            self._say_problem(result, "The retrieve")
            return
        report, counts = result
        self.report = report
        self.table.set_in_library(counts)
        text, failed = retrieve_summary(report, self.table.titles())
        self.summary.setText(text)
        held = [uid for uid in uids if counts.get(uid)]
        if len(held) == len(uids):
            text = ("The selected study is" if len(uids) == 1 else
                    f"All {len(uids)} selected studies are") + " in the library now"
        else:
            text = f"Only {len(held)} of {len(uids)} selected studies are in the library now"
        self.message.say(text, "error" if failed or len(held) < len(uids) else "ok",
                         "the reasons are listed below the results" if failed else "")
        self.count_label.setText(f"Retrieved from {report.node} into {Path(path).name}.")
        self.sig_retrieved.emit(path, held)

    # -- state ------------------------------------------------------------------------------
    def _set_retrieving(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.progress.setValue(0)
        self.cancel_button.setVisible(busy)
        self._update_buttons()

    def _update_buttons(self) -> None:
        has_node = bool(self.node_name())
        for button in (self.test_button, self.edit_button, self.remove_button,
                       self.form.search_button):
            button.setEnabled(has_node)
        selected = len(self.table.selected_study_uids())
        self.retrieve_button.setEnabled(bool(selected) and not self._retrieve_runner.busy)
        self.retrieve_button.setText(f"Retrieve selected ({selected})" if selected
                                     else "Retrieve selected")


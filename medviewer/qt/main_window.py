"""The main window: docks (library, case, model, similar cases, overlays), viewport grid, status.

Menus live in :mod:`medviewer.qt.main_menus`, the other windows in
:mod:`medviewer.qt.main_dialogs`, the viewing commands in :mod:`medviewer.qt.viewer_commands`
and import in :mod:`medviewer.qt.import_actions`; the app's state is the :class:`Session`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QGridLayout, QMainWindow, QMessageBox,
                               QProgressBar, QPushButton, QScrollArea, QStackedWidget, QWidget)

from medviewer.display.corner_text import patient_lines, study_lines
from medviewer.display.hanging import MAX_VIEWPORTS, parse_layout
from medviewer.qt.case_panel import CasePanel
from medviewer.qt.import_actions import ImportActionsMixin
from medviewer.qt.library_panel import LibraryPanel
from medviewer.qt.main_dialogs import WindowDialogsMixin
from medviewer.qt.main_menus import add_action, build_menus, shortcut_rows as action_rows
from medviewer.qt.model_panel import ModelPanel
from medviewer.qt.overlay_panel import OverlayPanel
from medviewer.qt.report_panel import ReportPanel, TextSearchPanel
from medviewer.qt.shortcuts import apply_shortcuts
from medviewer.qt.similar_panel import SimilarCasesPanel
from medviewer.qt.viewer_commands import ViewerCommandsMixin
from medviewer.qt.viewport_widget import ViewportWidget
from medviewer.qt.welcome import WelcomePage
from medviewer.qt.window_state import remember_window_state, restore_window_state
from medviewer.qt.workers import TaskRunner
from medviewer.services.image_cache import ImageCache
from medviewer.services.session import Session
from medviewer.services.settings import Settings, save_settings
from medviewer.services.viewer_state import ScrollSync, WindowLink

log = logging.getLogger(__name__)


def _is_layout(name: str) -> bool:
    try:
        parse_layout(name)
    except ValueError:
        return False
    return True


class MainWindow(ImportActionsMixin, WindowDialogsMixin, ViewerCommandsMixin, QMainWindow):
    """The viewer's main window: layout, docks and menus over one :class:`Session`.

    The session holds the app's state (library, model, images on screen, results);
    the panels subscribe to it and draw.  The window tells the session what each
    viewport shows and which one is active.

    Parameters
    ----------
    settings : Settings
        The user's settings; saved when they change and on close.
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.cache = ImageCache()
        self.session = Session(self.cache)
        self.viewports: list[ViewportWidget] = []
        self.active: ViewportWidget | None = None
        self.scroll_sync = ScrollSync()
        self.window_link = WindowLink()
        self.setWindowTitle("MedViewer")
        self.setAcceptDrops(True)
        self.resize(1400, 900)
        self._build_docks()
        self._build_central()
        self._build_status()
        build_menus(self)
        self.set_layout(settings.layout if _is_layout(settings.layout) else "1x1")
        self.apply_settings(settings)
        restore_window_state(self, settings)
        self.demo_tour = None
        self._demo_clicked = 0.0  # when the user asked for the demo (perf_counter)
        self._pacs_dialog = None  # one PACS window, kept so a retrieve survives closing it
        self.importer = TaskRunner(self)
        self.importer.sig_progress.connect(self._on_import_progress)
        self.importer.sig_errored.connect(self._on_import_failed)
        self.cine = QTimer(self)
        self.cine.timeout.connect(self._cine_step)

    def _action(self, menu, text: str, slot, keys=None, checkable=False, group=""):
        """Add an action to a menu and the window (for modules that add their own items)."""
        return add_action(self, menu, text, slot, keys, checkable, group)

    @property
    def library_path(self) -> str | None:
        """Return the open library (the session's)."""
        return self.session.library_path

    # -- construction -----------------------------------------------------------------------
    def _dock(self, title: str, name: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        session, right = self.session, Qt.RightDockWidgetArea
        self.library_panel = LibraryPanel(session, self)
        self.library_panel.sig_series_chosen.connect(self.open_series)
        self.library_panel.sig_search_left.connect(lambda: self.active and self.active.setFocus())
        self.library_dock = self._dock("Library", "libraryDock", self.library_panel,
                                       Qt.LeftDockWidgetArea)
        self.library_dock.setFeatures(QDockWidget.DockWidgetMovable
                                      | QDockWidget.DockWidgetFloatable)
        self.case_panel = CasePanel(session, self)
        self.case_dock = self._dock("Case", "caseDock", self.case_panel, right)
        self.model_panel = ModelPanel(session, self)
        # The dock shares the column's height: scroll rather than squash the probabilities and
        # the applicability verdict above them.
        model_scroll = QScrollArea(self)
        model_scroll.setWidgetResizable(True)
        model_scroll.setFrameShape(QScrollArea.NoFrame)
        model_scroll.setWidget(self.model_panel)
        self.model_dock = self._dock("Model", "modelDock", model_scroll, right)
        self.similar_panel = SimilarCasesPanel(session, self)
        self.similar_panel.sig_open_case.connect(self.open_result_beside)
        self.similar_panel.sig_open_case_id.connect(self.open_case)
        self.similar_dock = self._dock("Similar cases", "similarDock", self.similar_panel, right)
        self.overlay_panel = OverlayPanel(session, self)
        self.overlay_dock = self._dock("Overlays", "overlayDock", self.overlay_panel, right)
        # The report beside the image (a tab of the Case column), and search by words as a
        # tab of Similar cases: both list cases the same way.
        self.report_panel = ReportPanel(session, self)
        self.report_dock = self._dock("Report", "reportDock", self.report_panel, right)
        self.text_search_panel = TextSearchPanel(session, self)
        self.text_search_panel.sig_open_case.connect(self.open_text_hit)
        self.words_dock = self._dock("Find by words", "wordsDock", self.text_search_panel, right)
        self.tabifyDockWidget(self.case_dock, self.report_dock)
        self.tabifyDockWidget(self.report_dock, self.model_dock)
        self.tabifyDockWidget(self.model_dock, self.overlay_dock)
        self.tabifyDockWidget(self.similar_dock, self.words_dock)
        self.similar_dock.raise_()
        self.case_dock.raise_()
        self.resizeDocks([self.library_dock, self.case_dock], [330, 330], Qt.Horizontal)
        # Similar cases get the larger share of the right column: five results with their
        # thumbnails and the query's applicability must fit at 1920 x 1080.
        self.resizeDocks([self.case_dock, self.similar_dock], [300, 620], Qt.Vertical)

    def _build_central(self) -> None:
        # The first-run page stands in for the viewports until a library is open.
        self.central = QStackedWidget(self)
        self.welcome = WelcomePage(self.central)
        self.welcome.sig_demo.connect(self.open_demo)
        self.welcome.sig_folder.connect(self.choose_import_folder)
        self.welcome.sig_pacs.connect(self.show_pacs)
        self.welcome.sig_open_library.connect(self._open_library_safely)
        self.welcome.set_recent(self.settings.recent_libraries)
        self.grid_host = QWidget(self.central)
        self.grid = QGridLayout(self.grid_host)
        self.grid.setContentsMargins(2, 2, 2, 2)
        self.grid.setSpacing(3)
        self.central.addWidget(self.welcome)
        self.central.addWidget(self.grid_host)
        self.setCentralWidget(self.central)
        for slot in range(MAX_VIEWPORTS):
            viewport = ViewportWidget(self.cache, self.grid_host)
            viewport.sig_activated.connect(lambda v=viewport: self.set_active(v))
            # The session learns of a new plane at once (before it decodes), so results of
            # the plane before are gone the moment the user moves on.
            viewport.state.connect("index_changed",
                                   lambda index, v=viewport, s=slot: self._on_index_changed(v, s))
            viewport.sig_region_selected.connect(self.search_region)
            viewport.sig_sentence_region.connect(self.match_region_sentences)
            viewport.hide_identifying = self.settings.hide_identifying_text
            viewport.show_corner_text = self.settings.show_corner_text
            self.viewports.append(viewport)
        self.overlay_panel.attach_viewports(self.viewports)
        self.set_active(self.viewports[0])

    def _build_status(self) -> None:
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(220)
        self.progress.setRange(0, 1000)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel_import)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self.statusBar().showMessage("Ready")

    # -- library ------------------------------------------------------------------------------
    def open_library(self, path: str) -> None:
        """Open (or create) a library and list it."""
        self.window_link.unlink()
        path = self.session.open_library(path)  # the panels follow its events
        for viewport in self.viewports:
            viewport.clear()
        self.settings.add_recent(path)
        save_settings(self.settings)
        self._fill_recent()
        self.welcome.set_recent(self.settings.recent_libraries)
        self.central.setCurrentWidget(self.grid_host)
        self.setWindowTitle(f"MedViewer \u2014 {Path(path).stem}")
        self.statusBar().showMessage(f"Library {path}", 5000)
        order = self.library_panel.series_order()
        if order:
            self.open_series(order[0], viewport=self.viewports[0])
        from medviewer.services.demo import LIBRARY_NAME

        # The demo opens ready to classify and search; other libraries wait for the user.
        if self.session.runner is None and Path(path).name == LIBRARY_NAME:
            self.model_panel.load_default()

    def choose_library(self) -> None:
        """Ask for a library file to open."""
        path, _ = QFileDialog.getOpenFileName(self, "Open library", str(Path.home()),
                                              "MedViewer library (*.sqlite *.db);;All files (*)")
        if path:
            self._open_library_safely(path)

    def new_library(self) -> None:
        """Ask where to create a new, empty library."""
        path, _ = QFileDialog.getSaveFileName(self, "New library", str(Path.home() / "library.sqlite"),
                                              "MedViewer library (*.sqlite)")
        if path:
            self._open_library_safely(path)

    def _open_library_safely(self, path: str) -> None:
        from medviewer.errors import MedViewerError

        try:
            self.open_library(path)
        except MedViewerError as exc:
            QMessageBox.warning(self, "MedViewer", str(exc))

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_libraries:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _c=False, p=path: self._open_library_safely(p))
        self.recent_menu.setEnabled(bool(self.settings.recent_libraries))

    def open_demo(self) -> None:
        """Build the demo library in the background (first time) and open it."""
        from time import perf_counter

        from medviewer.services.demo import build_demo

        self._demo_clicked = perf_counter()
        self._begin_import("Preparing the demo library")
        self.importer.start(lambda state: str(build_demo(state=state)), self._on_demo_built)

    def _on_demo_built(self, path: str) -> None:
        self._end_import()
        self.open_library(path)
        self.start_demo_tour()

    def start_demo_tour(self, started: float | None = None) -> None:
        """Show one case of the open demo library classified, searched and explained.

        ``started`` is when the user asked for the demo (``perf_counter``), so "ready in"
        counts the build done before the window opened (``medviewer demo``).
        """
        from time import perf_counter

        from medviewer.qt.demo_tour import DemoTour

        if started is not None:
            self._demo_clicked = started
        if not self._demo_clicked:
            self._demo_clicked = perf_counter()
        self.demo_tour = DemoTour(self)
        self.demo_tour.sig_step.connect(
            lambda step: self.statusBar().showMessage(f"Demo: {step}\u2026"))
        self.demo_tour.sig_finished.connect(self._on_demo_tour_finished)
        self.demo_tour.sig_failed.connect(
            lambda why: self.statusBar().showMessage(f"Demo stopped: {why}", 15000))
        self.demo_tour.start()

    def _on_demo_tour_finished(self, result) -> None:
        from time import perf_counter

        seconds = perf_counter() - self._demo_clicked
        self.statusBar().showMessage(
            f"Demo ready in {seconds:.0f} s: this case was classified, its "
            f"{result.similar} most similar cases are listed on the right and the overlay shows "
            "where the model looked (O hides it). Click a similar case to compare.", 30000)


    # -- viewing ------------------------------------------------------------------------------
    def open_series(self, series_id: int, viewport: ViewportWidget | None = None) -> None:
        """Show a series in the active viewport (GUI thread; pixels decode in the background)."""
        viewport = viewport or self.active
        with self.session.library() as library:
            series = library.series(series_id=series_id)[0]
            instances = library.instances(series_id)
            study = library.study_header(series.study_ref)
        if self.window_link.pair is not None and viewport.state in self.window_link.pair:
            self.window_link.unlink()  # the comparison this viewport was part of is over
        viewport.library_path = self.library_path  # measurements are kept in the library
        viewport.show_series(
            series, instances,
            patient_lines(study.patient_name, study.patient_id, study.birth_date, study.sex,
                          study.study_date),
            study_lines(study.study_date, study.description, study.accession))
        viewport.series_id = series_id
        self.library_panel.select_series(series_id)
        if viewport is self.active and self.isActiveWindow() and viewport.isVisible():
            # Keys go to the series just opened, not the library tree; a series opened beside
            # (a similar case) leaves the focus on the query.
            viewport.setFocus()

    def current_case_id(self, viewport: ViewportWidget | None = None) -> int | None:
        """Return the library case shown in a viewport, if the plane on screen is one."""
        viewport = viewport or self.active
        image = self.session.shown.get(self.viewports.index(viewport)) if viewport else None
        return image.case_id if image is not None else None

    def search_region(self, x: int, y: int, width: int, height: int) -> None:
        """Search similar cases with a rectangle of the image on screen."""
        from medviewer.retrieval.search import Region

        viewport = self.active
        if viewport is None or viewport.state.current is None:
            return
        state = viewport.state
        if state.rotation or state.flip_horizontal or state.flip_vertical:
            self.statusBar().showMessage("Reset rotation and flips (Ctrl+R) to search a region", 6000)
            return
        self.similar_dock.raise_()
        self.similar_panel.search_current(region=Region(x, y, width, height))

    def match_region_sentences(self, x: int, y: int, width: int, height: int) -> None:
        """Rank the report's sentences against a rectangle of the image on screen."""
        from medviewer.retrieval.search import Region

        viewport = self.active
        if viewport is None or viewport.state.current is None:
            return
        state = viewport.state
        if state.rotation or state.flip_horizontal or state.flip_vertical:
            self.statusBar().showMessage("Reset rotation and flips (Ctrl+R) to match a region",
                                         6000)
            return
        self.report_dock.raise_()
        # The ranked sentences need height more than the similar-cases dock below does.
        self.resizeDocks([self.report_dock], [max(self.report_dock.height(), 560)], Qt.Vertical)
        self.report_panel.match_region(Region(x, y, width, height))

    def open_case(self, case_id: int) -> None:
        """Open a library case (e.g. clicked in the embedding map) in the active viewport."""
        with self.session.library() as library:
            plane = library.case_plane(case_id)
        if plane is None:
            self.statusBar().showMessage("That case is no longer in the library", 5000)
            return
        series_id, instance_id, frame = plane
        self.open_series(series_id)
        self._go_to_plane(self.active, instance_id, frame)

    @staticmethod
    def _go_to_plane(viewport: ViewportWidget, instance_id: int, frame: int) -> None:
        for index, plane in enumerate(viewport.state.planes):
            if plane.instance.id == instance_id and plane.frame == frame:
                viewport.state.set_index(index)
                break

    def toggle_overlays(self) -> None:
        """Show or hide the attention/saliency overlays (kept in step with the panel's box)."""
        self.overlay_panel.toggle_overlay()

    def open_result_beside(self, hit) -> None:
        """Show a retrieved case beside the query, with linked window/level and zoom."""
        with self.session.library() as library:
            instance = library.instance_by_location(hit.location)
        if instance is None:
            self.statusBar().showMessage("That case is no longer in the library", 5000)
            return
        self._open_beside(instance.series_ref, instance.id, hit.frame)
        self.overlay_panel.add_hit(hit)

    def open_text_hit(self, hit) -> None:
        """Open a case found by words: beside the image on screen, else in the active viewport."""
        if self.session.image is None:
            self.open_case(hit.case_id)
            return
        with self.session.library() as library:
            plane = library.case_plane(hit.case_id)
        if plane is None:
            self.statusBar().showMessage("That case is no longer in the library", 5000)
            return
        self._open_beside(*plane)

    def _open_beside(self, series_id: int, instance_id: int, frame: int) -> None:
        query = self.active if self.active is not None else self.viewports[0]
        if self.settings.layout == "1x1":
            self.set_layout("1x2")
        others = [v for v in self._visible_viewports() if v is not query]
        target = others[0]
        self.open_series(series_id, viewport=target)
        self._go_to_plane(target, instance_id, frame)
        self.link_viewports(query, target)

    def link_viewports(self, first: ViewportWidget, second: ViewportWidget) -> None:
        """Link zoom/pan and window/level of two viewports (comparison of query and result)."""
        second.box.setXLink(first.box)
        second.box.setYLink(first.box)
        self.window_link.link(first.state, second.state)

    def _on_index_changed(self, viewport: ViewportWidget, slot: int) -> None:
        plane = viewport.state.current
        if plane is None:
            self.session.show_nothing(slot)
        else:
            self.session.show_plane(plane.instance.id, plane.frame, plane.instance.location,
                                    plane.instance.series_ref, slot=slot)
        # Follow by patient position where the frames of reference allow it (said in words).
        self.scroll_sync.follow(viewport.state, [v.state for v in self._visible_viewports()],
                                frame_of=self._frame_of_reference)
        stayed = [self.scroll_sync.reason_for(v.state) for v in self._visible_viewports()
                  if v is not viewport and v.state.planes]
        if any(r.startswith("not linked") for r in stayed):
            self.statusBar().showMessage(next(r for r in stayed if r.startswith("not linked")), 4000)

    def _frame_of_reference(self, state) -> str:
        """Return the Frame of Reference UID of the image a viewer state shows ("" unknown)."""
        for viewport in self.viewports:
            if viewport.state is state and viewport._image is not None:
                return viewport._image.frame_of_reference
        return ""

    def _visible_viewports(self) -> list[ViewportWidget]:
        layout = getattr(self.settings, "layout", "1x1")
        rows, cols = parse_layout(layout) if _is_layout(layout) else (1, 1)
        return self.viewports[: rows * cols]

    def set_active(self, viewport: ViewportWidget) -> None:
        """Make a viewport the target of keys and of the library's double-click."""
        self.active = viewport
        self.session.set_active(self.viewports.index(viewport))
        for v in self.viewports:
            v.setProperty("active", v is viewport and len(self._visible_viewports()) > 1)
            v.style().unpolish(v)
            v.style().polish(v)

    def set_layout(self, name: str) -> None:
        """Show a layout of viewports: 1x1 ... 2x3 or any rows x columns up to six."""
        rows, cols = parse_layout(name)
        for v in self.viewports:
            self.grid.removeWidget(v)
            v.hide()
        for i in range(rows * cols):
            self.grid.addWidget(self.viewports[i], i // cols, i % cols)
            self.viewports[i].show()
        for slot in range(rows * cols, len(self.viewports)):
            self.session.show_nothing(slot)  # a hidden viewport shows nothing to the user
            self.viewports[slot].clear()
        self.settings.layout = name
        if self.active not in self.viewports[: rows * cols]:
            self.set_active(self.viewports[0])
        else:
            self.set_active(self.active)

    # -- settings, other windows --------------------------------------------------------------
    def shortcut_rows(self) -> list[tuple[str, str, str]]:
        """Return (group, keys, action) for every action with a shortcut."""
        return action_rows(self.actions())

    def apply_settings(self, settings: Settings) -> None:
        """Use a (new) set of settings: model folders and provider, shortcuts, log level."""
        self.settings = settings
        panel = self.model_panel
        panel.provider_preference = settings.provider_preference
        panel.default_model = settings.default_model
        if panel.model_folders != list(settings.model_folders):
            panel.model_folders = list(settings.model_folders)
            panel.refresh_bundles()  # the panel listed the standard folders when it was built
        apply_shortcuts(self.actions(), settings.shortcuts)
        logging.getLogger().setLevel(settings.log_level)

    def _after_new_studies(self) -> None:
        """List new studies and, if nothing is on screen yet, show the first."""
        self.session.library_changed()
        self.library_panel.refresh()
        if self.active is not None and self.active.state.current is None:
            order = self.library_panel.series_order()
            if order:
                self.open_series(order[0], viewport=self.viewports[0])

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt naming
        from PySide6.QtCore import QThreadPool

        self.importer.cancel()
        for runner in self.findChildren(TaskRunner):
            runner.cancel()
        remember_window_state(self, self.settings)
        save_settings(self.settings)
        # No worker may outlive the widgets it reports to.
        QThreadPool.globalInstance().waitForDone(10000)
        super().closeEvent(event)

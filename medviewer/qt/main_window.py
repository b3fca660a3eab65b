"""The main window: library browser, viewport grid, case panel, menus and shortcuts."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QGridLayout, QLabel, QMainWindow,
                               QMessageBox, QProgressBar, QPushButton, QScrollArea, QStackedWidget,
                               QWidget)

from medviewer.display.corner_text import patient_lines, study_lines
from medviewer.display.windowing import PRESET_KEYS, PRESETS, auto_window, preset_applies
from medviewer.qt.case_panel import CasePanel
from medviewer.qt.dialogs import ShortcutSheetDialog
from medviewer.display.hanging import MAX_VIEWPORTS, parse_layout
from medviewer.qt.hanging import add_layout_actions
from medviewer.qt.library_panel import LibraryPanel
from medviewer.qt.measurement_actions import TOOL_HELP, add_measurement_actions
from medviewer.qt.model_panel import ModelPanel
from medviewer.qt.mpr_window import add_mpr_action
from medviewer.qt.seg_actions import add_seg_action
from medviewer.qt.viewport_export import add_export_action
from medviewer.qt.overlay_panel import OverlayPanel
from medviewer.qt.shortcuts import action_id, apply_shortcuts
from medviewer.qt.report_panel import ReportPanel, TextSearchPanel
from medviewer.qt.similar_panel import SimilarCasesPanel
from medviewer.qt.study_menu import ReaderStudyMenu
from medviewer.qt.teaching_menu import TeachingMenu
from medviewer.qt.viewport_widget import ViewportWidget
from medviewer.qt.welcome import WelcomePage
from medviewer.qt.window_state import remember_window_state, restore_window_state
from medviewer.qt.workers import TaskRunner
from medviewer.services.image_cache import ImageCache
from medviewer.services.session import Session
from medviewer.services.settings import Settings, save_settings, user_library_folder
from medviewer.services.viewer_state import ScrollSync, WindowLink
from medviewer.store.library import Library

log = logging.getLogger(__name__)


def _is_layout(name: str) -> bool:
    try:
        parse_layout(name)
    except ValueError:
        return False
    return True


class MainWindow(QMainWindow):
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
        self._build_actions()
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

    @property
    def library_path(self) -> str | None:
        """Return the open library (the session's)."""
        return self.session.library_path

    # -- construction -----------------------------------------------------------------------
    def _build_docks(self) -> None:
        session = self.session
        self.library_panel = LibraryPanel(session, self)
        self.library_panel.sig_series_chosen.connect(self.open_series)
        self.library_panel.sig_search_left.connect(lambda: self.active and self.active.setFocus())
        dock = QDockWidget("Library", self)
        dock.setObjectName("libraryDock")
        dock.setWidget(self.library_panel)
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable)
        self.addDockWidget(Qt.LeftDockWidgetArea, dock)
        self.library_dock = dock
        self.case_panel = CasePanel(session, self)
        case_dock = QDockWidget("Case", self)
        case_dock.setObjectName("caseDock")
        case_dock.setWidget(self.case_panel)
        self.addDockWidget(Qt.RightDockWidgetArea, case_dock)
        self.case_dock = case_dock
        self.model_panel = ModelPanel(session, self)
        model_dock = QDockWidget("Model", self)
        model_dock.setObjectName("modelDock")
        # The dock shares the column's height: scroll rather than squash the probabilities and
        # the applicability verdict above them.
        model_scroll = QScrollArea(model_dock)
        model_scroll.setWidgetResizable(True)
        model_scroll.setFrameShape(QScrollArea.NoFrame)
        model_scroll.setWidget(self.model_panel)
        model_dock.setWidget(model_scroll)
        self.addDockWidget(Qt.RightDockWidgetArea, model_dock)
        self.model_dock = model_dock
        self.similar_panel = SimilarCasesPanel(session, self)
        self.similar_panel.sig_open_case.connect(self.open_result_beside)
        self.similar_panel.sig_open_case_id.connect(self.open_case)
        similar_dock = QDockWidget("Similar cases", self)
        similar_dock.setObjectName("similarDock")
        similar_dock.setWidget(self.similar_panel)
        self.addDockWidget(Qt.RightDockWidgetArea, similar_dock)
        self.similar_dock = similar_dock
        self.overlay_panel = OverlayPanel(session, self)
        overlay_dock = QDockWidget("Overlays", self)
        overlay_dock.setObjectName("overlayDock")
        overlay_dock.setWidget(self.overlay_panel)
        self.addDockWidget(Qt.RightDockWidgetArea, overlay_dock)
        self.overlay_dock = overlay_dock
        # The report beside the image (a tab of the Case column), and search by words as a
        # tab of Similar cases: both list cases the same way.
        self.report_panel = ReportPanel(session, self)
        report_dock = QDockWidget("Report", self)
        report_dock.setObjectName("reportDock")
        report_dock.setWidget(self.report_panel)
        self.addDockWidget(Qt.RightDockWidgetArea, report_dock)
        self.report_dock = report_dock
        self.text_search_panel = TextSearchPanel(session, self)
        self.text_search_panel.sig_open_case.connect(self.open_text_hit)
        words_dock = QDockWidget("Find by words", self)
        words_dock.setObjectName("wordsDock")
        words_dock.setWidget(self.text_search_panel)
        self.addDockWidget(Qt.RightDockWidgetArea, words_dock)
        self.words_dock = words_dock
        self.tabifyDockWidget(case_dock, report_dock)
        self.tabifyDockWidget(report_dock, model_dock)
        self.tabifyDockWidget(model_dock, overlay_dock)
        self.tabifyDockWidget(similar_dock, words_dock)
        similar_dock.raise_()
        case_dock.raise_()
        self.resizeDocks([dock, case_dock], [330, 330], Qt.Horizontal)
        # Similar cases get the larger share of the right column: five results with their
        # thumbnails and the query's applicability must fit at 1920 x 1080.
        self.resizeDocks([case_dock, similar_dock], [300, 620], Qt.Vertical)

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

    def _action(self, menu, text: str, slot, keys=None, checkable=False, group="") -> QAction:
        action = QAction(text, self)
        if keys:
            sequences = [QKeySequence(k) for k in (keys if isinstance(keys, list) else [keys])]
            action.setShortcuts(sequences)
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        action.setProperty("group", group or menu.title().replace("&", ""))
        # A stable id (e.g. "image.next-image") keys the user's shortcut changes.
        action.setObjectName(action_id(action))
        action.setProperty("default_keys", [s.toString() for s in action.shortcuts()])
        menu.addAction(action)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "Open library\u2026", self.choose_library, "Ctrl+O")
        self._action(file_menu, "New library\u2026", self.new_library, "Ctrl+N")
        self._action(file_menu, "Import folder\u2026", self.choose_import_folder, "Ctrl+I")
        self._action(file_menu, "Import files\u2026", self.choose_import_files, "Ctrl+Shift+I")
        self.recent_menu = file_menu.addMenu("Recent libraries")
        self._fill_recent()
        self._action(file_menu, "Query a PACS\u2026", self.show_pacs, "Ctrl+Shift+P")
        self._action(file_menu, "Open the demo library", self.open_demo)
        file_menu.addSeparator()
        self._action(file_menu, "Export de-identified copy\u2026", self.export_deidentified,
                     "Ctrl+E")
        file_menu.addSeparator()
        self._action(file_menu, "Settings\u2026", self.show_settings, "Ctrl+,")
        file_menu.addSeparator()
        self._action(file_menu, "Quit", self.close, "Ctrl+Q")

        image = bar.addMenu("&Image")
        self._action(image, "Next image", lambda: self._on_active(lambda v: v.state.step(1)),
                     ["Down", "PgDown"])
        self._action(image, "Previous image", lambda: self._on_active(lambda v: v.state.step(-1)),
                     ["Up", "PgUp"])
        self._action(image, "First image", lambda: self._on_active(lambda v: v.state.set_index(0)),
                     "Home")
        self._action(image, "Last image",
                     lambda: self._on_active(lambda v: v.state.set_index(len(v.state.planes) - 1)),
                     "End")
        self._action(image, "Next series", lambda: self.step_series(1), "Right")
        self._action(image, "Previous series", lambda: self.step_series(-1), "Left")
        self.cine_action = self._action(image, "Play / pause cine", self.toggle_cine, "Space",
                                        checkable=True)
        image.addSeparator()
        for key, name in PRESET_KEYS.items():
            # The name says where a preset applies; apply_preset refuses it elsewhere, in words.
            self._action(image, f"Window: {PRESETS[name].name} (CT only)",
                         lambda _c=False, n=name: self.apply_preset(n), key)
        self._action(image, "Window: radiograph / auto", lambda: self.apply_preset("auto"), "6")
        self._action(image, "Window: from the header", lambda: self.apply_preset("header"), "0")
        image.addSeparator()
        self._action(image, "Invert", lambda: self._on_active(lambda v: v.state.toggle_invert()), "I")
        self._action(image, "Rotate clockwise", lambda: self._on_active(lambda v: v.state.rotate(90)),
                     "R")
        self._action(image, "Rotate anticlockwise",
                     lambda: self._on_active(lambda v: v.state.rotate(-90)), "Shift+R")
        self._action(image, "Flip horizontally",
                     lambda: self._on_active(lambda v: v.state.flip(True)), "H")
        self._action(image, "Flip vertically",
                     lambda: self._on_active(lambda v: v.state.flip(False)), "V")
        self._action(image, "Zoom in", lambda: self._on_active(lambda v: v.zoom(0.8)), ["+", "="])
        self._action(image, "Zoom out", lambda: self._on_active(lambda v: v.zoom(1.25)), "-")
        self._action(image, "Fit to window", lambda: self._on_active(lambda v: v.fit()), "F")
        self._action(image, "Reset view", self.reset_view, "Ctrl+R")

        tools = bar.addMenu("&Tools")
        self._action(tools, "Window / level (left drag)", lambda: self.set_tool("window"), "W")
        add_measurement_actions(self, tools)
        add_mpr_action(self, tools)
        add_export_action(self, tools)
        add_seg_action(self, tools)
        self._action(tools, "Search similar cases in a region (drag)",
                     lambda: self.set_tool("region"), "G")
        self._action(tools, "Show / hide the overlay", self.toggle_overlays, "O")
        tools.addSeparator()
        self._action(tools, "DICOM tags\u2026", self.show_tags, "T")

        view = bar.addMenu("&View")
        add_layout_actions(self, view)
        self.sync_action = self._action(view, "Synchronise scrolling", self.toggle_sync, "S",
                                        checkable=True)
        self.sync_action.setChecked(True)
        view.addSeparator()
        self.hide_action = self._action(view, "Hide identifying text", self.toggle_identifying,
                                        "A", checkable=True)
        self.hide_action.setChecked(self.settings.hide_identifying_text)
        self.corner_action = self._action(view, "Show corner text", self.toggle_corner_text, "C",
                                          checkable=True)
        self.corner_action.setChecked(self.settings.show_corner_text)
        self._action(view, "Full screen", self.toggle_full_screen, "F11")

        self.study_menu = ReaderStudyMenu(self)
        self.teaching_menu = TeachingMenu(self)

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "Keyboard and mouse\u2026", self.show_shortcuts, ["F1", "?"])
        help_menu.addSeparator()
        self._action(help_menu, "Report a problem\u2026", self.report_problem)
        self._action(help_menu, "Open the log folder", self.open_log_folder)
        help_menu.addSeparator()
        self._action(help_menu, "About MedViewer", self.show_about)

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

    # -- import -------------------------------------------------------------------------------
    def choose_import_folder(self) -> None:
        """Ask for a folder to import."""
        folder = QFileDialog.getExistingDirectory(self, "Import folder", str(Path.home()))
        if folder:
            self.import_paths([folder])

    def choose_import_files(self) -> None:
        """Ask for files (DICOM, zip, PNG/JPEG) to import."""
        files, _ = QFileDialog.getOpenFileNames(self, "Import files", str(Path.home()))
        if files:
            self.import_paths(files)

    def import_paths(self, paths: list[str], labels: str | None = None) -> None:
        """Import into the open library (a new one in the data folder if none) off the GUI thread."""
        from medviewer.services.importer import import_paths

        library_path = self.ensure_library()

        def work(state):
            with Library(library_path) as library:
                return import_paths(library, paths, labels=labels, state=state)

        self._begin_import("Importing")
        self.importer.start(work, self._on_import_done)

    def ensure_library(self) -> str:
        """Return the open library, opening the default one in the library folder if none is."""
        if not self.library_path:
            self.open_library(str(user_library_folder(self.settings) / "library.sqlite"))
        return self.library_path

    def _begin_import(self, text: str) -> None:
        self.progress.setValue(0)
        self.progress.show()
        self.cancel_button.show()
        self.statusBar().showMessage(text)

    def _end_import(self) -> None:
        self.progress.hide()
        self.cancel_button.hide()

    def cancel_import(self) -> None:
        """Stop the running import; files already committed stay in the library."""
        self.importer.cancel()
        self._end_import()
        self.statusBar().showMessage("Import cancelled; files imported so far were kept", 8000)
        self.library_panel.refresh()

    def _on_import_failed(self, exc: Exception) -> None:
        from medviewer.qt.workers import handle_error

        self._end_import()
        self.library_panel.refresh()  # files committed before the error stay listed
        handle_error(exc, None, self, "Import")

    def _on_import_progress(self, fraction: float, status: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        if status:
            self.statusBar().showMessage(status)

    def _on_import_done(self, report) -> None:
        self._end_import()
        self._after_new_studies()
        text = (f"Imported {report.instances} images ({report.series} series), "
                f"{report.unchanged} unchanged, {len(report.skipped)} skipped")
        log.info("import finished: %s", text)
        for skipped in report.skipped:
            log.info("skipped %s: %s (%s)", skipped.path, skipped.reason, skipped.detail)
        self.statusBar().showMessage(text, 15000)
        if report.skipped:
            self._show_import_report(report)

    def _show_import_report(self, report) -> None:
        lines = [f"{s.path}\n    {s.reason}: {s.detail}" for s in report.skipped]
        box = QMessageBox(QMessageBox.Information, "Import report",
                          f"{len(report.skipped)} file(s) were not imported. The rest loaded.",
                          QMessageBox.Ok, self)
        box.setDetailedText("\n".join(lines))
        box.open()

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt naming
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt naming
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        paths = [p for p in paths if os.path.exists(p)]
        if paths:
            self.import_paths(paths)
            event.acceptProposedAction()

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
        rows, cols = parse_layout(self.settings.layout)
        return self.viewports[: rows * cols]

    def set_active(self, viewport: ViewportWidget) -> None:
        """Make a viewport the target of keys and of the library's double-click."""
        self.active = viewport
        self.session.set_active(self.viewports.index(viewport))
        for v in self.viewports:
            v.setProperty("active", v is viewport and len(self._visible_viewports_safe()) > 1)
            v.style().unpolish(v)
            v.style().polish(v)

    def _visible_viewports_safe(self) -> list[ViewportWidget]:
        layout = getattr(self.settings, "layout", "1x1")
        rows, cols = parse_layout(layout) if _is_layout(layout) else (1, 1)
        return self.viewports[: rows * cols]

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

    def _on_active(self, fn) -> None:
        if self.active is not None and self.active.state.planes:
            fn(self.active)

    def step_series(self, delta: int) -> None:
        """Open the next or previous series of the library in the active viewport."""
        order = self.library_panel.series_order()
        if not order:
            return
        current = getattr(self.active, "series_id", None)
        index = order.index(current) + delta if current in order else 0
        if 0 <= index < len(order):
            self.open_series(order[index])

    def apply_preset(self, name: str) -> None:
        """Apply a window preset (``auto`` and ``header`` are computed per image)."""
        viewport = self.active
        if viewport is None or viewport.state.current is None:
            return
        image = self.cache.peek(viewport.state.current.instance.location)
        if image is None or image.is_color:
            return
        if name in PRESETS and not preset_applies(name, image.units):
            modality = viewport.series.modality if viewport.series else "this image"
            self.statusBar().showMessage(
                f"{PRESETS[name].name} is a CT window (Hounsfield units); {modality or 'this image'} "
                "has no HU. Use 6 (auto) or 0 (the header's window).", 6000)
            return
        frame = image.frames[viewport.state.current.frame]
        if name == "auto":
            window = auto_window(frame)
        elif name == "header":
            from medviewer.display.render import initial_window

            window = initial_window(image, viewport.state.current.frame)
        else:
            window = PRESETS[name]
        viewport.state.set_window(window)

    def reset_view(self) -> None:
        """Reset window, rotation, flips, inversion and zoom of the active viewport."""
        viewport = self.active
        if viewport is None or viewport.state.current is None:
            return
        viewport.state.reset_transform()
        self.apply_preset("header")
        viewport.fit()

    def set_tool(self, tool: str) -> None:
        """Choose the left-drag tool for every viewport."""
        for viewport in self.viewports:
            viewport.set_tool(tool)
        names = {"window": "Window / level", "region": "Region search (drag a rectangle)",
                 **TOOL_HELP}
        self.statusBar().showMessage(f"Tool: {names.get(tool, tool)} (W for window / level)", 6000)

    def toggle_cine(self) -> None:
        """Play or pause the active stack."""
        if self.cine.isActive():
            self.cine.stop()
        else:
            self.cine.start(int(1000 / max(1, self.settings.cine_fps)))
        self.cine_action.setChecked(self.cine.isActive())

    def _cine_step(self) -> None:
        viewport = self.active
        if viewport is None or len(viewport.state.planes) < 2:
            return
        nxt = viewport.state.index + 1
        viewport.state.set_index(0 if nxt >= len(viewport.state.planes) else nxt)

    def toggle_sync(self) -> None:
        """Synchronise scrolling between viewports, or not."""
        self.scroll_sync.enabled = self.sync_action.isChecked()

    def toggle_identifying(self) -> None:
        """Hide or show patient-identifying text (corner text and library)."""
        hide = self.hide_action.isChecked()
        self.settings.hide_identifying_text = hide
        for viewport in self.viewports:
            viewport.hide_identifying = hide
            viewport._update_corners()
        self.library_panel.hide_identifying = hide
        self.library_panel.refresh()
        save_settings(self.settings)

    def toggle_corner_text(self) -> None:
        """Show or hide all corner text."""
        self.settings.show_corner_text = self.corner_action.isChecked()
        for viewport in self.viewports:
            viewport.show_corner_text = self.settings.show_corner_text
            viewport._update_corners()
        save_settings(self.settings)

    def toggle_full_screen(self) -> None:
        """Switch full-screen mode."""
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    def show_tags(self) -> None:
        """Open the DICOM tag browser for the image on screen."""
        from medviewer.dicom.pixels import read_header
        from medviewer.qt.tag_browser import TagBrowserDialog

        viewport = self.active
        plane = viewport.state.current if viewport else None
        if plane is None or plane.instance.kind != "dicom":
            self.statusBar().showMessage("No DICOM image on screen", 4000)
            return
        dialog = TagBrowserDialog(read_header(plane.instance.ref),
                                  Path(plane.instance.location).name, self)
        dialog.open()
        self._tag_dialog = dialog

    def shortcut_rows(self) -> list[tuple[str, str, str]]:
        """Return (group, keys, action) for every action with a shortcut."""
        rows = []
        for action in self.actions():
            keys = ", ".join(s.toString(QKeySequence.NativeText) for s in action.shortcuts())
            if keys:
                rows.append((str(action.property("group")), keys, action.text().replace("\u2026", "")))
        return rows

    def show_shortcuts(self) -> None:
        """Show the shortcut cheat sheet."""
        dialog = ShortcutSheetDialog(self.shortcut_rows(), self)
        dialog.open()
        self._shortcut_dialog = dialog

    def show_about(self) -> None:
        """Show the about box: version, licences of the bundled components, the demo model's data."""
        from medviewer.qt.about_dialog import AboutDialog
        from medviewer.services.models import default_bundle

        runner = self.session.runner
        bundle = runner.bundle.path if runner is not None else default_bundle()
        dialog = AboutDialog(self, bundle_folder=bundle)
        dialog.open()
        self._about_dialog = dialog

    # -- settings, problems, other windows ------------------------------------------------------
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

    def show_settings(self) -> None:
        """Edit the settings; they are saved and applied when the dialog is accepted."""
        from medviewer.qt.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self.actions(), self)
        dialog.accepted.connect(lambda: self._on_settings_accepted(dialog.result_settings()))
        dialog.open()
        self._settings_dialog = dialog

    def _on_settings_accepted(self, settings: Settings) -> None:
        old = self.settings
        save_settings(settings)
        self.apply_settings(settings)
        runner = self.session.runner
        if runner is not None and (old.provider_preference != settings.provider_preference
                                   or old.default_model != settings.default_model):
            # The model in use follows the new preference at once, so the panel's provider
            # line never describes a choice the user has just changed.
            target = settings.default_model or str(runner.bundle.path)
            self.model_panel.load(target)
        self.statusBar().showMessage("Settings saved", 4000)

    def show_pacs(self) -> None:
        """Open the PACS query window (retrieved studies go into the open library)."""
        from medviewer.qt.pacs_dialog import PacsDialog

        if self._pacs_dialog is None:
            self._pacs_dialog = PacsDialog(self, self.ensure_library,
                                           current_library=lambda: self.library_path)
            self._pacs_dialog.sig_retrieved.connect(self._on_pacs_retrieved)
        self._pacs_dialog.show()
        self._pacs_dialog.raise_()

    def _on_pacs_retrieved(self, library_path: str, study_uids: list) -> None:
        """List the retrieved studies and show the first one."""
        if library_path != self.library_path:
            return  # the user opened another library meanwhile
        self.session.library_changed()
        self.library_panel.refresh()
        with self.session.library() as library:
            series_id = library.first_series_of_study(study_uids[0]) if study_uids else None
        if series_id is not None:
            self.open_series(series_id)

    def _after_new_studies(self) -> None:
        """List new studies and, if nothing is on screen yet, show the first."""
        self.session.library_changed()
        self.library_panel.refresh()
        if self.active is not None and self.active.state.current is None:
            order = self.library_panel.series_order()
            if order:
                self.open_series(order[0], viewport=self.viewports[0])

    def export_deidentified(self) -> None:
        """Export a de-identified copy of the series on screen, or of the library."""
        from medviewer.qt.deid_dialog import DeidExportDialog

        if not self.library_path:
            self.statusBar().showMessage("Open a library first", 4000)
            return
        series_id = getattr(self.active, "series_id", None) if self.active else None
        dialog = DeidExportDialog(self, self.library_path,
                                  series_ids=[series_id] if series_id else None,
                                  defaults=dict(self.settings.deid_defaults))
        dialog.sig_defaults_changed.connect(self._remember_deid_defaults)
        dialog.open()
        self._deid_dialog = dialog

    def _remember_deid_defaults(self, values: dict) -> None:
        self.settings.deid_defaults = dict(values)
        save_settings(self.settings)

    def report_problem(self) -> None:
        """Collect the log and environment (no patient data) into a report the user saves."""
        from medviewer.qt.problem_dialog import ProblemReportDialog

        runner = self.session.runner
        report = runner.provider_report().to_dict() if runner is not None else None
        dialog = ProblemReportDialog(self, library_path=self.library_path, provider_report=report)
        dialog.open()
        self._problem_dialog = dialog

    def open_log_folder(self) -> None:
        """Open the folder with MedViewer's logs in the file manager."""
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        from medviewer.paths import log_dir

        QDesktopServices.openUrl(QUrl.fromLocalFile(str(log_dir())))

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

"""The Teaching menu of the main window: the Teaching window and teaching packages.

The one place that knows how the main window shows a case: it turns the session's
image on screen and last search, with the active viewport's window/level and the
overlay drawn on it, into a :class:`~medviewer.qt.teaching_panel.TeachingContext`.
"""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog, QMessageBox

from medviewer.qt.teaching_panel import ShownCase, TeachingContext


def viewer_context(window) -> TeachingContext:
    """Return the Teaching panel's view of a main window and its session."""
    session = window.session

    def shown_case() -> ShownCase | None:
        image = session.image
        viewport = window.active
        if image is None or image.case_id is None or viewport is None:
            return None
        state = viewport.state
        shown = state.window
        overlay, overlay_map = "", None
        found = session.overlay
        for layer in window.overlay_panel.layers():
            # Only an overlay drawn on this very plane belongs to the key image.
            if layer.viewport is viewport and layer.visible and layer.image_map is not None \
                    and layer.plane_key == layer.current_plane_key():
                request = getattr(getattr(found, "explanation", None), "request", None)
                overlay = str(getattr(request, "method", "") or layer.title or "overlay")
                if not (state.rotation or state.flip_horizontal or state.flip_vertical):
                    overlay_map = layer.image_map
        return ShownCase(image.case_id, None if shown is None else (shown.center, shown.width),
                         overlay, overlay_map)

    def last_results():
        found = session.search
        result = getattr(found, "result", None)
        return result if result is not None and result.query_case is not None else None

    return TeachingContext(library_path=lambda: session.library_path, shown_case=shown_case,
                           last_results=last_results, open_case=window.open_case)


class TeachingMenu:
    """Builds the Teaching menu and keeps its windows."""

    def __init__(self, window) -> None:
        self.window = window
        self.teaching_window = None
        self._windows = []
        menu = window.menuBar().addMenu("&Teaching")
        menu.addAction("Teaching files\u2026", self.show_teaching)
        menu.addAction("Open a teaching package\u2026", self.open_package)
        self.menu = menu

    def show_teaching(self):
        """Show the Teaching window (one per main window)."""
        from medviewer.qt.teaching_panel import TeachingWindow

        if not self.window.library_path:
            QMessageBox.information(self.window, "Teaching files", "Open a library first.")
            return None
        if self.teaching_window is None:
            self.teaching_window = TeachingWindow(viewer_context(self.window))
            panel = self.teaching_window.panel
            session = self.window.session
            # The panel follows the session: what it can add changes with the screen.
            for event in ("case_shown", "results_found", "results_cleared", "overlay_ready"):
                session.connect(event, lambda **_: panel.update_actions())
            session.connect("library_opened", lambda **_: panel.refresh())
        self.teaching_window.panel.refresh()
        self.teaching_window.show()
        self.teaching_window.raise_()
        return self.teaching_window

    def open_package(self, folder: str | None = None):
        """Browse a teaching package from another machine (read-only) and take its quiz."""
        from medviewer.errors import MedViewerError
        from medviewer.qt.teaching_package_window import TeachingPackageWindow
        from medviewer.teaching.package_reader import open_package

        if folder is None:
            folder = QFileDialog.getExistingDirectory(self.window, "Teaching package folder")
            if not folder:
                return None
        try:
            package = open_package(folder)
        except MedViewerError as exc:
            QMessageBox.warning(self.window, "Teaching package", str(exc))
            return None
        browser = TeachingPackageWindow(package)
        browser.show()
        self._windows.append(browser)
        return browser

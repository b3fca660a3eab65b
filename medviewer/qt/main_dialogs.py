"""The main window's other windows: settings, PACS, export, tags, shortcuts, about, problems.

A mixin of :class:`~medviewer.qt.main_window.MainWindow` (GUI thread): each dialog opens
non-modal and is kept on the window so it lives while shown.
"""

from __future__ import annotations

from pathlib import Path

from medviewer.qt.dialogs import ShortcutSheetDialog
from medviewer.qt.main_menus import shortcut_rows
from medviewer.services.settings import Settings, save_settings


class WindowDialogsMixin:
    """Open the window's dialogs; needs ``session``, ``settings`` and the panels."""

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

    def show_shortcuts(self) -> None:
        """Show the shortcut cheat sheet."""
        dialog = ShortcutSheetDialog(shortcut_rows(self.actions()), self)
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

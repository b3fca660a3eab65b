"""Key images: K marks (or unmarks) the image on screen; a small list exports them as DICOM KO."""

from __future__ import annotations

from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QLabel, QListWidget,
                               QPushButton, QVBoxLayout)


def add_key_image_actions(window, menu) -> None:
    """Add the key image toggle and the key image list to a menu."""
    window._action(menu, "Mark / unmark as key image",
                   lambda: window._on_active(lambda v: toggle_key_image(window, v)), "K")
    window._action(menu, "Key images\u2026", lambda: show_key_images(window), "Ctrl+K")


def toggle_key_image(window, viewport) -> bool | None:
    """Mark or unmark the image on screen; say which in the status bar; return the new state."""
    from medviewer.measurements.store import toggle_key_image as toggle
    from medviewer.store import Library

    plane = viewport.state.current
    if not viewport.library_path or plane is None or plane.instance.id is None:
        window.statusBar().showMessage("Key images are kept in a library: open one first", 4000)
        return None
    with Library(viewport.library_path) as library:
        marked = toggle(library, plane.instance.id, plane.frame)
    window.statusBar().showMessage(
        f"Image {viewport.state.index + 1} {'marked as' if marked else 'is no longer'} a key image",
        4000)
    dialog = getattr(window, "_key_images_dialog", None)
    if dialog is not None:
        dialog.refresh()
    return marked


def show_key_images(window) -> None:
    """Open the list of the library's key images."""
    if not window.library_path:
        window.statusBar().showMessage("Open a library first", 4000)
        return
    dialog = KeyImagesDialog(window.library_path, window)
    dialog.open()
    window._key_images_dialog = dialog


class KeyImagesDialog(QDialog):
    """List a library's key images; export them as DICOM Key Object Selection documents."""

    def __init__(self, library_path: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Key images")
        self.resize(640, 320)
        self.library_path = library_path
        layout = QVBoxLayout(self)
        self.list = QListWidget(self)
        layout.addWidget(self.list, 1)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.Close, self)
        self.export_button = QPushButton("Export as DICOM Key Object Selection\u2026", self)
        buttons.addButton(self.export_button, QDialogButtonBox.ActionRole)
        buttons.rejected.connect(self.reject)
        self.export_button.clicked.connect(self._choose_export)
        layout.addWidget(buttons)
        self.refresh()

    def refresh(self) -> None:
        """Read the library's key images into the list."""
        from medviewer.measurements.store import list_key_images
        from medviewer.store import Library

        with Library(self.library_path) as library:
            rows = list_key_images(library)
        self.list.clear()
        for _ref, frame, location, series in rows:
            self.list.addItem(f"{series}  \u2014  {location}" + (f"  (frame {frame + 1})"
                                                                if frame else ""))
        self.message.setText(f"{len(rows)} key image(s)" if rows else
                             "No key images yet: show an image and press K.")
        self.export_button.setEnabled(bool(rows))

    def export_to(self, folder: str) -> list:
        """Write the key images as KO documents into a folder; say what was written."""
        from medviewer.errors import MedViewerError
        from medviewer.measurements.key_objects import export_key_objects
        from medviewer.store import Library

        try:
            with Library(self.library_path) as library:
                files = export_key_objects(library, folder)
        except MedViewerError as exc:
            self.message.setText(f"Not exported: {exc}")
            return []
        self.message.setText(f"Wrote {len(files)} Key Object Selection file(s) to {folder}")
        return files

    def _choose_export(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export key images as DICOM KO")
        if folder:
            self.export_to(folder)

"""Export what a viewport shows as a PNG: with or without annotations, identifying text on request.

The picture is the canvas as the reader sees it (window/level, zoom, rotation,
overlays), painted offscreen at its on-screen size.  Patient name, ID and birth
date (the top-left corner) are left out unless asked for, so an exported image
can go into a presentation without a second look; measurements and the AI
overlay can be left out too.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog


def export_viewport_png(viewport, path: str | Path, *, annotations: bool = True,
                        identifying: bool = False) -> Path:
    """Write the viewport's canvas to ``path`` (PNG); return the path.

    Parameters
    ----------
    annotations : bool
        Keep measurements, corner text, markers and overlays (else the image alone).
    identifying : bool
        Keep the patient's name, ID and birth date (top-left corner text).
    """
    from medviewer.fileio import atomic_write_bytes

    overlay = viewport.overlay
    hidden_text = overlay.text("tl")
    items = [item for item in viewport.box.addedItems if item is not viewport.image_item]
    visible = [(item, item.isVisible()) for item in items]
    try:
        if not identifying:
            overlay.set_text("tl", "")
        if not annotations:
            overlay.visible = False
            for item, _shown in visible:
                item.setVisible(False)
        image = viewport.view.viewport().grab().toImage()
    finally:
        overlay.set_text("tl", hidden_text)
        overlay.visible = True
        for item, shown in visible:
            item.setVisible(shown)
        viewport.view.viewport().update()
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    target = Path(path)
    atomic_write_bytes(target, bytes(data))
    return target


def add_export_action(window, menu) -> None:
    """Add "Export viewport as PNG" to a menu."""
    window._action(menu, "Export this viewport as PNG\u2026", lambda: ask_export(window),
                   "Ctrl+Shift+E")


def ask_export(window) -> None:
    """Ask where (and whether with annotations or identifying text), then export."""
    from PySide6.QtWidgets import QMessageBox

    viewport = window.active
    if viewport is None or viewport.state.current is None:
        window.statusBar().showMessage("Open a series first", 4000)
        return
    path, _ = QFileDialog.getSaveFileName(window, "Export viewport as PNG", "viewport.png",
                                          "PNG images (*.png)")
    if not path:
        return
    box = QMessageBox(window)
    box.setWindowTitle("Export viewport")
    box.setText("Include measurements, corner text and overlays?")
    box.setInformativeText("The patient's name, ID and birth date are never burned in "
                           "unless you choose \"With identifying text\".")
    with_annotations = box.addButton("With annotations", QMessageBox.AcceptRole)
    with_identity = box.addButton("With identifying text", QMessageBox.AcceptRole)
    box.addButton("Image only", QMessageBox.AcceptRole)
    box.exec()
    clicked = box.clickedButton()
    target = export_viewport_png(viewport, path,
                                 annotations=clicked in (with_annotations, with_identity),
                                 identifying=clicked is with_identity)
    window.statusBar().showMessage(f"Wrote {target}", 6000)

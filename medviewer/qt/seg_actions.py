"""Open a DICOM SEG and draw it on the viewport showing its referenced series."""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog

from medviewer.qt.workers import TaskRunner


def add_seg_action(window, menu) -> None:
    """Add "Show a segmentation (DICOM SEG)" to a menu."""
    window._action(menu, "Show a segmentation (DICOM SEG)\u2026", lambda: ask_segmentation(window))


def ask_segmentation(window) -> None:
    """Ask for a SEG file and show it."""
    path, _ = QFileDialog.getOpenFileName(window, "Show a DICOM segmentation")
    if path:
        open_segmentation(window, path)


def open_segmentation(window, path: str) -> TaskRunner:
    """Read a SEG on a worker; draw it where its series is on screen, or say it is not."""
    from medviewer.dicom.seg import read_segmentation

    runner = getattr(window, "_seg_runner", None)
    if runner is None:
        runner = window._seg_runner = TaskRunner(
            window, message=lambda text: window.statusBar().showMessage(text, 8000))
    runner.start(lambda state: read_segmentation(path), lambda seg: _show(window, seg))
    return runner


def _show(window, seg) -> None:
    shown = [v for v in window.viewports
             if v.series is not None and v.series.series_uid in seg.series_uids]
    if not shown:
        window.statusBar().showMessage(
            "The segmentation refers to a series that is not on screen: open it first", 8000)
        return
    for viewport in shown:
        viewport.set_segmentation(seg)
    names = ", ".join(seg.labels) or "no segments"
    window.statusBar().showMessage(f"Segmentation shown: {names}", 8000)

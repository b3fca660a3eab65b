"""What misled a reader before: CT presets on films, a search box that kept the keys,
a window that forgot its layout, a dock title covered by a stray label."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402

import helpers_dicom as h  # noqa: E402
from test_gui_viewer import open_first_series, write_ct_series  # noqa: E402
from test_gui_viewport_reading import make_window  # noqa: E402

pytestmark = pytest.mark.gui


def write_cr(folder):
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:96, :80]
    ds = h.make_image((xx * 40 + yy * 5).astype(np.uint16), modality="CR",
                      photometric="MONOCHROME1", window=(1800, 3600))
    return h.write(ds, folder / "cr.dcm").parent


def test_ct_presets_do_not_apply_to_a_radiograph(qtbot, tmp_path, monkeypatch):
    win = make_window(qtbot, tmp_path, monkeypatch, write_cr(tmp_path / "cr"))
    viewport = open_first_series(qtbot, win)
    before = viewport.state.window
    viewport.setFocus()
    qtbot.keyClick(viewport, Qt.Key_1)  # "Window: CT lung (CT only)"
    assert viewport.state.window == before  # the film does not turn white
    assert "CT window" in win.statusBar().currentMessage()
    qtbot.keyClick(viewport, Qt.Key_6)  # auto applies to everything
    assert viewport.state.window.name == "auto"
    keys = {text: keys for _group, keys, text in win.shortcut_rows()}
    assert keys["Window: CT lung (CT only)"] == "1"  # the key help says where it applies


def test_ct_presets_apply_to_ct(qtbot, tmp_path, monkeypatch):
    win = make_window(qtbot, tmp_path, monkeypatch, write_ct_series(tmp_path / "ct"))
    viewport = open_first_series(qtbot, win)
    viewport.setFocus()
    qtbot.keyClick(viewport, Qt.Key_1)
    assert (viewport.state.window.center, viewport.state.window.width) == (-600.0, 1500.0)


def test_search_box_hands_the_keys_back_to_the_viewer(qtbot, tmp_path, monkeypatch):
    win = make_window(qtbot, tmp_path, monkeypatch, write_ct_series(tmp_path / "ct"))
    viewport = open_first_series(qtbot, win)
    win.activateWindow()
    search = win.library_panel.search
    search.setFocus()
    qtbot.keyClicks(search, "Test")
    qtbot.keyClick(search, Qt.Key_Escape)
    assert viewport.hasFocus()
    qtbot.keyClick(viewport, Qt.Key_I)  # "Invert" reaches the viewer, not the search text
    assert viewport.state.invert
    assert search.text() == "Test"
    search.setFocus()
    qtbot.keyClick(search, Qt.Key_Return)
    assert viewport.hasFocus()


def test_window_and_dock_layout_are_remembered(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QDockWidget

    from medviewer.qt.app import create_window
    from medviewer.services.settings import load_settings

    win = make_window(qtbot, tmp_path, monkeypatch, write_ct_series(tmp_path / "ct"))
    similar = win.findChild(QDockWidget, "similarDock")
    similar.hide()  # the user closed "Similar cases" and moved the library to the right
    win.addDockWidget(Qt.RightDockWidgetArea, win.library_dock)
    win.close()
    saved = load_settings()
    assert saved.window_state and saved.window_geometry
    again = create_window(None)
    qtbot.addWidget(again)
    again.show()
    assert not again.findChild(QDockWidget, "similarDock").isVisible()
    assert again.dockWidgetArea(again.library_dock) == Qt.RightDockWidgetArea


def test_nothing_covers_the_library_dock_title(qtbot, tmp_path, monkeypatch):
    win = make_window(qtbot, tmp_path, monkeypatch, write_ct_series(tmp_path / "ct"))
    dock = win.library_dock
    title = dock.mapTo(win, dock.rect().topLeft())
    for dx in (4, 30, 60):
        for dy in (2, 8, 14):
            assert win.childAt(title.x() + dx, title.y() + dy) is dock

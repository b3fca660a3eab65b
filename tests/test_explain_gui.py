"""The overlay layer and panel, offscreen, wired into the main window as the lead engineer will wire them."""

from __future__ import annotations


import numpy as np
import pytest

from helpers_demo import DEMO_BUNDLE, synthetic_demo_library

pytestmark = pytest.mark.gui

DEMO = DEMO_BUNDLE


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return synthetic_demo_library(tmp_path_factory.mktemp("overlay-gui"), 4, 9, size=192,
                                  ct_series=0)

@pytest.fixture
def window(qtbot, library, tmp_path, monkeypatch):
    from medviewer.qt.app import create_window

    monkeypatch.setenv("MEDVIEWER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path / "data"))
    win = create_window(library)
    qtbot.addWidget(win)
    win.show()
    if win.model_panel.runner is None or win.overlay_panel.explainer is None:
        with qtbot.waitSignal(win.model_panel.sig_model_ready, timeout=60000):
            win.model_panel.load(str(DEMO))
    return win


def _series(win):
    from medviewer.store import Library

    with Library(win.library_path) as lib:
        return [s for s in lib.series() if s.modality in ("DX", "CR")]


def _open(qtbot, win, series_id):
    with qtbot.waitSignal(win.viewports[0].sig_plane_shown, timeout=10000):
        win.open_series(series_id, viewport=win.viewports[0])
    win.set_active(win.viewports[0])


def _compute(qtbot, panel, method="rollout"):
    panel.method.setCurrentIndex(panel.method.findData(method))
    with qtbot.waitSignal(panel.sig_map_ready, timeout=30000) as blocker:
        panel.compute()
    return blocker.args[0]


def test_overlay_matches_the_map_toggles_and_follows_rotation(qtbot, window):
    panel = window.overlay_panel
    assert "not lesion localisation" in panel.note.text() and panel.note.isVisible()
    _open(qtbot, window, _series(window)[0].id)
    explanation = _compute(qtbot, panel)
    layer = panel.layer_for(window.active)
    assert layer.visible and layer.legend.isVisible()
    # The legend leaves the right edge's orientation marker in sight.
    from PySide6.QtCore import QRectF

    canvas = window.active.view
    marker = canvas.overlay.block_rect("right", canvas.viewport().width(), canvas.viewport().height())
    assert marker is not None and not QRectF(layer.legend.geometry()).intersects(marker)
    np.testing.assert_array_equal(layer.displayed_map(), explanation.image_map)
    np.testing.assert_array_equal(layer.item.image, explanation.image_map)
    # The overlay covers exactly the image.
    assert layer.item.mapRectToParent(layer.item.boundingRect()) == \
        window.active.image_item.mapRectToParent(window.active.image_item.boundingRect())
    panel.toggle_overlay()
    assert not layer.visible and not layer.legend.isVisible() and not panel.toggle_action.isChecked()
    panel.toggle_action.trigger()
    assert layer.visible and panel.show_box.isChecked()
    state = window.active.state
    state.rotate(90)
    np.testing.assert_array_equal(layer.displayed_map(), np.rot90(explanation.image_map, k=-1))
    state.flip(True)
    np.testing.assert_array_equal(layer.displayed_map(), np.rot90(explanation.image_map, k=-1)[:, ::-1])
    assert layer.displayed_map().shape == window.active._frame.shape


def test_threshold_hides_low_values(qtbot, window):
    panel = window.overlay_panel
    _open(qtbot, window, _series(window)[0].id)
    explanation = _compute(qtbot, panel)
    layer = panel.layer_for(window.active)
    shown = layer.displayed_map()
    low = np.argwhere((shown > 0.3) & (shown < 0.45))[0]
    high = np.unravel_index(int(np.argmax(shown)), shown.shape)

    def alpha(point):
        image = layer.item.getPixmap().toImage()
        return image.pixelColor(int(point[1]), int(point[0])).alpha()

    assert alpha(low) > 0 and alpha(high) > 0
    panel.threshold.setValue(50)
    assert layer.threshold == pytest.approx(0.5)
    assert alpha(low) == 0 and alpha(high) == 255
    assert explanation.image_map[tuple(high)] > 0.5


def test_overlay_is_dropped_when_another_image_is_shown(qtbot, window):
    panel = window.overlay_panel
    series = _series(window)
    _open(qtbot, window, series[0].id)
    _compute(qtbot, panel)
    layer = panel.layer_for(window.active)
    assert window.session.overlay is not None
    _open(qtbot, window, series[1].id)
    assert not layer.visible  # a map never shows on an image it was not computed for
    assert window.session.overlay is None and panel.last is None
    # Coming back shows the image without the old map: it was derived from a case that left
    # the screen, so it is computed again on request, never resurrected.
    _open(qtbot, window, series[0].id)
    assert not layer.visible and layer.image_map is None


def test_export_writes_the_image_size_png(qtbot, window, tmp_path):
    from PIL import Image

    panel = window.overlay_panel
    _open(qtbot, window, _series(window)[0].id)
    _compute(qtbot, panel, "occlusion")
    rows, cols = window.active._frame.shape
    width, height = panel.export_png(str(tmp_path / "with-legend.png"))
    with Image.open(tmp_path / "with-legend.png") as png:
        assert png.size == (width, height) and height == rows and width > cols
    layer = panel.layer_for(window.active)
    assert layer.export_png(tmp_path / "bare.png", legend=False) == (cols, rows)
    with Image.open(tmp_path / "bare.png") as png:
        bare = np.asarray(png.convert("RGB")).astype(int)
    # Where the map is 0 the exported pixel is the grey image; where it is high it is tinted.
    shown = layer.displayed_map()
    zero = np.argwhere(shown == 0)[0]
    assert bare[tuple(zero)][0] == bare[tuple(zero)][1] == bare[tuple(zero)][2]
    peak = np.unravel_index(int(np.argmax(shown)), shown.shape)
    r, g, b = bare[peak]
    assert not (r == g == b)


def test_trust_check_runs_off_the_gui_thread(qtbot, window):
    pytest.importorskip("onnx")
    panel = window.overlay_panel
    _open(qtbot, window, _series(window)[0].id)
    _compute(qtbot, panel, "attention")
    with qtbot.waitSignal(panel.sig_checked, timeout=90000) as blocker:  # heavy on a busy CPU
        panel.check_current()
    report = blocker.args[0]
    assert report.randomised is not None and "deletion AUC" in panel.message.text()

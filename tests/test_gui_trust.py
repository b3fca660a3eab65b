"""AI output a radiologist can trust, in the window: applicability in words, Grad-CAM, relevance marks.

The committed demo bundle (with its gradient graph, domain and OOD summary)
on a synthetic library of radiographs and one CT series, at 1920 x 1080.
"""

from __future__ import annotations

import pytest

from helpers_demo import DEMO_BUNDLE, synthetic_demo_library

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def demo_library(tmp_path_factory):
    return synthetic_demo_library(tmp_path_factory.mktemp("trust"), 24, 9, size=256, ct_series=1,
                                  ct_size=64, ct_slices=6)


@pytest.fixture
def window(qtbot, demo_library, tmp_path, monkeypatch):
    from medviewer.qt.app import create_window

    monkeypatch.setenv("MEDVIEWER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path / "data"))
    win = create_window(demo_library)
    qtbot.addWidget(win)
    win.resize(1920, 1080)
    win.show()
    return win


def _open(qtbot, win, modalities):
    from medviewer.store import Library

    with Library(win.library_path) as library:
        series = next(s for s in library.series() if s.modality in modalities)
    with qtbot.waitSignal(win.viewports[0].sig_plane_shown, timeout=10000):
        win.open_series(series.id)


def _load(qtbot, win):
    panel = win.model_panel
    with qtbot.waitSignal(panel.sig_model_ready, timeout=60000):
        panel.load(str(DEMO_BUNDLE))
    return panel


def _search(qtbot, win):
    similar = win.similar_panel
    qtbot.waitUntil(lambda: similar.index_button.isEnabled(), timeout=20000)
    similar.build_index()
    qtbot.waitUntil(lambda: similar.search_button.isEnabled()
                    and "ready" in similar.status.text().lower(), timeout=120000)
    similar.search_current()
    qtbot.waitUntil(lambda: len(similar.rows()) == 5, timeout=30000)
    return similar


def test_model_panel_says_a_ct_slice_does_not_apply(qtbot, window, tmp_path):
    _open(qtbot, window, ("CT",))
    panel = _load(qtbot, window)
    with qtbot.waitSignal(panel.sig_classified, timeout=30000):
        panel.classify_current()
    text = panel.applicability.text()
    assert panel.applicability.isVisible() and "Does not apply" in text and "CT" in text
    assert "frontal chest radiographs" in text
    window.model_dock.raise_()
    # The verdict stands above the numbers, which still show.
    qtbot.waitUntil(lambda: panel.results.count() == 6 and all(
        panel.results.itemAt(i).widget().isVisible() for i in range(6)), timeout=5000)
    assert panel.applicability.geometry().bottom() < panel.results.itemAt(0).widget().geometry().top()
    window.grab().save(str(tmp_path / "model-ct.png"))


def test_search_shows_the_query_flag_five_results_and_marks_that_rerank(qtbot, window, tmp_path):
    _open(qtbot, window, ("DX", "CR"))
    _load(qtbot, window)
    similar = _search(qtbot, window)
    assert similar.applicability.isVisible()
    assert "domain" in similar.applicability.text() and "radiograph" in similar.applicability.text()
    # At 1920 x 1080 all five results are inside the visible part of the list.
    from medviewer.qt.similar_panel import THUMB

    viewport = similar.scroll.viewport()

    def all_visible():  # laid out (one below the other), full height, inside the visible list
        rows = similar.rows()
        ys = [r.geometry().y() for r in rows]
        return ys == sorted(set(ys)) and all(r.height() >= THUMB and r.isVisible() and viewport.rect().contains(
            r.geometry().translated(similar.results_host.pos())) for r in rows)

    qtbot.waitUntil(all_visible, timeout=5000)
    window.grab().save(str(tmp_path / "trust-1920.png"))
    rows = similar.rows()
    first, second = rows[0].hit.case_id, rows[1].hit.case_id
    from PySide6.QtCore import Qt

    qtbot.mouseClick(rows[1].no, Qt.LeftButton)
    rows = similar.rows()
    assert len(rows) == 5 and rows[-1].hit.case_id == second  # kept in view, last, marked
    assert rows[-1].no.isChecked() and "b23b3b" in rows[-1].no.styleSheet()
    assert second not in [r.hit.case_id for r in rows[:-1]]
    assert "Re-ranked by your 1 mark" in similar.vote.text()
    qtbot.mouseClick(similar.rows()[0].yes, Qt.LeftButton)
    rows = similar.rows()
    assert rows[0].hit.case_id == first and rows[0].yes.isChecked() and "2e7d32" in rows[0].yes.styleSheet()
    assert "Re-ranked by your 2 marks" in similar.vote.text()
    qtbot.waitUntil(all_visible, timeout=5000)
    window.grab().save(str(tmp_path / "trust-marked.png"))


def test_overlay_offers_gradcam_as_the_class_map_with_the_applicability(qtbot, window, tmp_path):
    _open(qtbot, window, ("DX", "CR"))
    _load(qtbot, window)
    panel = window.overlay_panel
    index = panel.method.findData("gradcam")
    assert panel.method.itemText(index) == "Class map: Grad-CAM"
    assert index < panel.method.findData("occlusion")
    panel.method.setCurrentIndex(index)
    with qtbot.waitSignal(panel.sig_map_ready, timeout=30000) as blocker:
        panel.compute()
    explanation = blocker.args[0]
    assert explanation.request.method == "gradcam" and "Grad-CAM" in panel.message.text()
    assert panel.applicability.isVisible() and "domain" in panel.applicability.text()
    panel.parentWidget().raise_() if panel.parentWidget() is not None else None
    window.grab().save(str(tmp_path / "overlay-gradcam.png"))

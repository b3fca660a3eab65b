"""Which report sentences match a region: Shift+G, a real mouse drag, the panel ranks them."""

from __future__ import annotations

import os
from html import escape

import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402

from test_reports_learned import prior_library  # noqa: E402,F401 - the tiny bundle fixture

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def every_mouse_move():
    # pyqtgraph drops moves closer than 1/100 s apart; a test's moves come faster than a hand's.
    old = pg.getConfigOption("mouseRateLimit")
    pg.setConfigOption("mouseRateLimit", -1)
    yield
    pg.setConfigOption("mouseRateLimit", old)


def drag_pixels(qtbot, viewport, start, end) -> None:
    """Drag from one image pixel to another with real press, move and release events."""
    row_mm, col_mm = viewport._spacing or (1.0, 1.0)

    def screen(x, y):
        p = viewport.box.mapViewToDevice(QPointF(x * col_mm, y * row_mm))
        return QPoint(round(p.x()), round(p.y()))

    canvas = viewport.view.viewport()
    a, b = screen(*start), screen(*end)
    qtbot.mousePress(canvas, Qt.LeftButton, pos=a)
    for t in (0.25, 0.5, 0.75, 1.0):
        qtbot.mouseMove(canvas, QPoint(round(a.x() + (b.x() - a.x()) * t),
                                       round(a.y() + (b.y() - a.y()) * t)))
    qtbot.mouseRelease(canvas, Qt.LeftButton, pos=b)


def test_region_drag_ranks_the_report_sentences_and_says_when_no_model_is_loaded(
        qtbot, prior_library, tmp_path, monkeypatch):  # noqa: F811
    from medviewer.inference import ModelRunner
    from medviewer.inference.testing import write_toy_bundle
    from medviewer.qt.app import create_window
    from medviewer.reports import ReportStore
    from medviewer.reports.negation import split_sentences
    from medviewer.reports.sections import searchable_text
    from medviewer.store import Library

    bundle, library_path = prior_library
    monkeypatch.setenv("MEDVIEWER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path / "data"))
    win = create_window(str(library_path))
    qtbot.addWidget(win)
    win.resize(1500, 950)
    win.show()
    # Window shortcuts (the viewer's keys) fire only in the active window.
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)
    with Library(library_path) as library:
        series = library.series()[0]
    viewport = win.viewports[0]
    with qtbot.waitSignal(viewport.sig_plane_shown, timeout=10000):
        win.open_series(series.id)
    case_id = win.session.image.case_id
    panel = win.report_panel
    assert case_id is not None and panel.case_id == case_id
    viewport.setFocus()
    qtbot.keyClick(viewport, Qt.Key_G, Qt.ShiftModifier)  # the sentence-region tool
    assert viewport.box.tool == "sentences"

    # No model yet: the panel says so in words, and nothing runs.
    drag_pixels(qtbot, viewport, (4, 4), (36, 36))
    assert "No model is loaded" in panel.message.text()
    # An image-only model cannot compare sentences either.
    win.session.set_model(ModelRunner(write_toy_bundle(tmp_path / "toy"), "cpu"))
    drag_pixels(qtbot, viewport, (4, 4), (36, 36))
    assert "image-only model" in panel.message.text()

    win.session.set_model(ModelRunner(bundle, "cpu"))
    qtbot.mouseClick(panel.library_box, Qt.LeftButton)
    assert panel.library_box.isChecked()
    with qtbot.waitSignal(panel.sig_matched, timeout=30000) as matched:
        drag_pixels(qtbot, viewport, (4, 4), (36, 36))
    found = matched.args[0]
    assert found.case_id == case_id and found.region is not None
    assert abs(found.region.x - 4) <= 1 and abs(found.region.width - 32) <= 2
    assert found.patches >= 4 and found.applicability is not None
    with Library(library_path) as library:
        report = ReportStore(library).reports_for_case(case_id)[0]
    sentences = split_sentences(searchable_text(report.sections))
    assert {m.sentence for m in found.own} == set(sentences)
    text = panel.message.text()
    assert "Sentences by similarity to the region" in text
    assert escape(found.applicability.summary()) in text
    assert found.library and "From other reports in the library" in text

    shots = os.environ.get("MEDVIEWER_SHOT_DIR")
    if shots:
        win.report_dock.raise_()
        qtbot.wait(50)
        win.grab().save(os.path.join(shots, "issue18_region_sentences_window.png"))
        panel.grab().save(os.path.join(shots, "issue18_region_sentences_panel.png"))

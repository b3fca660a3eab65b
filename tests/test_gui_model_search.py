"""Model and similar-cases panels with the committed demo bundle on a synthetic library."""

from __future__ import annotations

import pytest

from helpers_demo import DEMO_BUNDLE, synthetic_demo_library

pytestmark = pytest.mark.gui

@pytest.fixture(scope="module")
def demo_library(tmp_path_factory):
    return synthetic_demo_library(tmp_path_factory.mktemp("demo"), 18, 5, size=256, ct_series=1,
                                  ct_size=64, ct_slices=6)

@pytest.fixture
def window(qtbot, demo_library, tmp_path, monkeypatch):
    from medviewer.qt.app import create_window

    monkeypatch.setenv("MEDVIEWER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path / "data"))
    win = create_window(demo_library)
    qtbot.addWidget(win)
    win.show()
    return win


def open_radiograph(qtbot, win):
    from medviewer.store import Library

    with Library(win.library_path) as library:
        series = next(s for s in library.series() if s.modality in ("DX", "CR"))
    with qtbot.waitSignal(win.viewports[0].sig_plane_shown, timeout=10000):
        win.open_series(series.id)


def load_demo(qtbot, win):
    panel = win.model_panel
    with qtbot.waitSignal(panel.sig_model_ready, timeout=60000):
        panel.load(str(DEMO_BUNDLE))
    return panel


def test_classify_shows_provider_and_stores_predictions(qtbot, window):
    from medviewer.store import Library

    open_radiograph(qtbot, window)
    panel = load_demo(qtbot, window)
    # The provider in use is always named; on a machine without CUDA the reason is shown.
    assert "ONNX Runtime on" in panel.provider.text()
    with qtbot.waitSignal(panel.sig_classified, timeout=30000) as blocker:
        panel.classify_current()
    result = blocker.args[0]
    assert set(result.probabilities) == {"Cardiomegaly", "Emphysema", "Opacity"}
    assert all(0.0 <= p <= 1.0 for p in result.probabilities.values())
    case_id = window.current_case_id()
    with Library(window.library_path) as library:
        stored = {(n, s, d) for n, _v, s, d in library.labels(case_id) if s == "model"}
    assert stored == {(n, "model", result.bundle_sha256) for n in result.probabilities}


def test_index_search_and_relevance(qtbot, window):
    from medviewer.store import Library

    open_radiograph(qtbot, window)
    load_demo(qtbot, window)
    similar = window.similar_panel
    qtbot.waitUntil(lambda: similar.index_button.isEnabled(), timeout=20000)
    similar.build_index()
    qtbot.waitUntil(lambda: similar.search_button.isEnabled()
                    and "ready" in similar.status.text().lower(), timeout=120000)
    similar.farthest.setChecked(True)
    similar.search_current()
    qtbot.waitUntil(lambda: len(similar.rows()) == 10, timeout=30000)
    result = similar.result
    query_patient = window.viewports[0].patient_text
    assert "similar cases" in similar.vote.text()
    assert all(h.patient_id not in " ".join(query_patient) for h in result.nearest)
    assert [h.rank for h in result.nearest] == [1, 2, 3, 4, 5]
    distances = [h.distance for h in result.nearest]
    assert distances == sorted(distances)
    assert max(distances) <= min(h.distance for h in result.farthest)
    row = similar.rows()[0]
    row.yes.click()
    with Library(window.library_path) as library:
        marks = [tuple(r) for r in library.conn.execute("SELECT relevant FROM relevance_marks")]
    assert marks == [(1,)]
    # The result becomes a teaching case with its neighbours as exemplars.
    from medviewer.services.teaching import collection_items
    assert similar.add_to_teaching("Similar cardiac silhouettes") == 5 + 5  # exemplars
    with Library(window.library_path) as library:
        items = collection_items(library, "Similar cardiac silhouettes")
    assert len(items) == 1 + 5 + 5  # the query as the teaching case, and its exemplars
    # Opening a result shows it beside the query with the same window.
    row.sig_open.emit(row.hit)
    assert window.settings.layout == "1x2"
    qtbot.waitUntil(lambda: window.viewports[1].state.current is not None, timeout=10000)
    assert window.viewports[1].state.current.instance.location == row.hit.location


def build_ready_index(qtbot, window):
    open_radiograph(qtbot, window)
    load_demo(qtbot, window)
    similar = window.similar_panel
    qtbot.waitUntil(lambda: similar.index_button.isEnabled(), timeout=20000)
    if "ready" not in similar.status.text().lower():
        similar.build_index()
    qtbot.waitUntil(lambda: similar.search_button.isEnabled()
                    and "ready" in similar.status.text().lower(), timeout=120000)
    return similar


def test_region_search_and_embedding_map(qtbot, window):
    from PySide6.QtCore import QPointF

    similar = build_ready_index(qtbot, window)
    viewport = window.viewports[0]
    window.set_tool("region")
    # A rectangle over the middle of the image (view coordinates are millimetres).
    right, bottom = viewport._rect
    viewport._on_tool_drag(QPointF(right * 0.25, bottom * 0.25), QPointF(right * 0.75, bottom * 0.75),
                           True)
    qtbot.waitUntil(lambda: similar.result is not None and similar.result.region is not None,
                    timeout=30000)
    region = similar.result.region
    columns = viewport.state.current.instance.columns
    assert abs(region.width - columns // 2) <= 2 and len(similar.rows()) == 5
    similar.show_map()
    dialog = similar._map_dialog
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.map is not None, timeout=60000)
    assert len(dialog.map.case_ids) == len(dialog.map.xy) > 10
    assert dialog.map.query_xy is not None
    other = int(dialog.map.case_ids[-1])
    dialog.sig_open_case.emit(other)
    assert window.current_case_id() == other

"""The main window driven by real key and mouse events: nothing of one patient stays beside another.

The user's path from the issue: open a chest film, classify it, search similar cases, then
open another patient (and another library, and another model); every panel must show
nothing of the first.  Input goes through Qt's event system (qtbot mouse clicks, key
clicks on the window's shortcuts, wheel events on the viewport), not through method calls.
"""

from __future__ import annotations

import pytest
from helpers_demo import DEMO_BUNDLE, synthetic_demo_library

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def libraries(tmp_path_factory):
    """Two indexed libraries: A (radiographs and a CT stack), B (radiographs)."""
    from medviewer.inference import ModelRunner
    from medviewer.services.retrieval import build_index
    from medviewer.store import Library

    first = synthetic_demo_library(tmp_path_factory.mktemp("gui-a"), 10, 4, size=192,
                                   ct_series=1, ct_size=48, ct_slices=6)
    second = synthetic_demo_library(tmp_path_factory.mktemp("gui-b"), 8, 6, size=192,
                                    ct_series=0)
    runner = ModelRunner(DEMO_BUNDLE, "cpu")
    for path in (first, second):
        with Library(path) as library:
            build_index(library, runner)
    return first, second


@pytest.fixture
def window(qtbot, libraries, tmp_path, monkeypatch):
    from medviewer.qt.app import create_window

    monkeypatch.setenv("MEDVIEWER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path / "data"))
    win = create_window(libraries[0])
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    with qtbot.waitSignal(win.model_panel.sig_model_ready, timeout=60000):
        win.model_panel.load(str(DEMO_BUNDLE))
    qtbot.waitUntil(lambda: win.similar_panel.index_state == "ready", timeout=30000)
    return win


def radiograph_series(win) -> list:
    with win.session.library() as library:
        return [s for s in library.series() if s.modality in ("DX", "CR")]


def double_click_series(qtbot, win, series_id: int) -> None:
    """Open a series the way a user does: double-click its row in the library tree."""
    from PySide6.QtCore import Qt

    tree = win.library_panel.tree
    item = win.library_panel._items[series_id]
    tree.scrollToItem(item)
    centre = tree.visualItemRect(item).center()
    chosen = []
    win.library_panel.sig_series_chosen.connect(chosen.append)
    with qtbot.waitSignal(win.active.sig_plane_shown, timeout=10000):
        # Press-release first: Qt 6's mouseDClick alone is not a double-click on an item view.
        qtbot.mouseClick(tree.viewport(), Qt.LeftButton, pos=centre)
        qtbot.mouseDClick(tree.viewport(), Qt.LeftButton, pos=centre)
    assert chosen == [series_id]  # opened once


def click(qtbot, button) -> None:
    from PySide6.QtCore import Qt

    assert button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.LeftButton)


def classify_and_search(qtbot, win) -> None:
    model, similar = win.model_panel, win.similar_panel
    with qtbot.waitSignal(model.sig_classified, timeout=30000):
        click(qtbot, model.classify_button)
    with qtbot.waitSignal(similar.sig_results, timeout=30000):
        click(qtbot, similar.search_button)
    assert model.results.count() == 2 * 3  # a name and a bar per label
    assert len(similar.rows()) == 5


def assert_panels_empty(win) -> None:
    """Nothing derived from an earlier image is drawn anywhere."""
    assert win.model_panel.results.count() == 0
    assert "not a diagnosis" not in win.model_panel.message.text()
    assert win.similar_panel.rows() == [] and win.similar_panel.vote.text() == ""
    assert not win.similar_panel.teach_button.isEnabled()
    assert win.overlay_panel.hits == [] and win.overlay_panel.hit_choice.count() == 0
    assert all(layer.image_map is None for layer in win.overlay_panel.layers())
    session = win.session
    assert session.classification is None and session.search is None and session.overlay is None


def shown_patient(win) -> str:
    return " ".join(win.active.patient_text)


def test_another_patient_opened_by_double_click_clears_every_panel(qtbot, window):
    series = radiograph_series(window)
    double_click_series(qtbot, window, series[0].id)
    first_patient = shown_patient(window)
    classify_and_search(qtbot, window)
    hits = {h.location for h in window.similar_panel.result.nearest}
    other = next(s for s in series if s.study_ref != series[0].study_ref)
    double_click_series(qtbot, window, other.id)
    assert shown_patient(window) != first_patient
    assert_panels_empty(window)
    assert window.active.state.current.instance.location not in hits
    # The case panel follows the new image once scrolling pauses.
    qtbot.waitUntil(lambda: window.active.state.current.instance.location
                    in window.case_panel.text.text(), timeout=5000)
    # The new patient is classified and searched afresh, with its own case as the query.
    classify_and_search(qtbot, window)
    assert window.similar_panel.result.query_case == window.current_case_id()


def test_next_series_key_and_wheel_scroll_clear_the_results(qtbot, window):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    series = radiograph_series(window)
    double_click_series(qtbot, window, series[0].id)
    classify_and_search(qtbot, window)
    before = window.active.series_id
    # "Right" is the window's "Next series" shortcut: a real key press on the window.
    with qtbot.waitSignal(window.active.sig_plane_shown, timeout=10000):
        qtbot.keyClick(window, Qt.Key_Right)
    assert window.active.series_id != before
    assert_panels_empty(window)
    # A CT stack: classify the slice on screen, then wheel to the next slice.
    with window.session.library() as library:
        ct = next(s for s in library.series() if s.modality == "CT")
    double_click_series(qtbot, window, ct.id)
    with qtbot.waitSignal(window.model_panel.sig_classified, timeout=30000):
        click(qtbot, window.model_panel.classify_button)
    index = window.active.state.index
    view = window.active.view
    centre = QPointF(view.width() / 2, view.height() / 2)
    wheel = QWheelEvent(centre, view.mapToGlobal(centre), QPoint(0, 0), QPoint(0, -120),
                        Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), wheel)
    assert window.active.state.index != index
    assert window.model_panel.results.count() == 0 and window.session.classification is None


def test_clicking_a_result_opens_it_beside_and_keeps_the_query_results(qtbot, window):
    from PySide6.QtCore import Qt

    series = radiograph_series(window)
    double_click_series(qtbot, window, series[0].id)
    classify_and_search(qtbot, window)
    query = window.active
    row = window.similar_panel.rows()[0]
    qtbot.mouseClick(row, Qt.LeftButton)  # a click on the row opens the hit beside the query
    beside = window.viewports[1]
    qtbot.waitUntil(lambda: beside.state.current is not None, timeout=10000)
    assert beside.state.current.instance.location == row.hit.location
    assert window.active is query and len(window.similar_panel.rows()) == 5
    # Clicking into the comparison viewport makes it active: the query is still on screen,
    # so its results stay.
    qtbot.mouseClick(beside.view.viewport(), Qt.LeftButton)
    assert window.active is beside and window.session.search is not None
    # Opening another patient in the query's viewport ends the comparison.
    window.set_active(query)
    other = next(s for s in series if s.study_ref != series[0].study_ref
                 and s.id != beside.series_id)
    double_click_series(qtbot, window, other.id)
    assert_panels_empty(window)
    assert window.window_link.pair is None


def test_another_library_and_another_model_clear_every_panel(qtbot, window, libraries):
    series = radiograph_series(window)
    double_click_series(qtbot, window, series[0].id)
    classify_and_search(qtbot, window)
    stale_rows = window.similar_panel.rows()
    window.open_library(libraries[1])
    assert_panels_empty(window)
    assert all(r.parent() is None or not r.isVisible() for r in stale_rows)
    qtbot.waitUntil(lambda: window.similar_panel.index_state == "ready", timeout=30000)
    qtbot.waitUntil(lambda: window.active.state.current is not None
                    and window.session.display_image() is not None, timeout=10000)
    classify_and_search(qtbot, window)
    with window.session.library() as library:
        locations = {c.location for c in library.cases()}
    assert {h.location for h in window.similar_panel.result.nearest} <= locations
    # Loading a model (as the settings dialog does on a provider change) drops the results
    # of the model before, even the same bundle: they are not recomputed behind the user.
    with qtbot.waitSignal(window.model_panel.sig_model_ready, timeout=60000):
        window.model_panel.load(str(DEMO_BUNDLE))
    assert_panels_empty(window)


def test_a_classification_that_arrives_after_the_user_moved_on_is_not_drawn(qtbot, window,
                                                                             monkeypatch):
    import threading

    from medviewer.services import models

    series = radiograph_series(window)
    double_click_series(qtbot, window, series[0].id)
    panel = window.model_panel
    # The real model runs, but only once the user has moved on (a slow GPU, a big image).
    moved_on, finished = threading.Event(), threading.Event()
    real = models.classify_display_image

    def slow(runner, image):
        moved_on.wait(30)
        try:
            return real(runner, image)
        finally:
            finished.set()

    monkeypatch.setattr(models, "classify_display_image", slow)
    classified = []
    window.session.connect("classified", lambda result: classified.append(result))
    click(qtbot, panel.classify_button)
    other = next(s for s in series if s.study_ref != series[0].study_ref)
    double_click_series(qtbot, window, other.id)
    moved_on.set()
    qtbot.waitUntil(finished.is_set, timeout=30000)
    qtbot.waitUntil(lambda: not panel._classifier.busy, timeout=30000)
    assert classified == [] and panel.results.count() == 0


def test_the_model_chooser_names_the_model_that_is_loaded(qtbot, window):
    from pathlib import Path

    chooser = window.model_panel.choice
    loaded = Path(window.session.runner.bundle.path).resolve()
    assert Path(chooser.currentData()).resolve() == loaded

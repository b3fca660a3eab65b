"""The reading screen: keys pick, exactly five to go on, picks shown only once stored."""

from __future__ import annotations

import re

import pytest

from helpers_study import brute_force_neighbours, make_library
from medviewer.store import Library
from medviewer.study.design import create_study, select_queries
from medviewer.study.session import ReadingSession, open_study_db

pytestmark = pytest.mark.gui


@pytest.fixture
def screen(qtbot, tmp_path):
    from medviewer.qt.reader_study_window import ReaderStudyWindow
    from medviewer.services.study_images import LibraryCaseImages

    library = make_library(tmp_path)
    with Library(library) as lib:
        summary = create_study(lib, "gui", select_queries(lib.cases(), 3, seed=2),
                               brute_force_neighbours(lib), seed=5, bundle_sha256="",
                               index_version="")
    session = ReadingSession(open_study_db(library), summary.id, "dana")
    window = ReaderStudyWindow(session, LibraryCaseImages(library))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.tiles[9].pane.image is not None, timeout=10000)
    return window


def test_keys_pick_and_next_needs_exactly_five(qtbot, screen):
    from PySide6.QtCore import Qt

    first = screen.view.query_id
    assert not screen.next_button.isEnabled()
    for key in (Qt.Key_1, Qt.Key_2, Qt.Key_3, Qt.Key_4):
        qtbot.keyClick(screen, key)
    assert [t.property("picked") for t in screen.tiles[:5]] == [True] * 4 + [False]
    assert not screen.next_button.isEnabled()
    qtbot.keyClick(screen, Qt.Key_0)
    assert screen.tiles[9].property("picked") and screen.next_button.isEnabled()
    qtbot.keyClick(screen, Qt.Key_6)  # a sixth pick is refused and says why
    assert not screen.tiles[5].property("picked")
    assert "picked already" in screen.status.text()
    qtbot.keyClick(screen, Qt.Key_Return)
    assert screen.session.response(first).status == "answered"
    assert screen.index == 1 and "Query 2 of 3" in screen.progress.text()


def test_screen_is_blinded(screen):
    texts = [screen.progress.text(), screen.status.text(), screen.instructions.text()]
    texts += [t.pane.caption.text() for t in screen.tiles]
    joined = " ".join(texts).lower()
    for word in ("distance", "rank", "closest", "cardiomegaly", "emphysema", "model", ".png", "p0"):
        assert word not in joined
    assert not re.search(r"case\s*#?\d", joined)


def test_window_level_is_linked(qtbot, screen):
    start = screen.window
    screen._on_window_drag(30.0, 0.0)
    assert screen.window.width > start.width
    low, high = screen.tiles[3].pane.item.getLevels()
    assert high - low == pytest.approx(screen.window.width - 1.0, rel=1e-6)

"""The reading screen: keys pick, exactly five to go on, picks shown only once stored."""

from __future__ import annotations

import re

import pytest

from helpers_study import brute_force_neighbours, make_library, make_mixed_range_library
from medviewer.store import Library
from medviewer.study.design import create_study, select_queries
from medviewer.study.session import ReadingSession, open_study_db

pytestmark = pytest.mark.gui


@pytest.fixture(params=["png"])
def screen(qtbot, tmp_path, request):
    from medviewer.qt.reader_study_window import ReaderStudyWindow
    from medviewer.services.study_images import LibraryCaseImages

    library = (make_library if request.param == "png" else make_mixed_range_library)(tmp_path)
    with Library(library) as lib:
        summary = create_study(lib, "gui", select_queries(lib.cases(), 3, seed=2),
                               brute_force_neighbours(lib), seed=5, bundle_sha256="",
                               index_version="")
    session = ReadingSession(open_study_db(library), summary.id, "dana")
    window = ReaderStudyWindow(session, LibraryCaseImages(library), practice=False)
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


@pytest.mark.parametrize("screen", ["mixed"], indirect=True)
def test_window_level_is_linked_relative_to_each_image_and_resets(qtbot, screen):
    from PySide6.QtCore import Qt

    from medviewer.display.windowing import linear_levels

    panes = [screen.query_pane] + [t.pane for t in screen.tiles]
    opened = [tuple(p.item.getLevels()) for p in panes]
    assert opened == [linear_levels(p.base_window) for p in panes]
    # The images have their own pixel ranges: an absolute link would show them all alike.
    assert len({p.base_window for p in panes}) > 1
    screen._on_window_drag(30.0, -10.0)
    for pane in panes:
        low, high = pane.item.getLevels()
        base = pane.base_window
        # Each image keeps its own window, scaled and shifted by the same relative amount.
        assert (high - low + 1.0) / base.width == pytest.approx(screen.adjustment.scale)
        assert ((low + high) / 2 + 0.5 - base.center) / base.width == pytest.approx(
            screen.adjustment.shift, abs=1e-6)
    assert screen.adjustment.scale > 1.0
    qtbot.keyClick(screen, Qt.Key_R)
    assert screen.adjustment.is_identity
    assert [tuple(p.item.getLevels()) for p in panes] == opened


def test_double_click_enlarges_without_picking(qtbot, screen):
    from PySide6.QtCore import Qt

    pane = screen.tiles[2].pane
    qtbot.mouseDClick(pane.view.viewport(), Qt.LeftButton)
    assert screen.compare_pane.image is pane.image or screen.compare_pane.image == pane.image
    assert screen.compare_pane.caption.text() == "Candidate 3"
    qtbot.waitUntil(lambda: not pane.click_pending, timeout=3000)
    assert not screen.tiles[2].property("picked")
    assert screen.session.response(screen.view.query_id) is None
    # A single click still picks (once the double-click interval has passed).
    qtbot.mouseClick(pane.view.viewport(), Qt.LeftButton)
    qtbot.waitUntil(lambda: screen.tiles[2].property("picked"), timeout=3000)
    assert screen.session.response(screen.view.query_id).picked


FORBIDDEN = ("distance", "rank", "closest", "farthest", "similarity", "cardiomegaly",
             "emphysema", "no finding", "model", ".png", "img0", "lib.sqlite")


def visible_texts(app) -> list[str]:
    """Every text a reader can see: window titles, labels, buttons, fields, items, tooltips."""
    from PySide6.QtWidgets import (QAbstractButton, QComboBox, QLabel, QLineEdit, QListWidget,
                                   QTextEdit, QTreeView, QWidget)

    texts = []
    for top in app.topLevelWidgets():
        if not top.isVisible():
            continue
        texts.append(top.windowTitle())
        for widget in [top] + top.findChildren(QWidget):
            if not widget.isVisible():
                continue
            texts.append(widget.toolTip())
            if isinstance(widget, QLabel):
                texts.append(widget.text())
            elif isinstance(widget, QAbstractButton):
                texts.append(widget.text())
            elif isinstance(widget, QLineEdit):
                texts.append(widget.text())
            elif isinstance(widget, QTextEdit):
                texts.append(widget.toPlainText())
            elif isinstance(widget, QComboBox):
                texts.append(widget.currentText())
            elif isinstance(widget, QListWidget):
                texts += [widget.item(i).text() for i in range(widget.count())]
            elif isinstance(widget, QTreeView) and widget.model() is not None:
                model = widget.model()
                texts += [str(model.index(r, c).data()) for r in range(model.rowCount())
                          for c in range(model.columnCount())]
    return texts


def test_reading_hides_every_other_window_and_shows_nothing_revealing(qtbot, tmp_path,
                                                                      monkeypatch):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from medviewer.qt.app import create_window
    from medviewer.qt.reader_study_window import ReaderStudyWindow
    from medviewer.services.study_images import LibraryCaseImages

    monkeypatch.setenv("MEDVIEWER_CONFIG_DIR", str(tmp_path / "config"))
    library = make_library(tmp_path)
    with Library(library) as lib:
        summary = create_study(lib, "blind", select_queries(lib.cases(), 2, seed=1),
                               brute_force_neighbours(lib), seed=3, bundle_sha256="",
                               index_version="")
        patients = {c.patient_id for c in lib.cases()}
    main = create_window(str(library))
    qtbot.addWidget(main)
    main.show()
    qtbot.waitUntil(lambda: main.isVisible())
    # The main window shows patient identifiers and labels before reading starts.
    assert any(p in " ".join(visible_texts(QApplication.instance())) for p in patients)
    session = ReaderStudyWindow(ReadingSession(open_study_db(library), summary.id, "dana"),
                                LibraryCaseImages(library))
    qtbot.addWidget(session)
    session.start_reading(full_screen=True)
    qtbot.waitUntil(lambda: session.isVisible())
    assert not main.isVisible() and session.isFullScreen()

    def assert_blinded():
        shown = [w for w in QApplication.topLevelWidgets() if w.isVisible()]
        assert shown == [session]
        joined = " ".join(visible_texts(QApplication.instance())).lower()
        for word in FORBIDDEN:
            assert word not in joined, word
        for patient in patients:
            assert patient.lower() not in joined
        assert not re.search(r"case\s*#?\s*\d", joined)

    # Instructions, practice query, scored query: blinded throughout.
    assert "Reading as" in session.findChild(type(session.progress), "readerIdentity").text()
    assert_blinded()
    session.practice_button.click()
    qtbot.waitUntil(lambda: session.tiles[9].pane.image is not None, timeout=10000)
    assert session.in_practice and "not scored" in session.progress.text()
    assert_blinded()
    for key in (Qt.Key_1, Qt.Key_2, Qt.Key_3, Qt.Key_4, Qt.Key_5):
        qtbot.keyClick(session, key)
    qtbot.keyClick(session, Qt.Key_Return)
    assert not session.in_practice
    # The practice picks were never stored; the scored queries start untouched.
    assert session.session.progress() == (0, 0, 2)
    rows = session.session.conn.execute("SELECT COUNT(*) FROM study_responses").fetchone()[0]
    assert rows == 0
    qtbot.waitUntil(lambda: session.tiles[9].pane.image is not None
                    and session.query_pane.image is not None, timeout=10000)
    assert "Query 1 of 2" in session.progress.text()
    session.enlarge(0)
    assert_blinded()
    with qtbot.waitSignal(session.sig_closed, timeout=5000) as closed:
        session.pause_button.click()
    assert closed.args == ["paused"]
    assert main.isVisible() and not session.isVisible()


def test_study_report_in_the_app_draws_the_chart_like_the_saved_file(qtbot, tmp_path):
    from medviewer.qt.report_view import split_svg
    from medviewer.qt.study_menu import StudyResultsDialog
    from medviewer.services.study_results import study_report
    from medviewer.stats import render_html
    from medviewer.study.tidy import reader_summary, reader_summary_html

    library = make_library(tmp_path)
    with Library(library) as lib:
        summary = create_study(lib, "report", select_queries(lib.cases(), 3, seed=1),
                               brute_force_neighbours(lib), seed=3, bundle_sha256="",
                               index_version="")
    for reader in ("ana", "ben", "cy"):
        session = ReadingSession(open_study_db(library), summary.id, reader)
        for n, view in enumerate(session.queries):
            session.start_timer(view.query_id)
            for candidate, _case in view.candidates[n % 3:n % 3 + 5]:
                session.toggle_pick(view.query_id, candidate)
            session.finish(view.query_id)
    report = study_report(library, summary.id, n_bootstrap=50)
    conn = open_study_db(library)
    rows = reader_summary(conn, summary.id)
    assert [(r["reader"], r["answered"]) for r in rows] == [("ana", 3), ("ben", 3), ("cy", 3)]
    assert all(r["total_seconds"] >= 0 and r["median_seconds"] >= 0 for r in rows)
    html = render_html(report).replace("</body>", reader_summary_html(rows) + "</body>")
    assert "<svg" in html
    dialog = StudyResultsDialog(html, report, summary=rows)
    qtbot.addWidget(dialog)
    dialog.show()
    browser = dialog.browser
    text = browser.toPlainText()
    # The chart is an image of the document, not its tick labels run together as text.
    assert "0.00.20.40.60.81.0" not in text
    assert browser.charts == ["chart-1.png"]
    from PySide6.QtGui import QTextDocument
    from PySide6.QtCore import QUrl

    image = browser.document().resource(QTextDocument.ImageResource, QUrl("chart-1.png"))
    assert image is not None and not image.isNull() and image.width() > 500
    assert "Readers: progress and time per query" in text
    _body, charts = split_svg(html)
    assert len(charts) == html.count("<svg")

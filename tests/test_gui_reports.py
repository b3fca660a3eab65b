"""The report panel and the text search box, driven with real keys and clicks."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from medviewer.reports import ReportStore
from medviewer.reports.importers import import_reports


@pytest.fixture
def library_path(tmp_path):
    from medviewer.services.importer import import_paths
    from medviewer.store import Library
    from medviewer.synthetic import generate_dataset

    manifest = generate_dataset(tmp_path / "d", 16, 7, size=64, ct_series=0, png=False)
    path = tmp_path / "lib.sqlite"
    with Library(path) as library:
        import_paths(library, [tmp_path / "d" / "dicom"], labels=manifest.labels_csv)
        import_reports(ReportStore(library), [manifest.reports_csv])
    return str(path)


def test_report_panel_shows_sections_and_saves_a_typed_report(qtbot, library_path):
    from medviewer.qt.report_panel import ReportPanel
    from medviewer.store import Library

    panel = ReportPanel()
    qtbot.addWidget(panel)
    panel.show_case(library_path, 1)
    html = panel.view.toPlainText()
    assert "Findings" in html and "Impression" in html and "Indication" in html
    qtbot.mouseClick(panel.edit_button, Qt.LeftButton)
    assert panel.editor.isVisible() or not panel.isVisible()
    panel.editor.selectAll()
    qtbot.keyClicks(panel.editor, "FINDINGS: Bifid rib. IMPRESSION: Normal variant.")
    with qtbot.waitSignal(panel.sig_saved, timeout=5000):
        qtbot.mouseClick(panel.save_button, Qt.LeftButton)
    assert "Bifid rib." in panel.view.toPlainText()
    with Library(library_path) as library:
        assert ReportStore(library).reports_for_case(1)[0].source == "typed"
    panel.show_case(None, None)
    assert not panel.edit_button.isEnabled()


def test_text_search_box_lists_cases_with_thumbnails_and_opens_them(qtbot, library_path):
    from medviewer.qt.report_panel import TextSearchPanel

    panel = TextSearchPanel()
    qtbot.addWidget(panel)
    panel.set_library(library_path)
    assert not panel.rank.model().item(1).isEnabled()  # no image-text model loaded
    qtbot.keyClicks(panel.query, "no consolidation")
    with qtbot.waitSignal(panel.sig_results, timeout=20000) as blocker:
        qtbot.keyClick(panel.query, Qt.Key_Return)
    result = blocker.args[0]
    assert result.hits and len(panel.rows()) == len(result.hits)
    assert all("Opacity" not in h.labels for h in result.hits)
    assert not panel.rows()[0].findChildren(type(panel.status))[0].pixmap().isNull()
    with qtbot.waitSignal(panel.sig_open_case, timeout=2000) as opened:
        qtbot.mouseClick(panel.rows()[0], Qt.LeftButton)
    assert opened.args[0].case_id == result.hits[0].case_id
    assert panel.add_to_teaching("From words") == len(result.hits)


def test_main_window_shows_the_report_of_the_case_on_screen_and_finds_cases_by_words(
        qtbot, library_path, tmp_path, monkeypatch):
    """Through the Session: open a film, its report follows; a phrase lists cases; open one beside."""
    import os

    from medviewer.qt.app import create_window
    from medviewer.store import Library

    monkeypatch.setenv("MEDVIEWER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path / "data"))
    win = create_window(library_path)
    qtbot.addWidget(win)
    win.resize(1500, 950)
    win.show()
    with Library(library_path) as library:
        series = library.series()[0]
    with qtbot.waitSignal(win.viewports[0].sig_plane_shown, timeout=10000):
        win.open_series(series.id)
    case_id = win.session.image.case_id
    assert case_id is not None and win.report_panel.case_id == case_id
    with Library(library_path) as library:
        expected = ReportStore(library).reports_for_case(case_id)[0].sections["findings"]
    assert expected.split(". ")[0] in win.report_panel.view.toPlainText()
    win.report_dock.raise_()
    win.words_dock.raise_()
    panel = win.text_search_panel
    qtbot.keyClicks(panel.query, "cardiomegaly")
    with qtbot.waitSignal(panel.sig_results, timeout=20000) as blocker:
        qtbot.keyClick(panel.query, Qt.Key_Return)
    hits = blocker.args[0].hits
    assert hits and all("Cardiomegaly" in h.labels for h in hits)
    other = next((h for h in hits if h.case_id != case_id), None)
    if other is not None:
        with qtbot.waitSignal(win.viewports[1].sig_plane_shown, timeout=10000):
            qtbot.mouseClick(panel.rows()[hits.index(other)], Qt.LeftButton)
        assert win.session.shown[1].case_id == other.case_id
        # The report panel follows the active image (the query), not the one opened beside.
        assert win.report_panel.case_id == case_id
    shot = os.environ.get("MEDVIEWER_SCREENSHOT")
    if shot:
        win.grab().save(shot)

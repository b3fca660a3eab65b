"""The teaching workflow end to end from the app, through real windows.

Create, rename and delete collections; add the case on screen (window/level, overlay,
caption) and a real similar-case search (the demo bundle, a FAISS index) as exemplars;
edit the note template and tags; search; take the quiz (no identifier on screen; the
answer stored before the diagnosis and overlay show); export the de-identified package;
reopen the package read-only and take its quiz.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pydicom
import pytest

from helpers_demo import DEMO_BUNDLE, synthetic_demo_library
from test_gui_reader_study import visible_texts

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def demo_library(tmp_path_factory):
    return synthetic_demo_library(tmp_path_factory.mktemp("teachgui"), 12, 9, size=128)


@pytest.fixture
def main(qtbot, demo_library, tmp_path, monkeypatch):
    import shutil
    import sqlite3

    from medviewer.qt.app import create_window

    monkeypatch.setenv("MEDVIEWER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path / "data"))
    copy = tmp_path / "lib.sqlite"  # every test writes: its own copy of the library
    source, target = sqlite3.connect(demo_library), sqlite3.connect(copy)
    source.backup(target)
    source.close()
    target.close()
    del shutil
    win = create_window(str(copy))
    qtbot.addWidget(win)
    win.show()
    return win


def _identity(library_path):
    """Patient names (parts), IDs and image folders of the library: never on a quiz screen."""
    from medviewer.store import Library

    values = set()
    with Library(library_path) as library:
        for name, pid in library.conn.execute("SELECT name, patient_id FROM patients"):
            values |= {p for p in re.split(r"[\^ ]", name) if len(p) >= 3} | {pid}
        for (location,) in library.conn.execute("SELECT location FROM instances"):
            values.add(location)
    return {v.upper() for v in values if v}


def test_teaching_workflow_from_the_app(qtbot, main, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QApplication, QInputDialog

    from medviewer.display.windowing import Window
    from medviewer.services import teaching
    from medviewer.store import Library

    with Library(main.library_path) as library:
        series = next(s for s in library.series() if s.modality in ("DX", "CR"))
    with qtbot.waitSignal(main.viewports[0].sig_plane_shown, timeout=10000):
        main.open_series(series.id)
    case_id = main.current_case_id()
    location = main.active.state.current.instance.location
    ds = pydicom.dcmread(location, stop_before_pixels=True)
    family, given = str(ds.PatientName).split("^")[:2]

    window = main.teaching_menu.show_teaching()
    qtbot.addWidget(window)
    panel = window.panel
    # Collections: create, rename, create and delete another.
    first = panel.new_collection("Emphysema teaching")
    assert panel.rename_collection("Emphysema: week 3")
    panel.new_collection("Scratch")
    assert panel.collections.count() == 2
    assert panel.delete_collection(confirm=False)
    assert [c.name for c in teaching.list_collections(main.library_path)] == [
        "Emphysema: week 3"]
    assert panel.current_collection() == first

    # The case on screen, as shown: its window/level, an overlay and a caption.
    main.active.state.set_window(Window(1800.0, 3000.0, "manual"))
    rows, cols = main.active.state.current.instance.rows, main.active.state.current.instance.columns
    heat = np.zeros((rows, cols), np.float32)
    heat[rows // 4:rows // 2, cols // 4:cols // 2] = 1.0
    main.overlay_panel.layer_for(main.active).set_map(heat, title="test map")
    assert main.overlay_panel.layer_for(main.active).visible
    panel.caption.setText("PA film: hyperinflation")
    assert panel.add_current_case()
    [item] = teaching.collection_items(main.library_path, first)
    [key] = item.key_images
    assert (key.window_center, key.window_width) == (1800.0, 3000.0)
    assert key.overlay and key.caption == "PA film: hyperinflation"

    # A real similar-case search, added from its results (query + similar/dissimilar).
    with qtbot.waitSignal(main.model_panel.sig_model_ready, timeout=60000):
        main.model_panel.load(str(DEMO_BUNDLE))
    similar = main.similar_panel
    qtbot.waitUntil(lambda: similar.index_button.isEnabled(), timeout=20000)
    similar.build_index()
    qtbot.waitUntil(lambda: similar.search_button.isEnabled()
                    and "ready" in similar.status.text().lower(), timeout=120000)
    similar.k.setValue(3)
    similar.farthest.setChecked(True)
    similar.search_current()
    qtbot.waitUntil(lambda: len(similar.rows()) == 6, timeout=30000)
    assert panel.add_last_results() == 6
    items = teaching.collection_items(main.library_path, first)
    assert [i.role for i in items].count("similar") == 3
    assert [i.role for i in items].count("dissimilar") == 3
    # The Similar cases panel's own button works too (it raised AttributeError before).
    monkeypatch.setattr(QInputDialog, "getItem",
                        staticmethod(lambda *a, **k: ("From the button", True)))
    similar.teach_button.click()
    assert "From the button" in [c.name for c in teaching.list_collections(main.library_path)]

    # The note template and tags, with planted names next to the diagnosis.
    panel.refresh(select=first)
    panel._select_case(case_id)
    fields = {"history": f"{given.title()} {family.title()}, MRN {ds.PatientID}: breathless, "
                         "seen by Dr Quintero.",
              "findings": "Hyperinflated lungs, flattened diaphragms.",
              "diagnosis": f"Emphysema in {family.title()}",
              "discussion": "Centrilobular emphysema.", "citations": "Fleischner glossary."}
    for key_name, value in fields.items():
        edit = panel.note_fields[key_name]
        edit.setText(value) if hasattr(edit, "setText") and key_name == "diagnosis" \
            else edit.setPlainText(value)
    panel.tags_edit.setText("copd, chest")
    panel.save_note_button.click()
    assert teaching.get_note(main.library_path, case_id).diagnosis == fields["diagnosis"]
    assert teaching.case_tags(main.library_path, case_id) == ["chest", "copd"]

    # Search by text and by tag.
    panel.search_text.setText("emphysema")
    assert [h.case_id for h in panel.search()] == [case_id]
    panel.search_text.clear()
    panel.search_tag.setCurrentIndex(panel.search_tag.findData("copd"))
    assert [h.case_id for h in panel.search()] == [case_id]
    panel.search_tag.setCurrentIndex(0)
    panel.search_in_collection.setChecked(True)
    in_collection = {i.case_id for i in teaching.collection_items(main.library_path, first)}
    assert {h.case_id for h in panel.search()} == in_collection
    panel.search_in_collection.setChecked(False)

    # The quiz: history and images only; no identifier anywhere on screen (the viewer and
    # the Teaching window, which shows the diagnosis, are hidden while it runs).
    quiz = panel.start_quiz("resident-1")
    qtbot.addWidget(quiz)
    assert not main.isVisible() and not window.isVisible() and quiz.isVisible()
    qtbot.waitUntil(lambda: quiz.shown_images() == 1, timeout=10000)
    identity = _identity(main.library_path) | {"QUINTERO"}
    texts = " ".join(visible_texts(QApplication.instance())).upper()
    assert [v for v in identity if v in texts] == []
    assert "BREATHLESS" in texts and "EMPHYSEMA" not in texts  # the diagnosis stays hidden
    assert quiz.card.number == 1
    with qtbot.waitSignal(quiz.sig_images_shown, timeout=10000):
        assert quiz.submit("emphysema, I think")
    texts = " ".join(visible_texts(QApplication.instance())).upper()
    assert "EMPHYSEMA IN [NAME]" in texts and [v for v in identity if v in texts] == []
    quiz.right_button.click()
    with qtbot.waitSignal(quiz.sig_finished, timeout=10000) as done:
        quiz.next_button.click()
        while quiz.card is not None:
            quiz.submit("pass")
            quiz.next_button.click()
    assert done.args[0].correct == 1 and done.args[0].answered == done.args[0].questions
    quiz.close()
    assert main.isVisible() and window.isVisible()
    assert panel.show_scores() == [{"trainee": "resident-1", "sessions": 1,
                                    "answered": done.args[0].answered, "matched": 1,
                                    "correct": 1, "graded": 1}]
    assert "resident-1: 1/1 correct" in panel.message.text()

    # Export from the app: the de-identified package, and what was removed.
    out = tmp_path / "package"
    with qtbot.waitSignal(panel.sig_exported, timeout=120000) as exported:
        assert panel.export(str(out))
    result = exported.args[0]
    assert "Removed from the teaching text" in panel.message.text()
    assert result.removed["total"]["name"] >= 2
    data = json.loads((out / "teaching.json").read_text())
    assert data["title"] == "Emphysema: week 3"
    assert data["cases"][0]["diagnosis"] == "Emphysema in [name]"
    assert (out / "dicom" / "DICOMDIR").is_file()
    blob = "".join(p.read_text(errors="ignore") for p in out.rglob("*")
                   if p.suffix in (".html", ".json")).upper()
    assert [v for v in identity if v in blob] == []
    # The key image PNG carries the overlay (coloured pixels) the author showed.
    png = out / data["cases"][0]["images"][0]["png"]
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert (np.abs(pixels[..., 0] - pixels[..., 2]) > 30).any()

    # Reopen the package read-only (as on another machine) and take its quiz.
    browser = main.teaching_menu.open_package(str(out))
    qtbot.addWidget(browser)
    assert browser.cases.count() == 1 and "Emphysema" in browser.page.toPlainText()
    package_quiz = browser.start_quiz("visitor")
    qtbot.addWidget(package_quiz)
    qtbot.waitUntil(lambda: package_quiz.shown_images() == 1, timeout=10000)
    assert "Emphysema" not in package_quiz.reveal.toPlainText()
    assert package_quiz.submit("emphysema")
    assert "Emphysema in [name]" in package_quiz.reveal.toPlainText()
    package_quiz.next_button.click()
    assert package_quiz.runner.score().answered == 1

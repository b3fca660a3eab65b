"""Opening a DICOM SR document shows its text, not "no pixel data" (pydicom's sample SR)."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QFileDialog, QMessageBox  # noqa: E402

from test_gui_viewer import write_ct_series  # noqa: E402
from test_gui_viewport_reading import make_window  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def sample_sr():
    from pydicom.data import get_testdata_file

    return get_testdata_file("test-SR.dcm")  # a Comprehensive SR: text, codes, a NUM in cm


def test_importing_an_sr_shows_its_text_instead_of_a_skip(qtbot, tmp_path, monkeypatch, sample_sr):
    win = make_window(qtbot, tmp_path, monkeypatch, write_ct_series(tmp_path / "ct"))
    extra = write_ct_series(tmp_path / "more", slices=2, seed=4)
    shutil.copy(sample_sr, extra / "report.dcm")
    boxes = []
    monkeypatch.setattr(QMessageBox, "open", lambda self: boxes.append(self.text()))
    with qtbot.waitSignal(win.importer.sig_finished, timeout=20000) as blocker:
        win.import_paths([str(extra)])
    assert [s.reason for s in blocker.args[0].skipped] == ["no pixel data"]
    qtbot.waitUntil(lambda: len(getattr(win, "_sr_dialogs", [])) == 1, timeout=5000)
    dialog = win._sr_dialogs[0]
    assert dialog.isVisible()
    assert "Comprehensive SR" in dialog.heading.text()
    text = dialog.text.toPlainText()
    assert "A mass of" in text and "was detected." in text  # TEXT items
    assert "Code: Sample Code 1" in text  # CODE items, by their meaning
    assert "Diameter: 3 cm" in text  # NUM with its unit
    assert boxes == []  # the SR was the only skip: no "not imported" box for it


def test_open_sr_report_from_the_file_menu_and_refuses_an_image_in_words(
        qtbot, tmp_path, monkeypatch, sample_sr):
    ct = write_ct_series(tmp_path / "ct")
    win = make_window(qtbot, tmp_path, monkeypatch, ct)
    chosen = [sample_sr]
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (chosen[0], "")))
    qtbot.keyClick(win, Qt.Key_O, Qt.ControlModifier | Qt.ShiftModifier)
    qtbot.waitUntil(lambda: len(getattr(win, "_sr_dialogs", [])) == 1, timeout=5000)
    assert "Diameter: 3 cm" in win._sr_dialogs[-1].text.toPlainText()

    chosen[0] = str(sorted(ct.rglob("*.dcm"))[0])  # an image, not a report
    qtbot.keyClick(win, Qt.Key_O, Qt.ControlModifier | Qt.ShiftModifier)
    qtbot.waitUntil(lambda: len(win._sr_dialogs) == 2, timeout=5000)
    refused = win._sr_dialogs[-1]
    assert "not a text structured report" in refused.heading.text()
    assert refused.text.toPlainText() == ""

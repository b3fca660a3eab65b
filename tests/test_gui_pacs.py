"""The "Query a PACS" window against a real Orthanc on loopback.

Reuses the Orthanc fixture of ``test_pacs_orthanc`` (its own server for this module,
skipped with a message where Orthanc is not installed).  Each test works on a copy of
the fixture's node configuration, or an empty one, in its temporary folder.
"""

from __future__ import annotations

import shutil
import threading

import pytest
import test_pacs_orthanc as server
from PySide6.QtCore import Qt

from medviewer.pacs import Node
from medviewer.services import pacs
from medviewer.store import Library

orthanc = server.orthanc  # the module-scoped fixture: one Orthanc for this module
pytestmark = [pytest.mark.gui, pytest.mark.skipif(
    server.ORTHANC is None, reason="Orthanc is not installed (apt-get install orthanc "
    "orthanc-dicomweb); the PACS window tests need a real server")]


@pytest.fixture
def make_dialog(qtbot, tmp_path):
    """Build a PacsDialog on a config file, retrieving into ``tmp_path/lib.sqlite``."""
    from medviewer.qt.pacs_dialog import PacsDialog

    def make(config, node=None):
        dialog = PacsDialog(None, lambda: str(tmp_path / "lib.sqlite"), config_path=config)
        qtbot.addWidget(dialog)
        dialog.show()
        if node is not None:
            dialog.node_choice.setCurrentIndex(dialog.node_choice.findData(node))
        return dialog

    return make


@pytest.fixture
def config(orthanc, tmp_path):
    """A copy of the fixture's nodes (orthanc: C-GET, orthanc-move, web: DICOMweb)."""
    path = tmp_path / "pacs.json"
    shutil.copy(orthanc["config"], path)
    return path


def _message(dialog) -> tuple[str, str]:
    return dialog.message.level, dialog.message.text()


def _search(qtbot, dialog, rows=None) -> None:
    """Press Enter in the patient name field and wait for the answer."""
    dialog.table.setRowCount(0)
    qtbot.keyClick(dialog.form.patient_name, Qt.Key_Return)
    qtbot.waitUntil(lambda: not dialog.count_label.text().startswith("Searching"), timeout=15000)
    if rows is not None:
        assert dialog.table.rowCount() == rows, _message(dialog)


def test_first_run_adds_a_node_through_the_form_and_tests_it(qtbot, orthanc, tmp_path,
                                                             make_dialog):
    path = tmp_path / "pacs.json"
    dialog = make_dialog(path)
    assert dialog.pages.currentIndex() == 0  # the setup form, not an empty node list
    editor = dialog.setup.editor
    qtbot.mouseClick(dialog.setup.button, Qt.LeftButton)
    assert editor.message.isVisible() and "needs a name" in editor.message.text()
    assert not path.exists()

    port = pacs.list_nodes(orthanc["config"]).node("orthanc").port
    qtbot.keyClicks(editor.name, "Hospital PACS")
    editor.host.setText("127.0.0.1")
    editor.port.setValue(port)
    qtbot.keyClicks(editor.ae_title, "ORTHANC")
    qtbot.keyClick(editor.ae_title, Qt.Key_Return)  # Enter saves, as the button says
    qtbot.waitUntil(lambda: _message(dialog)[0] == "ok", timeout=15000)
    assert "Connected: Hospital PACS answered in" in _message(dialog)[1]
    assert dialog.pages.currentIndex() == 1 and dialog.node_name() == "Hospital PACS"
    node = pacs.list_nodes(path).node("Hospital PACS")
    assert (node.kind, node.host, node.port, node.ae_title) == ("dimse", "127.0.0.1", port,
                                                               "ORTHANC")

    # Edit: a rename replaces the node and keeps the rest.
    form = dialog.edit_node("Hospital PACS")
    form.editor.name.setText("Reading room")
    form.accept()
    assert [n.name for n in pacs.list_nodes(path).nodes] == ["Reading room"]
    assert dialog.node_name() == "Reading room"
    qtbot.waitUntil(lambda: _message(dialog)[0] == "ok", timeout=15000)


@pytest.mark.parametrize("node", ["orthanc", "web"])
def test_query_retrieve_and_in_library(qtbot, orthanc, config, make_dialog, tmp_path, node):
    if node == "web" and not orthanc["dicomweb"]:
        pytest.skip("Orthanc's DICOMweb plugin is missing (apt-get install orthanc-dicomweb)")
    dialog = make_dialog(config, node)
    _search(qtbot, dialog)
    assert set(dialog.table.study_uids()) == {r.study_uid for r in orthanc["records"]}
    assert "studies on" in dialog.count_label.text()

    ct, _ds, count = server._study(orthanc, "ct")
    dialog.form.modality.setCurrentText("CT")
    _search(qtbot, dialog, rows=1)
    assert dialog.table.study_uids() == [ct.study_uid]
    assert dialog.table.in_library(ct.study_uid) == "none"
    dialog.table.selectRow(0)
    assert dialog.retrieve_button.text() == "Retrieve selected (1)"
    with qtbot.waitSignal(dialog.sig_retrieved, timeout=30000) as blocker:
        qtbot.mouseClick(dialog.retrieve_button, Qt.LeftButton)
    assert blocker.args == [str(tmp_path / "lib.sqlite"), [ct.study_uid]]
    with Library(tmp_path / "lib.sqlite") as library:
        assert library.counts()["instances"] == count
    assert dialog.table.in_library(ct.study_uid) == "all"
    assert f"Retrieved 1 study ({count} images)" in dialog.summary.text()
    assert _message(dialog)[0] == "ok" and not dialog.progress.isVisible()

    _search(qtbot, dialog, rows=1)  # a fresh query marks it from the library
    assert dialog.table.in_library(ct.study_uid) == "all"
    dialog.table.selectRow(0)
    with qtbot.waitSignal(dialog.sig_retrieved, timeout=30000):
        qtbot.mouseClick(dialog.retrieve_button, Qt.LeftButton)
    assert "Already in the library, not fetched again: 1 study" in dialog.summary.text()


def test_unreachable_nodes_show_errors_in_the_dialog(qtbot, orthanc, tmp_path, make_dialog):
    path = tmp_path / "pacs.json"
    closed = server._free_port()
    pacs.add_node(Node("nowhere", "dimse", ae_title="X", host="127.0.0.1", port=closed,
                       timeout=3), config_path=path)
    pacs.add_node(Node("dead web", "dicomweb", url=f"http://127.0.0.1:{closed}/dicom-web",
                       timeout=3), config_path=path)
    pacs.add_node(Node("wrong url", "dicomweb", url=f"{orthanc['base']}/no-such-root",
                       timeout=3), config_path=path)
    dialog = make_dialog(path, "nowhere")

    qtbot.mouseClick(dialog.test_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: _message(dialog)[0] == "error", timeout=10000)
    assert "No connection to nowhere" in _message(dialog)[1]
    assert "Check the host, port and called AE title" in _message(dialog)[1]

    for name, words in (("nowhere", "no association"), ("dead web", "cannot reach"),
                        ("wrong url", "HTTP 404")):
        dialog.node_choice.setCurrentIndex(dialog.node_choice.findData(name))
        _search(qtbot, dialog, rows=0)
        level, text = _message(dialog)
        assert level == "error" and words in text and dialog.message.isVisible(), text
        assert dialog.form.search_button.isEnabled()


def test_cancel_during_a_retrieve_leaves_the_dialog_usable(qtbot, orthanc, config, make_dialog,
                                                          tmp_path, monkeypatch):
    _ct, _ds, count = server._study(orthanc, "ct")
    dialog = make_dialog(config, "orthanc")
    dialog.form.modality.setCurrentText("CT")
    _search(qtbot, dialog, rows=1)
    dialog.table.selectRow(0)

    # Hold the retrieve until the user has cancelled, so the cancel lands mid-task.
    started, release = threading.Event(), threading.Event()
    real = pacs.retrieve

    def held(*args, **kwargs):
        started.set()
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(pacs, "retrieve", held)
    with qtbot.assertNotEmitted(dialog.sig_retrieved, wait=300):
        qtbot.mouseClick(dialog.retrieve_button, Qt.LeftButton)
        assert dialog.cancel_button.isVisible() and not dialog.retrieve_button.isEnabled()
        qtbot.waitUntil(started.is_set, timeout=5000)
        qtbot.mouseClick(dialog.cancel_button, Qt.LeftButton)
        release.set()
    assert "cancelled" in _message(dialog)[1]
    assert not dialog.cancel_button.isVisible() and dialog.retrieve_button.isEnabled()
    with Library(tmp_path / "lib.sqlite") as library:
        assert library.counts()["instances"] == 0  # the task stopped before importing

    monkeypatch.setattr(pacs, "retrieve", real)
    with qtbot.waitSignal(dialog.sig_retrieved, timeout=30000):
        qtbot.mouseClick(dialog.retrieve_button, Qt.LeftButton)
    with Library(tmp_path / "lib.sqlite") as library:
        assert library.counts()["instances"] == count


def test_an_unexpected_error_is_shown_once_and_the_dialog_goes_on(qtbot, config, make_dialog,
                                                                 monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    dialog = make_dialog(config, "orthanc")
    monkeypatch.setattr(pacs, "query", broken)
    _search(qtbot, dialog, rows=0)
    qtbot.waitUntil(lambda: dialog.message.level == "error", timeout=5000)
    assert "Something unexpected went wrong: boom" in dialog.message.text()
    [box] = dialog.findChildren(QMessageBox)
    assert "RuntimeError" in box.detailedText()
    box.close()
    assert dialog.form.search_button.isEnabled()

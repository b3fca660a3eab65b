"""The de-identified export dialog: defaults in, files out, refusals explained, cancel, remember."""

from __future__ import annotations

import threading

import pydicom
import pytest
from helpers_deid import make_deid_library

from medviewer.deid import AUDIT_NAME
from medviewer.services.settings import DEID_DEFAULTS

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return make_deid_library(tmp_path_factory.mktemp("deid-gui"))


@pytest.fixture
def open_dialog(qtbot, lib):
    """Open the dialog and wait for its scopes; ``open_dialog(**kwargs)`` -> dialog."""
    from medviewer.qt.deid_dialog import DeidExportDialog

    dialogs = []

    def make(**kwargs):
        kwargs.setdefault("defaults", dict(DEID_DEFAULTS))
        path = kwargs.pop("library_path", str(lib.path))
        dialog = DeidExportDialog(None, path, **kwargs)
        qtbot.addWidget(dialog)
        dialogs.append(dialog)
        qtbot.waitUntil(lambda: dialog.plan is not None or bool(dialog.message.text()),
                        timeout=10000)
        return dialog
    yield make
    # A test that failed mid-export must not leave a worker writing into the next test.
    for dialog in dialogs:
        dialog.cancel_export()
        qtbot.waitUntil(lambda d=dialog: not d.busy, timeout=10000)


def export(qtbot, dialog, out) -> object:
    """Export into ``out`` and wait for the report."""
    dialog.out_edit.setText(str(out))
    dialog.export_button.click()
    assert dialog.busy, dialog.message.text()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=20000)
    return dialog.report


def test_form_round_trips_every_key(qtbot):
    from medviewer.qt.deid_options_form import DeidOptionsForm

    form = DeidOptionsForm()
    qtbot.addWidget(form)
    assert form.values() == DEID_DEFAULTS
    flags = [k for k, v in DEID_DEFAULTS.items() if isinstance(v, bool)]
    for dates in ("shift", "keep", "remove"):
        for key in flags:
            wanted = {**DEID_DEFAULTS, "dates": dates, key: True}
            form.set_values(wanted)
            assert form.values() == wanted
    everything = {"dates": "keep", **{k: True for k in flags}}
    form.set_values(everything)
    assert form.values() == everything
    # Missing keys show their default, unknown ones are ignored, a bad policy is the safest.
    form.set_values({"retain_uids": True, "surprise": 1, "dates": "blur"})
    assert form.values() == {**DEID_DEFAULTS, "retain_uids": True}


def test_dialog_prefills_defaults_and_offers_series_and_study(open_dialog, lib):
    defaults = {**DEID_DEFAULTS, "dates": "shift", "retain_device_identity": True}
    dialog = open_dialog(series_ids=[lib.ct_series], defaults=defaults)
    assert dialog.form.values() == defaults
    assert [b.text() for b in dialog.scope_buttons] == ["This series: 4 images",
                                                        "This study: 2 series, 5 images"]
    assert dialog.scope_buttons[0].isChecked() and dialog.export_button.isEnabled()
    assert dialog.chosen_defaults() is None
    whole = open_dialog()
    assert [b.text() for b in whole.scope_buttons] == [
        "Whole library: 3 patients, 5 series, 8 images"]


def test_series_export_writes_deidentified_files(qtbot, open_dialog, lib, tmp_path):
    dialog = open_dialog(series_ids=[lib.ct_series],
                         defaults={**DEID_DEFAULTS, "dates": "shift"})
    report = export(qtbot, dialog, tmp_path / "out")
    assert not report.cancelled and len(report.written) == 4 and report.skipped == []
    for written in report.written:
        ds = pydicom.dcmread(written.output)
        name, patient_id = lib.originals[written.original_sop_uid]
        assert str(ds.PatientName) != name and str(ds.PatientID) != patient_id
        assert ds.PatientIdentityRemoved == "YES"
        codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
        assert codes == ["113100", "113107"]
    summary = dialog.summary.toPlainText()
    audit = tmp_path / "out" / AUDIT_NAME
    assert audit.is_file() and str(audit) in summary
    assert f"Wrote 4 files to {tmp_path / 'out'}" in summary
    assert dialog.open_button.isEnabled() and dialog.export_button.isEnabled()


def test_open_folder_opens_the_export(qtbot, open_dialog, lib, tmp_path, monkeypatch):
    from PySide6.QtGui import QDesktopServices

    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url))
    dialog = open_dialog(series_ids=[lib.ct_series])
    assert not dialog.open_button.isEnabled()
    export(qtbot, dialog, tmp_path / "out")
    dialog.open_button.click()
    assert [u.toLocalFile() for u in opened] == [str(tmp_path / "out")]


def test_burned_in_files_refused_unless_included(qtbot, open_dialog, lib, tmp_path):
    dialog = open_dialog(study_id=lib.ct_study)
    assert [b.text() for b in dialog.scope_buttons] == ["This study: 2 series, 5 images"]
    report = export(qtbot, dialog, tmp_path / "first")
    assert len(report.written) == 4 and len(report.skipped) == 1
    summary = dialog.summary.toPlainText()
    assert "Refused 1 file:" in summary and "identifying text in its pixels" in summary
    assert "Secondary Capture" in summary  # the reason, not just the verdict
    dialog.include_burned_in.setChecked(True)
    report = export(qtbot, dialog, tmp_path / "second")
    assert len(report.written) == 5 and report.skipped == []
    assert "Included although they may show burned-in text" in dialog.summary.toPlainText()


@pytest.mark.parametrize("where, words", [
    ("library", "inside"), ("images", "inside"), ("full", "not empty"), ("", "no output folder"),
])
def test_bad_output_folder_is_refused_with_a_hint(open_dialog, lib, tmp_path, where, words):
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    out = {"library": lib.path.parent / "export", "images": lib.inputs / "export",
           "full": full, "": ""}[where]
    dialog = open_dialog(series_ids=[lib.ct_series])
    dialog.out_edit.setText(str(out))
    dialog.export_button.click()
    assert not dialog.busy and dialog.report is None
    assert words in dialog.message.text().lower() and "Choose" in dialog.message.text()
    assert not (lib.path.parent / "export").exists() and not (lib.inputs / "export").exists()
    assert [p.name for p in full.iterdir()] == ["notes.txt"]


def test_worker_error_shown_with_hint_and_dialog_stays_usable(qtbot, open_dialog, lib, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    dialog = open_dialog(series_ids=[lib.ct_series])
    assert export(qtbot, dialog, blocker / "out") is None
    assert "cannot create the folder" in dialog.message.text()
    assert "Choose a folder you can write to" in dialog.message.text()
    assert dialog.export_button.isEnabled() and dialog.form.isEnabled()


def test_unexpected_error_is_shown_once_not_raised(qtbot, open_dialog, lib, tmp_path,
                                                   monkeypatch):
    from medviewer.qt import deid_dialog, dialogs

    shown = []
    monkeypatch.setattr(dialogs, "show_unexpected_error", lambda *a: shown.append(a[1:]))
    monkeypatch.setattr(deid_dialog, "export_files",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk on fire")))
    dialog = open_dialog(series_ids=[lib.ct_series])
    export(qtbot, dialog, tmp_path / "out")
    assert len(shown) == 1 and shown[0][0] == "disk on fire" and "Traceback" in shown[0][1]
    assert dialog.message.text() == "disk on fire" and dialog.export_button.isEnabled()


def test_missing_library_says_so(open_dialog, tmp_path):
    dialog = open_dialog(library_path=str(tmp_path / "nowhere.sqlite"))
    assert "does not exist" in dialog.message.text()
    assert not dialog.export_button.isEnabled() and dialog.scope_buttons == []


def test_cancel_stops_reports_and_leaves_dialog_usable(qtbot, open_dialog, lib, tmp_path,
                                                       monkeypatch):
    from medviewer.deid import Exporter

    started, release = threading.Event(), threading.Event()
    original = Exporter.add

    def first_file_waits(self, ref, regions=None):  # worker thread
        if not started.is_set():
            started.set()
            release.wait(10)
        return original(self, ref, regions)

    monkeypatch.setattr(Exporter, "add", first_file_waits)
    dialog = open_dialog(study_id=lib.ct_study)
    dialog.out_edit.setText(str(tmp_path / "partial"))
    dialog.export_button.click()
    qtbot.waitUntil(started.is_set, timeout=10000)
    assert dialog.cancel_button.isEnabled() and not dialog.close_button.isEnabled()
    dialog.cancel_button.click()
    release.set()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=10000)
    report = dialog.report
    assert report.cancelled and len(report.written) == 1
    assert (tmp_path / "partial" / AUDIT_NAME).is_file()
    assert "Cancelled after 1 of 5 files" in dialog.summary.toPlainText()
    assert dialog.export_button.isEnabled() and dialog.close_button.isEnabled()
    # Usable: the same dialog exports again, in full, into a new folder.
    report = export(qtbot, dialog, tmp_path / "again")
    assert not report.cancelled and len(report.written) == 4


def test_escape_during_export_cancels_instead_of_closing(qtbot, open_dialog, lib, tmp_path,
                                                         monkeypatch):
    from medviewer.deid import Exporter

    release = threading.Event()
    original = Exporter.add
    monkeypatch.setattr(Exporter, "add",
                        lambda self, ref, regions=None: (release.wait(10),
                                                         original(self, ref, regions))[1])
    dialog = open_dialog(series_ids=[lib.ct_series])
    dialog.show()
    dialog.out_edit.setText(str(tmp_path / "out"))
    dialog.export_button.click()
    dialog.reject()
    assert dialog.isVisible() and not dialog.cancel_button.isEnabled()
    release.set()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=10000)
    assert dialog.report.cancelled and dialog.isVisible()


def test_remember_emits_the_form_values(qtbot, open_dialog, lib, tmp_path):
    dialog = open_dialog(series_ids=[lib.ct_series])
    emitted = []
    dialog.sig_defaults_changed.connect(emitted.append)
    dialog.form.checks["retain_patient_characteristics"].setChecked(True)
    dialog.form.date_buttons["keep"].setChecked(True)
    export(qtbot, dialog, tmp_path / "not-remembered")
    assert emitted == [] and dialog.chosen_defaults() is None
    dialog.remember.setChecked(True)
    expected = {**DEID_DEFAULTS, "dates": "keep", "retain_patient_characteristics": True}
    assert dialog.chosen_defaults() == expected
    report = export(qtbot, dialog, tmp_path / "remembered")
    assert emitted == [expected]
    codes = {i.CodeValue for i in
             pydicom.dcmread(report.written[0].output).DeidentificationMethodCodeSequence}
    assert codes == {"113100", "113106", "113108"}

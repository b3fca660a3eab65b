"""The export service: scopes with counts, folders it refuses, cancel that still reports."""

from __future__ import annotations

import json

import pydicom
import pytest
from helpers_deid import make_deid_library

from medviewer.deid import AUDIT_NAME, DeidOptionsError
from medviewer.errors import LibraryError, MedViewerError
from medviewer.services.deid_export import (
    check_output_folder,
    export_files,
    options_from_defaults,
    plan_export,
)
from medviewer.services.settings import DEID_DEFAULTS
from medviewer.tasks import TaskState


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return make_deid_library(tmp_path_factory.mktemp("deid-service"))


def test_series_offers_its_study_and_library_is_offered_alone(lib):
    plan = plan_export(lib.path, series_ids=[lib.ct_series])
    assert [(s.kind, s.images, s.series) for s in plan.scopes] == [("series", 4, 1),
                                                                   ("study", 5, 2)]
    assert plan.scopes[1].describe() == "This study: 2 series, 5 images"
    assert {f.path for f in plan.scopes[0].files} < {f.path for f in plan.scopes[1].files}
    [whole] = plan_export(lib.path).scopes
    # 3 radiographs (one patient has two studies) + the CT study's 5 files, 3 patients.
    assert (whole.kind, whole.images, whole.patients) == ("library", 8, 3)
    assert whole.describe().startswith("Whole library: 3 patients, ")


def test_plan_refuses_unknown_series_and_missing_library(lib, tmp_path):
    with pytest.raises(LibraryError, match="not found"):
        plan_export(lib.path, series_ids=[lib.ct_series, 999])
    missing = tmp_path / "gone" / "cases.sqlite"
    with pytest.raises(LibraryError, match="does not exist") as info:
        plan_export(missing)
    assert info.value.hint and not missing.exists()  # no empty library created in its place


def test_protected_folders_cover_library_images_and_import_roots(lib, tmp_path):
    plan = plan_export(lib.path, series_ids=[lib.ct_series])
    protected = plan.protected_folders
    for bad in (lib.path.parent / "export", lib.inputs / "export",
                next(lib.inputs.rglob("IM*.dcm")).parent / "new"):
        with pytest.raises(MedViewerError, match="inside") as info:
            check_output_folder(bad, protected)
        assert "outside the library" in info.value.hint
    full = tmp_path / "full"
    full.mkdir()
    (full / "note.txt").write_text("x")
    with pytest.raises(MedViewerError, match="not empty"):
        check_output_folder(full, protected)
    with pytest.raises(MedViewerError, match="no output folder"):
        check_output_folder("  ", protected)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_output_folder(empty, protected) == empty.resolve()
    assert check_output_folder(tmp_path / "new" / "deeper", protected) == \
        (tmp_path / "new" / "deeper").resolve()


def test_export_writes_options_and_refuses_burned_in(lib, tmp_path):
    study = plan_export(lib.path, study_id=lib.ct_study).scopes[0]
    options = options_from_defaults({"dates": "shift", "retain_device_identity": True})
    report = export_files(study.files, tmp_path / "out", options, state=TaskState())
    assert len(report.written) == 4 and [s.reason for s in report.skipped] == ["BurnedInTextError"]
    ds = pydicom.dcmread(report.written[0].output)
    codes = {item.CodeValue for item in ds.DeidentificationMethodCodeSequence}
    assert codes == {"113100", "113107", "113109"}
    audit = json.loads((tmp_path / "out" / AUDIT_NAME).read_text())
    assert len(audit["files"]) == 4 and report.audit_path.endswith(AUDIT_NAME)
    included = export_files(study.files, tmp_path / "out2", options, include_burned_in=True)
    assert len(included.written) == 5 and len(included.flagged) == 1


def test_cancel_returns_the_report_and_writes_the_audit(lib, tmp_path):
    state = TaskState()
    state.request_cancel()
    files = plan_export(lib.path, study_id=lib.ct_study).scopes[0].files
    report = export_files(files, tmp_path / "out", options_from_defaults({}), state=state)
    assert report.cancelled and report.written == []
    assert (tmp_path / "out" / AUDIT_NAME).is_file()


def test_export_rechecks_the_folder(lib, tmp_path):
    files = plan_export(lib.path, series_ids=[lib.ct_series]).scopes[0].files
    with pytest.raises(MedViewerError, match="inside"):
        export_files(files, lib.path.parent / "x", options_from_defaults({}),
                     protected=[lib.path.parent])
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(MedViewerError, match="cannot create the folder"):
        export_files(files, blocker / "out", options_from_defaults({}))


def test_options_from_defaults():
    assert [code for code, _ in options_from_defaults({}).method_codes()] == ["113100"]
    options = options_from_defaults({**DEID_DEFAULTS, "retain_uids": True, "unknown": 1})
    assert options.retain_uids and options.dates == "remove"
    with pytest.raises(DeidOptionsError):
        options_from_defaults({"dates": "blur"})

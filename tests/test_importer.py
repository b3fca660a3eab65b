"""Importing into a library: report, skipped files with true reasons, re-import, labels, cancel."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import RLELossless

import helpers_dicom as h
from medviewer.errors import TaskCancelled
from medviewer.services import importer, parallel_scan
from medviewer.services.importer import import_paths
from medviewer.store import Library
from medviewer.tasks import TaskState

KNOWN_REASONS = {"not DICOM", "truncated", "no pixel data", "unsupported transfer syntax",
                 "pixel data could not be decoded"}


def reasons(report) -> dict[str, str]:
    return {os.path.basename(s.path.split("!")[-1]): s.reason for s in report.skipped}


def only_series(library):
    [series] = library.series()
    return series


# -- a clean series --------------------------------------------------------------------------

def test_series_import_counts_order_and_key_case(tmp_library, ct_series):
    state = TaskState()
    report = import_paths(tmp_library, [ct_series.folder], state=state)
    assert (report.patients, report.studies, report.series, report.instances) == (1, 1, 1, 8)
    assert report.skipped == [] and report.warnings == {} and report.unchanged == 0
    series = only_series(tmp_library)
    assert series.spacing == pytest.approx(2.5) and series.sorted_by == "position"
    assert series.warnings == [] and series.tilt_degrees == pytest.approx(0.0, abs=1e-6)
    rows = tmp_library.instances(series.id)
    assert [r.location for r in rows] == [str(p) for p in ct_series.paths]
    assert [r.slice_index for r in rows] == list(range(8))
    # A stack is one case, at its middle slice.
    [case] = tmp_library.cases()
    assert case.location == str(ct_series.paths[4]) and case.frame == 0
    assert state.progress == 1.0 and "8" in state.status


def test_report_as_dict_is_json(tmp_library, ct_series, tmp_path):
    h.write_junk(ct_series.folder / "junk.bin")
    data = json.loads(json.dumps(import_paths(tmp_library, [ct_series.folder]).as_dict()))
    assert {"patients", "studies", "series", "instances", "skipped"} <= set(data)
    assert data["instances"] == 8
    assert data["skipped"] == [{"path": str(ct_series.folder / "junk.bin"), "reason": "not DICOM",
                                "detail": data["skipped"][0]["detail"]}]
    assert data["skipped"][0]["detail"]


# -- bad files -------------------------------------------------------------------------------

@pytest.fixture
def mixed_folder(tmp_path, ct_series):
    """A folder of good images and every kind of bad file, with the reason each must get."""
    root = tmp_path / "mixed"
    shutil.copytree(ct_series.folder, root / "ct")
    h.write_monochrome1(root / "cr" / "chest.dcm")
    h.write_multiframe(root / "xa" / "run.dcm")
    h.write_rgb(root / "sc" / "photo.dcm")
    h.write_png(root / "png" / "xray.png")
    expected = {
        "junk.dcm": "not DICOM",
        "page.dcm": "not DICOM",
        "cut.dcm": "truncated",
        "rtplan.dcm": "no pixel data",
        "private.dcm": "unsupported transfer syntax",
        "garbled_rle.dcm": "pixel data could not be decoded",
    }
    h.write_junk(root / "bad" / "junk.dcm")
    h.write_html_as_dcm(root / "bad" / "page.dcm")
    h.truncated_copy(ct_series.paths[0], root / "bad" / "cut.dcm", 0.8)
    h.copy_pydicom_sample("rtplan.dcm", root / "bad")
    ds = pydicom.dcmread(ct_series.paths[1])
    ds.file_meta.TransferSyntaxUID = "1.2.3.4.5.6.7"
    ds.PixelData = encapsulate([b"\x00" * 32])
    ds["PixelData"].VR = "OB"
    ds.save_as(root / "bad" / "private.dcm", implicit_vr=False, little_endian=True)
    rle = h.write_compressed(ct_series.paths[2], root / "bad" / "garbled_rle.dcm", RLELossless)
    ds = pydicom.dcmread(rle)
    ds.PixelData = encapsulate([b"\x01" + b"\x00" * 63 + b"\xff" * 8])
    ds.save_as(rle)
    return root, expected


def test_every_bad_file_is_skipped_with_its_true_reason(tmp_library, mixed_folder):
    root, expected = mixed_folder
    report = import_paths(tmp_library, [root])
    assert reasons(report) == expected
    assert all(s.detail for s in report.skipped)
    # ct (8) + chest + multi-frame + rgb + png
    assert report.instances == 12
    assert tmp_library.last_import_skips() == sorted(
        (s.path, s.reason, s.detail) for s in report.skipped)


def test_verify_none_imports_undecodable_files_and_bad_mode_is_refused(tmp_library, mixed_folder):
    root, expected = mixed_folder
    report = import_paths(tmp_library, [root / "bad"], verify="none")
    assert "garbled_rle.dcm" not in reasons(report)
    assert tmp_library.instance_by_location(str(root / "bad" / "garbled_rle.dcm")) is not None
    with pytest.raises(ValueError):
        import_paths(tmp_library, [root], verify="sometimes")


def test_unexpected_exceptions_skip_one_file_as_unreadable(tmp_library, ct_series, monkeypatch):
    real_scan = parallel_scan.scan

    def flaky(ref):
        if ref.path.endswith(ct_series.paths[0].name):
            raise KeyError("surprise")
        return real_scan(ref)

    monkeypatch.setattr(parallel_scan, "scan", flaky)
    report = import_paths(tmp_library, [ct_series.folder])
    # In words, not the exception's class name (issue 15).
    assert [(s.reason, s.detail) for s in report.skipped] == [
        ("unreadable", "it could not be read ('surprise')")]
    assert report.instances == 7


def test_kinds_of_images_and_their_cases(tmp_library, mixed_folder):
    root, _ = mixed_folder
    import_paths(tmp_library, [root])
    by_location = {c.location: c for c in tmp_library.cases()}
    multi = by_location[str(root / "xa" / "run.dcm")]
    assert multi.frame == 2  # the middle of 5 frames
    assert str(root / "cr" / "chest.dcm") in by_location
    png = tmp_library.instance_by_location(str(root / "png" / "xray.png"))
    assert png.kind == "raster" and str(root / "png" / "xray.png") in by_location
    assert len(by_location) == 5  # one case per image, one for the CT stack


# -- geometry reaches the library ------------------------------------------------------------

def test_tilted_uneven_series_warnings_reach_report_and_library(tmp_library, tmp_path):
    gaps = [4.0] * 5 + [1.1] + [7.0] * 4
    series = h.write_ct_series(tmp_path / "head", n=11, spacing=gaps, tilt_degrees=18.5, seed=3,
                               series_description="HEAD")
    report = import_paths(tmp_library, [series.folder])
    row = only_series(tmp_library)
    codes = [w.code for w in row.warnings]
    assert codes == ["uneven spacing", "gantry tilt"]
    assert row.tilt_degrees == pytest.approx(18.5, abs=0.01)
    [messages] = report.warnings.values()
    assert any("18.5" in m for m in messages)
    assert [r.location for r in tmp_library.instances(row.id)] == [str(p) for p in series.paths]


# -- zips and DICOMDIRs ----------------------------------------------------------------------

def test_zip_members_are_imported_and_openable(tmp_library, ct_series, tmp_path):
    archive = h.write_zip(tmp_path / "study.zip",
                          [(p, f"s/{p.name}") for p in ct_series.paths])
    report = import_paths(tmp_library, [archive])
    assert report.instances == 8 and report.skipped == []
    rows = tmp_library.instances(only_series(tmp_library).id)
    assert rows[0].location == f"{archive}!s/{ct_series.paths[0].name}"
    from medviewer.dicom.pixels import decode

    assert decode(rows[0].ref).frames.shape == (1, 16, 16)


def test_dicomdir_input(tmp_library, ct_series, tmp_path):
    from pydicom.fileset import FileSet

    fs = FileSet()
    for p in ct_series.paths:
        fs.add(pydicom.dcmread(p))
    fs.write(tmp_path / "media")
    report = import_paths(tmp_library, [tmp_path / "media" / "DICOMDIR"])
    assert report.instances == 8 and report.skipped == []
    assert only_series(tmp_library).spacing == pytest.approx(2.5)


# -- re-import -------------------------------------------------------------------------------

def test_reimport_skips_unchanged_files_without_reading_them(tmp_library, ct_series, monkeypatch):
    import_paths(tmp_library, [ct_series.folder])
    monkeypatch.setattr(parallel_scan, "scan", lambda ref: pytest.fail(f"re-scanned {ref.display}"))
    report = import_paths(tmp_library, [ct_series.folder])
    assert (report.instances, report.unchanged, report.series) == (0, 8, 0)
    assert tmp_library.counts()["instances"] == 8 and tmp_library.counts()["cases"] == 1


def test_reimport_picks_up_changed_and_new_files(tmp_library, tmp_path):
    series = h.write_ct_series(tmp_path / "ct", n=6, seed=4, drop=[3])  # slice 3 missing
    import_paths(tmp_library, [series.folder])
    assert [w.code for w in only_series(tmp_library).warnings] == ["missing slices"]
    # The missing slice arrives, and one file is rewritten (new mtime).
    full = h.write_ct_series(tmp_path / "full", n=6, seed=4, shuffle=False)
    shutil.copy(full.paths[3], series.folder / "late.dcm")
    os.utime(series.paths[0], (1_000_000_000, 1_000_000_000))
    report = import_paths(tmp_library, [series.folder])
    assert (report.instances, report.unchanged) == (2, 4)
    row = only_series(tmp_library)
    assert row.warnings == [] and row.instances == 6
    locations = [r.location for r in tmp_library.instances(row.id)]
    assert locations[3] == str(series.folder / "late.dcm")
    assert tmp_library.counts()["cases"] == 1  # still one key slice for the stack


def test_cancel_before_work_raises_and_imports_nothing(tmp_library, ct_series):
    state = TaskState()
    state.request_cancel()
    with pytest.raises(TaskCancelled):
        import_paths(tmp_library, [ct_series.folder], state=state)
    assert tmp_library.counts()["instances"] == 0


class CancelWhileScanning(TaskState):
    """Ask for cancellation as soon as scanning starts (the importer notices at its next check)."""

    def set_progress(self, fraction, status=None):
        super().set_progress(fraction, status)
        if status and status.startswith("Scanning"):
            self.request_cancel()


def test_reimport_after_a_cancelled_import_finishes_every_series(tmp_path, monkeypatch):
    """Batches committed before a cancel must still be sorted and get cases on the next import."""
    monkeypatch.setattr(importer, "BATCH", 10)
    first = h.write_ct_series(tmp_path / "in" / "a", n=50, rows=8, cols=8, seed=21,
                              series_description="A")
    h.write_ct_series(tmp_path / "in" / "b", n=5, rows=8, cols=8, seed=22, series_description="B")
    with Library(tmp_path / "lib.sqlite") as library:
        with pytest.raises(TaskCancelled):
            import_paths(library, [tmp_path / "in"], state=CancelWhileScanning())
        # The importer checks every 50 files: five batches of 10 were committed by then.
        assert library.counts()["instances"] == 50
        import_paths(library, [tmp_path / "in"])
        for series in library.series():
            rows = library.instances(series.id)
            assert all(r.slice_index is not None for r in rows), series.description
            assert series.sorted_by == "position", series.description
        assert {c.location for c in library.cases()} >= {str(first.paths[25])}


# -- labels ----------------------------------------------------------------------------------

def test_label_table_sets_patients_labels_and_masks(tmp_library, tmp_path):
    folder = tmp_path / "cxr"
    for i in range(3):
        h.write_png(folder / "images" / f"{i:03d}.png", seed=i)
    (folder / "masks").mkdir()
    table = folder / "labels.csv"
    table.write_text("path,patient_id,labels,mask_path\n"
                     "images/000.png,P1,Cardiomegaly|Effusion,masks/000.png\n"
                     "images/001.png,P1,No Finding,\n"
                     "images/002.png,P2,Emphysema,\n")
    report = import_paths(tmp_library, [folder / "images"], labels=table)
    assert report.labelled_cases == 3
    patients = {p.patient_id: p.studies for p in tmp_library.patients()}
    assert patients == {"P1": 2, "P2": 1}
    cases = {os.path.basename(c.location): c for c in tmp_library.cases()}
    assert cases["000.png"].labels == ("Cardiomegaly", "Effusion")
    assert cases["000.png"].mask_path == str(folder / "masks" / "000.png")
    assert cases["001.png"].labels == ("No Finding",)
    assert cases["000.png"].patient_id == "P1"
    sources = {s for c in cases.values() for _, _, s, _ in tmp_library.labels(c.id)}
    assert sources == {"dataset"}


def test_dicom_patient_id_wins_over_the_table(tmp_library, tmp_path):
    path, _ = h.write_monochrome1(tmp_path / "dcm" / "chest.dcm", patient_id="FROM-HEADER")
    table = tmp_path / "dcm" / "labels.csv"
    table.write_text("path,patient_id,labels\nchest.dcm,FROM-TABLE,Nodule\n")
    import_paths(tmp_library, [path], labels=table)
    assert [p.patient_id for p in tmp_library.patients()] == ["FROM-HEADER"]
    assert tmp_library.cases()[0].labels == ("Nodule",)


def test_labels_apply_to_images_imported_earlier(tmp_library, tmp_path):
    png = h.write_png(tmp_path / "x" / "a.png")
    import_paths(tmp_library, [png])
    table = tmp_path / "x" / "t.csv"
    table.write_text("Image Index,Finding Labels\na.png,Mass\n")
    report = import_paths(tmp_library, [png], labels=table)
    assert report.unchanged == 1 and report.labelled_cases == 1
    assert tmp_library.cases()[0].labels == ("Mass",)


def test_skipped_files_never_stop_the_import(tmp_library, tmp_path):
    root = tmp_path / "many"
    for i in range(30):
        h.write_junk(root / f"junk{i:02d}.dcm", seed=i, size=64 + i)
    series = h.write_ct_series(root / "zz", n=3, seed=8)
    report = import_paths(tmp_library, [root])
    assert len(report.skipped) == 30 and report.instances == 3
    assert {s.reason for s in report.skipped} == {"not DICOM"}
    assert tmp_library.counts()["instances"] == len(series.paths)
    assert np.all([s.reason in KNOWN_REASONS for s in report.skipped])


def test_the_same_file_in_a_folder_and_a_zip_is_imported_once(tmp_path, ct_series):
    """A zip of a folder holds byte-identical files: importing both must not double the slices."""
    from helpers_dicom import write_zip

    files = list(ct_series.paths)
    archive = write_zip(tmp_path / "copy.zip", [(p, p.name) for p in files])
    with Library(tmp_path / "lib.sqlite") as library:
        report = import_paths(library, [ct_series.folder, archive])
        assert report.instances == len(files)
        assert {s.reason for s in report.skipped} == {"duplicate"}
        assert len(report.skipped) == len(files)


def test_radiographs_without_a_table_row_are_named_by_file_and_found_by_it(tmp_library, tmp_path):
    folder = tmp_path / "films"
    for name in ("00000013_005.png", "00000013_006.png"):
        h.write_png(folder / name)
    table = tmp_path / "labels.csv"
    table.write_text("path,patient_id,labels\n00000013_006.png,P13,No Finding\n")
    import_paths(tmp_library, [folder], labels=str(table))
    # The one without a table row takes its file name; the table's patient ID wins otherwise.
    assert sorted(p.patient_id for p in tmp_library.patients()) == ["00000013_005", "P13"]
    # The library search finds a file name (and not every file because of its folder's name).
    assert [p.patient_id for p in tmp_library.patients("13_006")] == ["P13"]
    assert tmp_library.patients("films") == []

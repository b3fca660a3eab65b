"""Hostile inputs to import and de-identification: DICOMDIRs and zips that point outside,
names that are not text, links that lead nowhere, pipes, zip bombs.  Nothing outside the
given input is read or written, one bad file never stops an import, and every file under
the inputs appears in the report."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import helpers_dicom as h
import numpy as np
import pydicom
import pytest
from pydicom.fileset import FileSet

from medviewer.deid.export import deidentify_files
from medviewer.dicom.sources import iter_files
from medviewer.services.importer import import_paths
from medviewer.store import Library


def _image(path: Path, seed: str, patient: str = "PAT-001") -> Path:
    ds = h.make_image(np.full((8, 8), 7, np.uint16), seed=seed, patient_id=patient,
                      sop_uid=h.uid("sop", seed))
    return h.write(ds, path)


def _hostile_dicomdir(root: Path, outside: Path) -> Path:
    """A real DICOMDIR of one image, with extra records that name ``outside`` in two ways."""
    root.mkdir(parents=True)
    fs = FileSet()
    fs.add(pydicom.dcmread(_image(root / "in.dcm", "inside")))
    fs.write(root / "media")
    dicomdir = root / "media" / "DICOMDIR"
    ds = pydicom.dcmread(dicomdir)
    records = ds.DirectoryRecordSequence
    template = records[-1]
    for ref in (list(outside.parts[1:]) and [str(outside)],
                [".."] * 2 + [outside.parent.name, outside.name]):
        record = pydicom.Dataset()
        record.update(template)
        record.ReferencedFileID = ref
        records.append(record)
    ds.save_as(dicomdir)
    return dicomdir


def test_dicomdir_references_outside_the_media_are_not_read(tmp_path):
    outside = _image(tmp_path / "secret" / "outside.dcm", "outside", patient="OTHER-PATIENT")
    dicomdir = _hostile_dicomdir(tmp_path / "disc", outside)
    with Library(tmp_path / "lib.sqlite") as library:
        report = import_paths(library, [dicomdir])
        locations = [r[0] for r in library.conn.execute("SELECT location FROM instances")]
    assert not any("secret" in loc for loc in locations), locations
    assert len(locations) == 1
    reasons = [s.reason for s in report.skipped]
    assert reasons.count("outside the media folder") == 2, report.skipped
    deid = deidentify_files([dicomdir], tmp_path / "out")
    assert len(deid.written) == 1
    assert all("OTHER-PATIENT" not in str(w) for w in deid.written)


def _hostile_zip(path: Path, good: Path) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(good, "ok/good.dcm")
        # ZipInfo keeps the name as given (zf.write would sanitise it).
        zf.writestr(zipfile.ZipInfo("../escape.dcm"), good.read_bytes())
        zf.writestr(zipfile.ZipInfo("/abs/root.dcm"), good.read_bytes())
        link = zipfile.ZipInfo("ok/link.dcm")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
        zf.write(good, "ok/dup.dcm")
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("ok/dup.dcm", b"a second member of the same name")
    return path


def test_zip_members_that_leave_the_archive_are_refused_and_listed(tmp_path):
    good = _image(tmp_path / "src" / "good.dcm", "zip-good")
    (tmp_path / "in").mkdir()
    archive = _hostile_zip(tmp_path / "in" / "bad.zip", good)
    with Library(tmp_path / "lib.sqlite") as library:
        report = import_paths(library, [archive])
        locations = [r[0] for r in library.conn.execute("SELECT location FROM instances")]
    assert locations == [f"{archive}!ok/good.dcm"]
    by_member = {s.path.split("!", 1)[1]: s.reason for s in report.skipped}
    assert by_member["../escape.dcm"] == "unsafe zip member"
    assert by_member["/abs/root.dcm"] == "unsafe zip member"
    assert by_member["ok/link.dcm"] == "unsafe zip member"
    assert by_member["ok/dup.dcm"] == "duplicate zip member"  # which one is meant? neither
    assert [s.path for s in report.skipped].count(f"{archive}!ok/dup.dcm") == 2
    deid = deidentify_files([archive], tmp_path / "out")
    assert len(deid.written) == 1
    assert not (tmp_path / "escape.dcm").exists() and not (tmp_path / "out" / "..").samefile(
        tmp_path / "out")


def test_a_zip_bomb_is_refused_without_inflating_it(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.dcm", bytes(64 << 20))
    assert archive.stat().st_size < 200_000
    with Library(tmp_path / "lib.sqlite") as library:
        report = import_paths(library, [archive])
    assert [s.reason for s in report.skipped] == ["zip bomb"]


def test_one_undecodable_name_never_stops_an_import(tmp_path):
    folder = tmp_path / "in"
    for i in range(4):
        _image(folder / f"ok{i}.dcm", f"name-{i}")
    bad = os.path.join(os.fsencode(folder), b"caf\xe9.dcm")
    with open(bad, "wb") as handle:
        handle.write((folder / "ok0.dcm").read_bytes())
    with Library(tmp_path / "lib.sqlite") as library:
        report = import_paths(library, [folder])
    assert report.instances == 4
    assert [s.reason for s in report.skipped] == ["unusable file name"]


def test_a_zip_with_a_damaged_central_directory_never_stops_an_import(tmp_path):
    folder = tmp_path / "in"
    _image(folder / "ok.dcm", "cd-ok")
    archive = h.write_zip(folder / "broken.zip", [(folder / "ok.dcm", "a.dcm")])
    data = bytearray(archive.read_bytes())
    cd = data.rfind(b"PK\x01\x02")
    data[cd:cd + 4] = b"PK\xff\xff"  # the end record is intact, the directory is not
    archive.write_bytes(bytes(data))
    assert zipfile.is_zipfile(archive)
    with Library(tmp_path / "lib.sqlite") as library:
        report = import_paths(library, [folder])
    assert report.instances == 1
    assert [(s.path, s.reason) for s in report.skipped] == [(str(archive), "damaged zip")]


def test_every_file_under_the_inputs_appears_in_the_report(tmp_path):
    folder = tmp_path / "in"
    _image(folder / "ok.dcm", "every-ok")
    os.symlink("loop", folder / "loop")
    os.symlink(folder / "nowhere.dcm", folder / "dangling.dcm")
    os.mkfifo(folder / "pipe.dcm")
    (folder / "notes.txt").write_text("hello")
    (folder / "study.dcm.gz").write_bytes(b"\x1f\x8b\x08\x00")
    os.symlink(tmp_path, folder / "up")  # a link to a folder is not followed
    with Library(tmp_path / "lib.sqlite") as library:
        report = import_paths(library, [folder])
    assert report.instances == 1
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert reasons == {"loop": "link loop", "dangling.dcm": "broken link",
                       "pipe.dcm": "not a regular file", "notes.txt": "not an image",
                       "study.dcm.gz": "not an image", "up": "link to a folder"}
    assert "gunzip" in next(s.detail for s in report.skipped if s.path.endswith(".gz"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_an_unreadable_folder_is_listed(tmp_path):
    folder = tmp_path / "in"
    _image(folder / "ok.dcm", "perm-ok")
    (folder / "locked").mkdir()
    os.chmod(folder / "locked", 0)
    try:
        refs, skipped = [], []
        refs = list(iter_files([folder], on_skip=lambda *a: skipped.append(a)))
    finally:
        os.chmod(folder / "locked", 0o755)
    assert len(refs) == 1 and [s[1] for s in skipped] == ["unreadable folder"]


def test_a_dicomdir_with_pixel_data_is_imported(tmp_path):
    root = tmp_path / "disc"
    fs = FileSet()
    fs.add(pydicom.dcmread(_image(tmp_path / "a.dcm", "dd-a")))
    fs.write(root)
    ds = pydicom.dcmread(root / "DICOMDIR")
    image = pydicom.dcmread(tmp_path / "a.dcm")
    for keyword in ("SOPInstanceUID", "Rows", "Columns", "BitsAllocated", "BitsStored",
                    "HighBit", "PixelRepresentation", "SamplesPerPixel",
                    "PhotometricInterpretation", "PixelData", "StudyInstanceUID",
                    "SeriesInstanceUID", "PatientID", "Modality"):
        ds[image.data_element(keyword).tag] = image.data_element(keyword)
    ds.SOPInstanceUID = h.uid("dicomdir-image")
    ds.SOPClassUID = image.SOPClassUID
    ds.save_as(root / "DICOMDIR")
    refs = list(iter_files([root / "DICOMDIR"]))
    assert {Path(r.path).name for r in refs} >= {"DICOMDIR"}
    assert len(refs) == 2

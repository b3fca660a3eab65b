"""Finding image files: plain files, folders, zip members (``archive.zip!member``), DICOMDIRs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydicom.fileset import FileSet

import helpers_dicom as h
from medviewer.dicom.sources import FileRef, iter_files


def _names(refs):
    return [Path(r.member or r.path).name for r in refs]


# -- FileRef ---------------------------------------------------------------------------------

def test_for_path_is_absolute_with_size_and_mtime(tmp_path, monkeypatch):
    path = h.write_junk(tmp_path / "a" / "x.dcm", size=123)
    monkeypatch.chdir(tmp_path)
    ref = FileRef.for_path(Path("a") / "x.dcm")
    assert ref.path == str(path) and os.path.isabs(ref.path)
    assert ref.member == ""
    assert ref.size == 123
    assert ref.mtime == os.stat(path).st_mtime
    assert ref.display == str(path)
    with ref.open() as fh:
        assert fh.read() == path.read_bytes()


def test_suffix_is_lower_case_and_comes_from_the_member(tmp_path):
    src = h.write_junk(tmp_path / "IMG.PNG")
    archive = h.write_zip(tmp_path / "pack.zip", [(src, "dir/Scan.DCM")])
    assert FileRef.for_path(src).suffix == ".png"
    assert FileRef.for_zip_member(archive, "dir/Scan.DCM").suffix == ".dcm"


def test_zip_member_reference_reads_the_member(tmp_path, ct_series):
    src = ct_series.paths[0]
    archive = h.write_zip(tmp_path / "study.zip", [(src, "sub/slice.dcm")])
    ref = FileRef.for_zip_member(archive, "sub/slice.dcm")
    assert ref.display == f"{archive}!sub/slice.dcm"
    assert ref.size == src.stat().st_size  # uncompressed size, not the compressed one
    assert ref.mtime == os.stat(archive).st_mtime
    with ref.open() as fh:
        assert fh.read() == src.read_bytes()


def test_from_display_round_trips_files_and_zip_members(tmp_path, ct_series):
    archive = h.write_zip(tmp_path / "s.zip", [(ct_series.paths[0], "a/b.dcm")])
    member = FileRef.for_zip_member(archive, "a/b.dcm")
    plain = FileRef.for_path(ct_series.paths[1])
    assert FileRef.from_display(member.display) == member
    assert FileRef.from_display(plain.display) == plain


def test_from_display_plain_file_with_bang_in_its_name(tmp_path):
    path = h.write_junk(tmp_path / "wow!.dcm")
    assert FileRef.from_display(str(path)) == FileRef.for_path(path)


def test_from_display_zip_in_a_folder_whose_name_contains_a_bang(tmp_path, ct_series):
    # Users name folders "Case!1" too; the separator is the "!" after the archive name.
    archive = h.write_zip(tmp_path / "Case!1" / "s.zip", [(ct_series.paths[0], "m.dcm")])
    ref = FileRef.for_zip_member(archive, "m.dcm")
    assert FileRef.from_display(ref.display) == ref


# -- iter_files ------------------------------------------------------------------------------

def test_folders_are_walked_recursively_in_sorted_order(tmp_path):
    for rel in ["b/2.dcm", "a/z", "a/1.dcm", "c/d/e/IM0001", "top.dcm"]:
        h.write_junk(tmp_path / rel, size=16)
    refs = list(iter_files([tmp_path]))
    rels = [os.path.relpath(r.path, tmp_path) for r in refs]
    assert rels == ["top.dcm", "a/1.dcm", "a/z", "b/2.dcm", "c/d/e/IM0001"]
    assert all(r.size == 16 for r in refs)


def test_clutter_is_not_listed(tmp_path):
    keep = ["IM1", "scan.dcm", "x.png", "y.JPG"]
    drop = [".DS_Store", "Thumbs.db", "desktop.ini", "._scan.dcm", "notes.txt", "labels.csv",
            "meta.json", "report.pdf", "volume.nii", "README.md", "page.html"]
    for name in keep + drop:
        h.write_junk(tmp_path / name, size=8)
    assert sorted(_names(iter_files([tmp_path]))) == sorted(keep)


def test_each_file_is_listed_once(tmp_path, ct_series):
    refs = list(iter_files([ct_series.folder, ct_series.folder, ct_series.paths[0]]))
    assert len(refs) == len(ct_series.paths)
    assert len({r.display for r in refs}) == len(refs)


def test_missing_input_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        list(iter_files([tmp_path / "nowhere"]))


def test_zip_members_are_listed_without_directories_and_mac_clutter(tmp_path, ct_series):
    archive = h.write_zip(tmp_path / "in" / "study.zip", [
        (ct_series.paths[0], "series/one.dcm"),
        (ct_series.paths[1], "series/two"),
        (ct_series.paths[2], "__MACOSX/series/._one.dcm"),
        (ct_series.paths[3], "series/readme.txt"),
    ])
    import zipfile
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("series/empty/", b"")
    for source in (archive, archive.parent):  # the zip itself, and a folder holding it
        refs = list(iter_files([source]))
        assert [r.member for r in refs] == ["series/one.dcm", "series/two"]
        assert all(r.path == str(archive) for r in refs)
        assert refs[0].display == f"{archive}!series/one.dcm"


def test_a_file_named_zip_that_is_not_a_zip_is_listed_as_a_file(tmp_path):
    fake = h.write_junk(tmp_path / "fake.zip")
    refs = list(iter_files([tmp_path]))
    assert [(r.path, r.member) for r in refs] == [(str(fake), "")]


def _write_fileset(root: Path, series: h.SeriesFiles) -> Path:
    import pydicom

    fs = FileSet()
    for path in series.paths:
        fs.add(pydicom.dcmread(path))
    fs.write(root)
    return root / "DICOMDIR"


def test_dicomdir_yields_the_files_it_references(tmp_path, ct_series):
    dicomdir = _write_fileset(tmp_path / "media", ct_series)
    refs = list(iter_files([dicomdir]))
    assert len(refs) == len(ct_series.paths)
    assert all(Path(r.path).is_file() and Path(r.path).name != "DICOMDIR" for r in refs)
    import pydicom
    sops = {pydicom.dcmread(r.path, stop_before_pixels=True).SOPInstanceUID for r in refs}
    assert sops == set(ct_series.sop_uids)


def test_dicomdir_on_a_lower_case_file_system_copy(tmp_path, ct_series):
    """DICOMDIRs name files in upper case; copies to case-sensitive disks are often lower case."""
    root = tmp_path / "media"
    dicomdir = _write_fileset(root, ct_series)
    for folder, dirs, files in os.walk(root, topdown=False):
        for name in files + dirs:
            if name != "DICOMDIR":
                os.rename(os.path.join(folder, name), os.path.join(folder, name.lower()))
    refs = list(iter_files([dicomdir]))
    assert len(refs) == len(ct_series.paths)
    assert all(Path(r.path).exists() for r in refs)


def test_dicomdir_skips_references_to_missing_files(tmp_path, ct_series):
    root = tmp_path / "media"
    dicomdir = _write_fileset(root, ct_series)
    files = [Path(f, n) for f, _, ns in os.walk(root) for n in ns if n != "DICOMDIR"]
    files[0].unlink()
    assert len(list(iter_files([dicomdir]))) == len(ct_series.paths) - 1

"""Reasons that are true: duplicates are the same file or the same pixels, a file cut
before its pixels is "truncated", native pixel data must be what the header promises."""

from __future__ import annotations

import shutil

import helpers_dicom as h
import numpy as np

from medviewer.services.importer import import_paths
from medviewer.store import Library


def _pair(folder, same_pixels: bool):
    first = h.make_image(np.full((16, 16), 100, np.uint16), seed="dup", sop_uid=h.uid("dup"))
    a = h.write(first, folder / "a.dcm")
    pixels = np.full((16, 16), 100 if same_pixels else 900, np.uint16)
    second = h.make_image(pixels, seed="dup", sop_uid=h.uid("dup"))
    return a, h.write(second, folder / "b.dcm")


def test_sharing_an_instance_uid_is_not_being_the_same_file(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    a, b = _pair(folder, same_pixels=False)
    assert a.stat().st_size == b.stat().st_size
    with Library(tmp_path / "lib.sqlite") as library:
        report = import_paths(library, [folder])
    assert report.instances == 2 and not report.skipped


def test_a_byte_identical_copy_is_a_duplicate(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    a, _b = _pair(folder, same_pixels=True)
    shutil.copyfile(a, folder / "c.dcm")
    with Library(tmp_path / "lib.sqlite") as library:
        report = import_paths(library, [folder])
    assert [(s.path.rsplit("/", 1)[1], s.reason) for s in report.skipped] == [
        ("b.dcm", "duplicate"), ("c.dcm", "duplicate")]


def test_a_file_cut_before_its_pixel_data_is_truncated(tmp_path):
    src = h.write(h.make_image(np.zeros((16, 16), np.uint16), seed="cut"), tmp_path / "s.dcm")
    element_start = h.pixel_data_offset(src) - 12  # tag, VR, reserved, length
    cut = h.truncated_copy(src, tmp_path / "in" / "cut.dcm", element_start)
    with Library(tmp_path / "lib.sqlite") as library:
        report = import_paths(library, [cut])
    assert [s.reason for s in report.skipped] == ["truncated"]


def test_native_pixel_data_must_match_its_header(tmp_path):
    folder = tmp_path / "in"
    ds = h.make_image(np.zeros((16, 16), np.uint16), seed="bits")
    ds.BitsAllocated = 12  # not a size pixels can be stored in
    h.write(ds, folder / "bits.dcm")
    with Library(tmp_path / "lib.sqlite") as library:
        report = import_paths(library, [folder])
    assert [s.reason for s in report.skipped] == ["unreadable"]
    assert "Bits Allocated" in report.skipped[0].detail

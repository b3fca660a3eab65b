"""Header-only scan: what a file is, where it belongs, and a true reason when it can't be imported."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGLSLossless, RLELossless

import helpers_dicom as h
from medviewer.dicom.scan import raster_uid, scan
from medviewer.dicom.sources import FileRef
from medviewer.errors import (
    ImageReadError,
    NoPixelDataError,
    NotDicomError,
    TruncatedFileError,
    UnsupportedTransferSyntaxError,
)


def ref(path) -> FileRef:
    return FileRef.for_path(path)


# -- what a good file says -------------------------------------------------------------------

def test_ct_header_fields(ct_series):
    path = ct_series.paths[3]
    header = scan(ref(path))
    ds = pydicom.dcmread(path)
    assert header.kind == "dicom"
    assert header.ref == ref(path)
    assert header.sop_instance_uid == ds.SOPInstanceUID == ct_series.sop_uids[3]
    assert header.sop_class_uid == ds.SOPClassUID
    assert header.transfer_syntax == ExplicitVRLittleEndian
    assert (header.patient_id, header.patient_name) == ("PAT-CT", "Doe^Jane")
    assert header.patient_birth_date == "19700101" and header.patient_sex == "F"
    assert header.study_uid == ct_series.study_uid
    assert header.series_uid == ct_series.series_uid
    assert (header.study_date, header.study_time) == ("20240102", "101500")
    assert header.accession_number == "ACC1"
    assert header.modality == "CT" and header.series_number == 1
    assert header.series_description == "CT axial"
    assert header.instance_number == 4  # numbered 1..n in spatial order
    assert (header.rows, header.columns, header.frames, header.samples_per_pixel) == (16, 16, 1, 1)
    assert header.photometric == "MONOCHROME2" and header.bits_allocated == 16
    assert header.pixel_spacing == (0.7, 0.7)
    assert header.slice_thickness == 2.5
    assert header.image_position == pytest.approx((0.0, 0.0, ct_series.positions[3]))
    assert header.image_orientation == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def test_multiframe_rgb_and_monochrome1_headers(tmp_path):
    mf, data = h.write_multiframe(tmp_path / "mf.dcm", frames=7)
    rgb, _ = h.write_rgb(tmp_path / "rgb.dcm")
    mono1, _ = h.write_monochrome1(tmp_path / "cr.dcm")
    assert scan(ref(mf)).frames == 7
    header = scan(ref(rgb))
    assert header.samples_per_pixel == 3 and header.photometric == "RGB"
    header = scan(ref(mono1))
    assert header.photometric == "MONOCHROME1" and header.modality == "CR"
    # Radiographs often carry only (0018,1164) Imager Pixel Spacing.
    assert header.pixel_spacing == (0.2, 0.2)


def test_implicit_vr_and_compressed_files_scan(tmp_path, ct_series):
    ds = pydicom.dcmread(ct_series.paths[0])
    implicit = h.write(ds, tmp_path / "implicit.dcm", ImplicitVRLittleEndian)
    assert scan(ref(implicit)).transfer_syntax == ImplicitVRLittleEndian
    for syntax in (RLELossless, JPEGLSLossless):
        out = h.write_compressed(ct_series.paths[0], tmp_path / f"{syntax.name}.dcm", syntax)
        if out is None:
            continue
        header = scan(ref(out))
        assert header.transfer_syntax == syntax
        assert header.sop_instance_uid == ct_series.sop_uids[0]


def test_dataset_without_preamble_is_accepted(tmp_path, ct_series):
    """Old files are a bare dataset: no 128-byte preamble, no "DICM", no file meta."""
    from pydicom.filebase import DicomFileLike
    from pydicom.filewriter import write_dataset

    ds = pydicom.dcmread(ct_series.paths[0])
    del ds.file_meta
    path = tmp_path / "bare"
    with open(path, "wb") as fh:
        fp = DicomFileLike(fh)
        fp.is_little_endian, fp.is_implicit_VR = True, True
        write_dataset(fp, ds)
    assert path.read_bytes()[128:132] != b"DICM"
    header = scan(ref(path))
    assert (header.rows, header.modality) == (16, "CT")
    assert header.transfer_syntax == ImplicitVRLittleEndian


def test_missing_uids_get_stable_substitutes(tmp_path):
    ds = h.make_image(np.zeros((4, 4), np.uint16))
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
        delattr(ds, keyword)
    path = h.write(ds, tmp_path / "nouid.dcm")
    first, second = scan(ref(path)), scan(ref(path))
    assert first.study_uid and first.series_uid and first.study_uid != first.series_uid
    assert (first.study_uid, first.series_uid) == (second.study_uid, second.series_uid)


def test_scan_reads_only_the_header(tmp_path, monkeypatch):
    """A 256x256x16-bit image is 128 KiB of pixels; the scan must not read them."""
    ds = h.make_image(np.arange(256 * 256, dtype=np.uint16).reshape(256, 256))
    path = h.write(ds, tmp_path / "big.dcm")
    read = []

    class Counting(io.FileIO):
        def read(self, size=-1):
            data = super().read(size)
            read.append(len(data))
            return data

        def readinto(self, buffer):
            count = super().readinto(buffer)
            read.append(count or 0)
            return count

    monkeypatch.setattr(FileRef, "open", lambda self: io.BufferedReader(Counting(self.path)))
    header = scan(ref(path))
    assert header.rows == 256
    # The header, plus the content hash's head and four 1 KiB pixel samples (each a buffered
    # 8 KiB read): far from the 128 KiB of pixels, and the same for a file of any size.
    assert sum(read) < 64 * 1024, f"scan read {sum(read)} bytes of a {path.stat().st_size}-byte file"


def test_scan_does_not_decode_compressed_pixels(tmp_path, ct_series):
    """Header-only: an RLE file whose pixel bytes are garbage still scans (decode finds it)."""
    out = h.write_compressed(ct_series.paths[0], tmp_path / "rle.dcm", RLELossless)
    ds = pydicom.dcmread(out)
    from pydicom.encaps import encapsulate

    ds.PixelData = encapsulate([b"\x07" + b"\x00" * 60])
    ds.save_as(out)
    assert scan(ref(out)).transfer_syntax == RLELossless


def test_zip_member_scans_like_the_file(tmp_path, ct_series):
    archive = h.write_zip(tmp_path / "s.zip", [(ct_series.paths[0], "x/one.dcm")])
    member = FileRef.for_zip_member(archive, "x/one.dcm")
    header = scan(member)
    assert header.ref == member
    assert header.sop_instance_uid == ct_series.sop_uids[0]


# -- rasters ---------------------------------------------------------------------------------

def test_png_and_jpeg_radiographs(tmp_path):
    png = h.write_png(tmp_path / "a.png", size=40)
    jpg = tmp_path / "b.jpg"
    from PIL import Image

    Image.fromarray(np.full((30, 20, 3), 128, np.uint8)).save(jpg)
    header = scan(ref(png))
    assert header.kind == "raster" and header.modality == "DX"
    assert (header.rows, header.columns, header.samples_per_pixel) == (40, 40, 1)
    assert header.photometric == "MONOCHROME2"
    assert header.sop_instance_uid == raster_uid(str(png))
    assert header.sop_instance_uid.startswith("2.25.") and len(header.sop_instance_uid) <= 64
    other = scan(ref(jpg))
    assert (other.rows, other.columns, other.samples_per_pixel) == (30, 20, 3)
    assert len({header.sop_instance_uid, header.series_uid, header.study_uid,
                other.sop_instance_uid, other.series_uid, other.study_uid}) == 6


def test_damaged_and_fake_rasters(tmp_path):
    good = h.write_png(tmp_path / "good.png", size=64)
    cut = h.truncated_copy(good, tmp_path / "cut.png", 0.5)
    fake = h.write_junk(tmp_path / "fake.png")
    with pytest.raises(TruncatedFileError):
        scan(ref(cut))
    with pytest.raises(NotDicomError):
        scan(ref(fake))


# -- reasons for files that can't be imported ------------------------------------------------

@pytest.mark.parametrize("maker", [
    lambda p: h.write_junk(p),
    lambda p: h.write_html_as_dcm(p),
    lambda p: (p.write_bytes(b""), p)[1],
    lambda p: (p.write_text("just some text\n" * 50), p)[1],
], ids=["random bytes", "html saved as dcm", "empty", "text"])
def test_not_dicom(tmp_path, maker):
    path = maker(tmp_path / "x.dcm")
    with pytest.raises(NotDicomError) as info:
        scan(ref(path))
    assert info.value.reason == "not DICOM"
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


def test_truncated_inside_pixel_data(tmp_path, ct_series):
    start = h.pixel_data_offset(ct_series.paths[0])
    cut = h.truncated_copy(ct_series.paths[0], tmp_path / "cut.dcm", start + 100)
    with pytest.raises(TruncatedFileError) as info:
        scan(ref(cut))
    assert info.value.reason == "truncated"
    assert info.value.hint


def test_truncated_pydicom_samples(tmp_path):
    with pytest.raises(TruncatedFileError):
        scan(ref(h.pydicom_sample("MR_truncated.dcm")))
    # An encapsulated (compressed) file cut inside its fragments.
    src = h.pydicom_sample("MR_small_RLE.dcm")
    cut = h.truncated_copy(src, tmp_path / "rle_cut.dcm", src.stat().st_size - 200)
    with pytest.raises(TruncatedFileError):
        scan(ref(cut))


def test_truncated_zip_member_is_truncated(tmp_path, ct_series):
    cut = h.truncated_copy(ct_series.paths[0], tmp_path / "cut.dcm",
                           h.pixel_data_offset(ct_series.paths[0]) + 50)
    archive = h.write_zip(tmp_path / "a.zip", [(cut, "cut.dcm")])
    with pytest.raises(TruncatedFileError):
        scan(FileRef.for_zip_member(archive, "cut.dcm"))


def test_truncated_inside_the_file_meta(tmp_path):
    """Cut inside (0002,0001): pydicom raises struct.error; the scan must still say 'truncated'."""
    cut = h.truncated_copy(h.pydicom_sample("CT_small.dcm"), tmp_path / "cut.dcm", 154)
    with pytest.raises(TruncatedFileError):
        scan(ref(cut))


def test_truncated_inside_a_header_value_is_not_no_pixel_data(tmp_path):
    """A cut in the middle of a header element must not be reported as 'no pixel data'.

    pydicom returns the elements it could read without warning; the last one is short
    (its declared length runs past the end of the file), which the scan can check.
    """
    src = h.pydicom_sample("CT_small.dcm")
    raw = pydicom.dcmread(src, defer_size=1)
    element = raw.get_item(0x00431029, keep_deferred=True)  # a long private value mid-header
    cut = h.truncated_copy(src, tmp_path / "cut.dcm", element.value_tell + element.length // 2)
    with pytest.raises(TruncatedFileError):
        scan(ref(cut))


def test_any_cut_gives_an_image_error_never_a_crash(tmp_path):
    """Whatever the cut, the scan raises one of our errors (a crash would be 'unreadable')."""
    failures = []
    for name in ("CT_small.dcm", "JPEG2000.dcm"):
        src = h.pydicom_sample(name)
        size = src.stat().st_size
        offsets = sorted(set(range(0, 1300, 11)) | set(range(0, size, max(1, size // 40))))
        for offset in offsets:
            cut = h.truncated_copy(src, tmp_path / "cut.dcm", offset)
            try:
                scan(ref(cut))
            except ImageReadError:
                continue
            except Exception as exc:  # noqa: BLE001 - that is what this test looks for
                failures.append((name, offset, f"{type(exc).__name__}: {str(exc)[:80]}"))
    assert not failures, f"raw exceptions: {failures}"


def test_no_pixel_data_objects(tmp_path):
    for name in ("rtplan.dcm", "rtstruct.dcm", "test-SR.dcm", "waveform_ecg.dcm"):
        with pytest.raises(NoPixelDataError) as info:
            scan(ref(h.pydicom_sample(name)))
        assert info.value.reason == "no pixel data"


def test_dicomdir_is_no_pixel_data_with_an_explanation(tmp_path, ct_series):
    from pydicom.fileset import FileSet

    fs = FileSet()
    fs.add(pydicom.dcmread(ct_series.paths[0]))
    fs.write(tmp_path / "media")
    with pytest.raises(NoPixelDataError, match="DICOMDIR"):
        scan(ref(tmp_path / "media" / "DICOMDIR"))


def test_image_without_rows_is_an_image_error_with_the_path(tmp_path):
    ds = h.make_image(np.zeros((4, 4), np.uint16))
    del ds.Rows
    path = h.write(ds, tmp_path / "norows.dcm")
    with pytest.raises(ImageReadError, match="Rows") as info:
        scan(ref(path))
    assert info.value.path == str(path)


def test_unknown_transfer_syntax_is_unsupported(tmp_path, ct_series):
    ds = pydicom.dcmread(ct_series.paths[0])
    from pydicom.encaps import encapsulate

    ds.file_meta.TransferSyntaxUID = "1.2.3.4.5.6.7"  # a private compression nobody decodes
    ds.PixelData = encapsulate([b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "private.dcm", implicit_vr=False, little_endian=True)
    with pytest.raises(UnsupportedTransferSyntaxError) as info:
        scan(ref(tmp_path / "private.dcm"))
    assert info.value.reason == "unsupported transfer syntax"
    assert "1.2.3.4.5.6.7" in info.value.message
    assert info.value.hint


def test_missing_decoder_names_the_package_to_install(tmp_path, ct_series, monkeypatch):
    out = h.write_compressed(ct_series.paths[0], tmp_path / "ls.dcm", JPEGLSLossless)
    if out is None:
        pytest.skip("no JPEG-LS encoder installed")

    class Unavailable:
        is_available = False
        missing_dependencies = ["pyjpegls (pip install pyjpegls)"]

    import pydicom.pixels

    monkeypatch.setattr(pydicom.pixels, "get_decoder", lambda ts: Unavailable())
    with pytest.raises(UnsupportedTransferSyntaxError) as info:
        scan(ref(out))
    assert "pyjpegls" in info.value.hint


def test_deflated_dataset_is_a_readable_image():
    """(0002,0010) Deflated Explicit VR Little Endian compresses the whole dataset.

    pydicom reads it; positions in the inflated stream exceed the file size, which
    must not be mistaken for truncation.
    """
    header = scan(ref(h.pydicom_sample("image_dfl.dcm")))
    assert (header.rows, header.columns) == (512, 512)


def test_uncompressed_ybr_full_422_is_not_truncated():
    """Uncompressed YBR_FULL_422 shares Cb and Cr between pixel pairs: 2/3 of RGB's length."""
    header = scan(ref(h.pydicom_sample("SC_ybr_full_422_uncompressed.dcm")))
    assert (header.rows, header.columns, header.samples_per_pixel) == (100, 100, 3)


def test_errors_say_how_to_fix(tmp_path, ct_series):
    cut = h.truncated_copy(ct_series.paths[0], tmp_path / "cut.dcm", 0.9)
    with pytest.raises(TruncatedFileError) as info:
        scan(ref(cut))
    text = str(info.value)
    assert text.startswith(str(cut)) and info.value.hint in text


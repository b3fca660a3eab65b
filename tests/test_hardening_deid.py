"""De-identification leaves no identifying text in pixel data, unknown patient attributes
or the audit file (PS3.15 E.1.1)."""

from __future__ import annotations

import json
from pathlib import Path

import helpers_dicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.uid import CTImageStorage, JPEG2000Lossless, JPEGBaseline8Bit, JPEGLSLossless

from medviewer.deid import DeidOptions
from medviewer.deid.export import deidentify_files

SECRET = b"JOHN DOE MRN 4455667"


def _with_comment(path, syntax: str):
    """Compress ``path`` and put a comment segment naming the patient in each frame."""
    if pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax:
        out = path
    else:
        out = hd.write_compressed(path, path.with_name(f"c-{syntax}.dcm"), syntax)
    if out is None:
        pytest.skip(f"no encoder for {syntax}")
    ds = pydicom.dcmread(out)
    from pydicom.encaps import encapsulate, generate_frames

    frames = list(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1))))
    if syntax == JPEG2000Lossless:
        # COM in the main header, right after SIZ: FF64, Lcom, Rcom = 1 (Latin text).
        siz_len = int.from_bytes(frames[0][4:6], "big")
        at = 4 + siz_len
        com = b"\xff\x64" + (len(SECRET) + 4).to_bytes(2, "big") + b"\x00\x01" + SECRET
        frames = [f[:at] + com + f[at:] for f in frames]
    else:
        com = b"\xff\xfe" + (len(SECRET) + 2).to_bytes(2, "big") + SECRET
        app1 = b"\xff\xe1" + (len(SECRET) + 8).to_bytes(2, "big") + b"Exif\x00\x00" + SECRET
        frames = [f[:2] + com + app1 + f[2:] + SECRET for f in frames]
    ds.PixelData = encapsulate(frames)
    ds.save_as(out, enforce_file_format=True)
    assert SECRET in out.read_bytes()
    return out


@pytest.mark.parametrize("syntax", [JPEGBaseline8Bit, JPEGLSLossless, JPEG2000Lossless])
def test_text_segments_in_compressed_pixel_data_are_removed(tmp_path, syntax):
    if syntax == JPEGBaseline8Bit:  # no baseline encoder is installed: a shipped sample
        src = hd.copy_pydicom_sample("SC_rgb_jpeg_dcmtk.dcm", tmp_path)
    else:
        rows = hd.phantom(32, 32, seed=5, low=0, high=4000).astype(np.uint16)
        src = hd.write(hd.make_image(rows, seed="jpeg-com", modality="CT", sop_class=CTImageStorage), tmp_path / "src.dcm")
    leaky = _with_comment(src, syntax)
    before = pydicom.dcmread(leaky).pixel_array
    report = deidentify_files([leaky], tmp_path / "out", burned_in="export")
    assert len(report.written) == 1, report.skipped
    out = report.written[0].output
    assert SECRET not in Path(out).read_bytes()
    after = pydicom.dcmread(out).pixel_array
    np.testing.assert_array_equal(after, before)  # the image itself is untouched
    audit = json.loads((tmp_path / "out" / "deid_audit.json").read_text())
    assert SECRET.decode() not in json.dumps(audit)


def test_unknown_patient_group_attribute_is_removed(tmp_path):
    ds = hd.make_image(np.zeros((8, 8), np.uint16), seed="unknown-0010")
    ds.add_new(0x00109999, "LO", SECRET.decode())
    src = hd.write(ds, tmp_path / "src.dcm")
    report = deidentify_files([src], tmp_path / "out")
    out = pydicom.dcmread(report.written[0].output)
    assert 0x00109999 not in out
    assert SECRET not in Path(report.written[0].output).read_bytes()


def test_the_audit_holds_no_private_creator_strings(tmp_path):
    ds = hd.make_image(np.zeros((8, 8), np.uint16), seed="creator")
    block = ds.private_block(0x0011, "DR SMITH RESEARCH 4455667", create=True)
    block.add_new(0x01, "LO", "anything")
    src = hd.write(ds, tmp_path / "src.dcm")
    report = deidentify_files([src], tmp_path / "out")
    assert report.written
    text = (tmp_path / "out" / "deid_audit.json").read_text()
    assert "SMITH" not in text and "4455667" not in text


def test_safe_private_attributes_are_audited_by_their_listed_creator(tmp_path):
    options = DeidOptions(retain_safe_private=True)
    ds = hd.make_image(np.zeros((8, 8), np.uint16), seed="safe-private")
    from medviewer.deid.private import SAFE_PRIVATE

    creator = "GEMS_ACQU_01"
    assert 0x23 in SAFE_PRIVATE[creator][0x0019]
    ds.private_block(0x0019, creator, create=True).add_new(0x23, "DS", "1")
    src = hd.write(ds, tmp_path / "src.dcm")
    deidentify_files([src], tmp_path / "out", options)
    audit = json.loads((tmp_path / "out" / "deid_audit.json").read_text())
    assert creator in json.dumps(audit)  # a name from our own list, not the file's value

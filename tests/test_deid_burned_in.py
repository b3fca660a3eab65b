"""Burned-in text: flagging, blackout (also of compressed pixels), the export policy, the CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    RLELossless,
    SecondaryCaptureImageStorage,
    UltrasoundImageStorage,
    generate_uid,
)

from medviewer.deid import (
    DeidOptions,
    Region,
    RegionError,
    assess_burned_in,
    blackout,
    deidentify_files,
)


def _image(path, *, modality="US", sop_class=UltrasoundImageStorage, photometric="MONOCHROME2",
           burned_in="YES", seed=0, bits=8):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(50, 200, size=(24, 32)).astype(np.uint8 if bits == 8 else np.uint16)
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[str(path)])
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["series", modality])
    ds.PatientName, ds.PatientID = "DOE^JANE", "MRN0001"
    ds.Modality = modality
    ds.BurnedInAnnotation = burned_in
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit, ds.PixelRepresentation = bits - 1, 0
    ds.PixelData = pixels.tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return pixels


@pytest.mark.parametrize("changes, reason", [
    ({"BurnedInAnnotation": "YES", "Modality": "CT"}, "Burned In Annotation is YES"),
    ({"Modality": "US"}, "modality US"),
    ({"SOPClassUID": SecondaryCaptureImageStorage}, "Secondary Capture"),
    ({"ImageType": ["DERIVED", "SECONDARY", "SCREEN SAVE"]}, "SCREEN SAVE"),
    ({"SeriesDescription": "Dose Report"}, "dose"),
    ({"ConversionType": "WSD"}, "screen capture"),
])
def test_flags_images_known_for_burned_in_text(changes, reason):
    ds = Dataset()
    ds.Modality, ds.SOPClassUID, ds.BurnedInAnnotation = "CT", CTImageStorage, "NO"
    for key, value in changes.items():
        setattr(ds, key, value)
    result = assess_burned_in(ds)
    assert result.flagged and any(reason in r for r in result.reasons)


def test_a_plain_ct_slice_is_not_flagged():
    ds = Dataset()
    ds.Modality, ds.SOPClassUID, ds.BurnedInAnnotation = "CT", CTImageStorage, "NO"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert not assess_burned_in(ds).flagged


@pytest.mark.parametrize("compressed", [False, True])
def test_blackout_darkens_only_the_region(tmp_path, compressed):
    original = _image(tmp_path / "us.dcm")
    ds = pydicom.dcmread(tmp_path / "us.dcm")
    if compressed:
        ds.compress(RLELossless)
        assert ds.file_meta.TransferSyntaxUID == RLELossless
    changed = blackout(ds, [Region(2, 3, 10, 4)])
    assert changed == 40
    ds.save_as(tmp_path / "out.dcm", enforce_file_format=True)
    back = pydicom.dcmread(tmp_path / "out.dcm")
    assert back.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    pixels = back.pixel_array
    assert (pixels[3:7, 2:12] == 0).all()
    mask = np.ones_like(pixels, dtype=bool)
    mask[3:7, 2:12] = False
    assert np.array_equal(pixels[mask], original[mask])


def test_blackout_uses_the_maximum_for_monochrome1(tmp_path):
    _image(tmp_path / "cr.dcm", modality="CR", photometric="MONOCHROME1", bits=16)
    ds = pydicom.dcmread(tmp_path / "cr.dcm")
    blackout(ds, [Region(0, 0, 4, 4)])
    assert (ds.pixel_array[:4, :4] == 65535).all()


def test_regions_outside_the_image_are_refused(tmp_path):
    _image(tmp_path / "us.dcm")
    ds = pydicom.dcmread(tmp_path / "us.dcm")
    with pytest.raises(RegionError, match="outside"):
        blackout(ds, [Region(30, 0, 5, 5)])
    with pytest.raises(RegionError, match="empty"):
        blackout(ds, [Region(0, 0, 0, 5)])


def test_export_skips_flagged_images_unless_given_regions_or_allowed(tmp_path):
    (tmp_path / "in").mkdir()
    _image(tmp_path / "in" / "a.dcm")
    _image(tmp_path / "in" / "b.dcm", seed=1)
    skipped = deidentify_files([tmp_path / "in"], tmp_path / "x", DeidOptions())
    assert not skipped.written and {s.reason for s in skipped.skipped} == {"BurnedInTextError"}
    a = str(tmp_path / "in" / "a.dcm")
    fixed = deidentify_files([tmp_path / "in"], tmp_path / "y", DeidOptions(),
                             regions={a: [Region(0, 0, 32, 5)]})
    assert [w.source for w in fixed.written] == [a]
    ds = pydicom.dcmread(fixed.written[0].output)
    codes = [c.CodeValue for c in ds.DeidentificationMethodCodeSequence]
    assert codes[:2] == ["113100", "113101"]  # Clean Pixel Data recorded
    assert (ds.pixel_array[:5] == 0).all()
    allowed = deidentify_files([tmp_path / "in"], tmp_path / "z", DeidOptions(),
                               burned_in="export")
    assert len(allowed.written) == 2 and len(allowed.flagged) == 2
    audit = json.loads((tmp_path / "z" / "deid_audit.json").read_text())
    assert all(f["burned_in"]["flagged"] for f in audit["files"])


def _cli(argv):
    from medviewer.cli import deid_cmd

    parser = argparse.ArgumentParser(prog="medviewer")
    deid_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_deid_with_blackout_by_uid_and_json(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    _image(tmp_path / "in" / "a.dcm")
    uid = pydicom.dcmread(tmp_path / "in" / "a.dcm").SOPInstanceUID
    key = tmp_path / "key.hex"
    code = _cli(["deid", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--dates",
                 "shift", "--blackout", f"{uid}:0,0,8,8", "--secret-file", str(key), "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["written"]) == 1 and data["written"][0]["regions"] == 1
    first = data["written"][0]["sop_uid"]
    assert key.exists() and (key.stat().st_mode & 0o077) == 0
    # The same key gives the same UIDs in a later export.
    _cli(["deid", str(tmp_path / "in"), "--out", str(tmp_path / "again"), "--blackout",
          f"{uid}:0,0,8,8", "--secret-file", str(key), "--json"])
    assert json.loads(capsys.readouterr().out)["written"][0]["sop_uid"] == first

"""Header values read straight from the raw elements equal those read through ``Dataset.get``."""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from medviewer.dicom import scan as scan_module
from medviewer.dicom.header_values import HeaderValues
from medviewer.dicom.scan import scan
from medviewer.dicom.sources import FileRef
from medviewer.errors import ImageReadError

PYDICOM_FILES = sorted((Path(pydicom.__file__).parent / "data" / "test_files").rglob("*.dcm"))


class _ThroughDatasetGet:
    """The reference: every value read with ``Dataset.get``, as the scan did before."""

    def __init__(self, ds):
        self.ds = ds

    def get(self, keyword, default=None):
        return self.ds.get(keyword, default)


def _outcome(path: Path):
    ref = FileRef(str(path), size=path.stat().st_size, mtime=0.0)
    try:
        return scan(ref)
    except ImageReadError as exc:
        return (type(exc).__name__, exc.message)


def _compare(paths, monkeypatch):
    compared = 0
    for path in paths:
        fast = _outcome(path)
        with monkeypatch.context() as m:
            m.setattr(scan_module, "HeaderValues", _ThroughDatasetGet)
            reference = _outcome(path)
        assert fast == reference, path
        compared += not isinstance(fast, tuple)
    return compared


def test_headers_of_every_pydicom_sample_equal_the_dataset_get_reference(monkeypatch):
    assert len(PYDICOM_FILES) > 40
    assert _compare(PYDICOM_FILES, monkeypatch) > 30  # most of them are images


def test_headers_of_the_shared_samples_equal_the_dataset_get_reference(shared_dicom_samples, monkeypatch):
    paths = sorted(p for p in shared_dicom_samples.rglob("*") if p.is_file() and p.suffix.lower() != ".md")
    assert _compare(paths, monkeypatch) > 100


def _write(path: Path, transfer_syntax, **values) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 16, 16, 15, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # odd values on purpose
        for keyword, value in values.items():
            setattr(ds, keyword, value)
        ds.save_as(path, enforce_file_format=True)
    return path


ODD_VALUES = [
    {"PatientID": "A\\B"},  # several values where one is expected: pydicom's MultiValue, as before
    {"PatientName": "Yamada^Tarou=山田^太郎", "SpecificCharacterSet": ["", "ISO 2022 IR 87"]},
    {"PatientName": "Müller^Jörg", "SpecificCharacterSet": "ISO_IR 192"},
    {"PatientName": "Müller^Jörg", "SpecificCharacterSet": "ISO_IR 100"},
    {"PatientName": "Ελληνικά", "SpecificCharacterSet": "ISO_IR 126"},
    {"InstanceNumber": "5.0", "SeriesNumber": " 7 "},
    {"SliceThickness": "1e1", "PixelSpacing": ["0.5", "0.25"], "ImagePositionPatient": [1, 2, 3]},
    {"PixelSpacing": [0.5], "ImagerPixelSpacing": [0.1, 0.1]},  # a one-value spacing is unusable
    {"PixelSpacing": "", "ImagerPixelSpacing": [0.1, 0.2], "NumberOfFrames": ""},
    {"ImageOrientationPatient": [1, 0, 0, 0, 1, 0], "StudyDate": "20240101", "StudyTime": "101010.5"},
    {"Modality": "CT ", "BodyPartExamined": "CHEST", "AccessionNumber": ""},
]


@pytest.mark.parametrize("transfer_syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian])
@pytest.mark.parametrize("values", ODD_VALUES, ids=[str(i) for i in range(len(ODD_VALUES))])
def test_odd_values_are_read_as_dataset_get_reads_them(tmp_path, monkeypatch, transfer_syntax, values):
    path = _write(tmp_path / "odd.dcm", transfer_syntax, **values)
    assert _compare([path], monkeypatch) == 1


def test_each_value_is_decoded_once_and_missing_ones_take_the_default(tmp_path):
    path = _write(tmp_path / "x.dcm", ExplicitVRLittleEndian, SeriesNumber=3, PixelSpacing=[0.5, 0.5])
    values = HeaderValues(pydicom.dcmread(path))
    assert values.get("SeriesNumber") == 3 and values.get("PixelSpacing") == (0.5, 0.5)
    assert values.get("Rows") == 4 and values.get("SOPInstanceUID") == "1.2.3.4.5"
    assert values.get("BodyPartExamined", "") == "" and values.get("SliceThickness") is None
    assert values.get("SeriesNumber") is values.get("SeriesNumber")

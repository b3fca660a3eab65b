"""A tiny synthetic library for de-identified export tests: a CT study with a dose screen."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.uid import SecondaryCaptureImageStorage, generate_uid

from medviewer.services.importer import import_paths
from medviewer.store import Library
from medviewer.synthetic import generate_dataset


@dataclass(frozen=True)
class DeidLibrary:
    """The library file, the imported folder and the ids the tests export."""

    path: Path
    inputs: Path
    ct_series: int
    dose_series: int
    ct_study: int
    originals: dict  # original SOP Instance UID -> (PatientName, PatientID)


def make_deid_library(root: Path) -> DeidLibrary:
    """Import 3 radiographs and a 4-slice CT study, plus a dose screen (burned-in) in that study."""
    generate_dataset(root / "in", cases=3, seed=20240611, size=64, ct_series=1, ct_size=32,
                     ct_slices=4, png=False)
    inputs = root / "in" / "dicom"
    ct_file = min(inputs.rglob("IM*.dcm"))
    # A console dose screen in the CT study: a secondary capture, which the exporter flags.
    ds = pydicom.dcmread(ct_file)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(
        entropy_srcs=["dose screen"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["dose series"])
    ds.SeriesNumber, ds.Modality = 99, "SC"
    dose = ct_file.parent.parent / "SE99" / "dose.dcm"
    dose.parent.mkdir()
    ds.save_as(dose, enforce_file_format=True)

    path = root / "library" / "cases.sqlite"
    with Library(path) as library:
        import_paths(library, [inputs])
        by_modality = {s.modality: s for s in library.series()}
        ct, sc = by_modality["CT"], by_modality["SC"]
        assert ct.study_ref == sc.study_ref and ct.instances == 4
    originals = {}
    for file in inputs.rglob("*.dcm"):
        original = pydicom.dcmread(file, stop_before_pixels=True)
        originals[str(original.SOPInstanceUID)] = (str(original.PatientName),
                                                   str(original.PatientID))
    return DeidLibrary(path, inputs, ct.id, sc.id, ct.study_ref, originals)

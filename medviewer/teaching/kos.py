"""Key Object Selection documents titled "For Teaching".

References
----------
DICOM PS3.3 A.35.4 Key Object Selection Document IOD (SOP Class
1.2.840.10008.5.1.4.1.1.88.59) and C.17.6 Key Object Document Module; PS3.16
TID 2010 "Key Object Selection", CID 7010 "Key Object Selection Document Title"
(113004, DCM, "For Teaching"), (113012, DCM, "Key Object Description").

A KOS document belongs to one patient and study, so a teaching export writes
one per exported study, in that study, referencing its exported images (all
de-identified; the KOS copies their pseudonymous patient and study attributes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

from medviewer import __version__

KOS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"
FOR_TEACHING = ("113004", "DCM", "For Teaching")
KEY_OBJECT_DESCRIPTION = ("113012", "DCM", "Key Object Description")
# Copied from a referenced (de-identified) instance into the KOS: patient and study level.
_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientIdentityRemoved",
           "DeidentificationMethod", "DeidentificationMethodCodeSequence", "StudyInstanceUID",
           "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
           "LongitudinalTemporalInformationModified")


@dataclass(frozen=True)
class ImageReference:
    """An image a KOS selects.

    Attributes
    ----------
    sop_class, sop_uid, series_uid, study_uid : str
    frames : tuple of int
        1-based frame numbers for a multi-frame image; empty for all / single frame.
    """

    sop_class: str
    sop_uid: str
    series_uid: str
    study_uid: str
    frames: tuple[int, ...] = ()


def _code(value: tuple[str, str, str]) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value
    return item


def build_kos(source: Dataset, references: Sequence[ImageReference], *, sop_uid: str,
              series_uid: str, description: str = "", when: datetime | None = None,
              series_number: int = 999, instance_number: int = 1) -> Dataset:
    """Build a "For Teaching" Key Object Selection document.

    Parameters
    ----------
    source : Dataset
        A referenced, de-identified instance: its patient and study attributes are
        copied, so the KOS joins the same (pseudonymous) patient and study.
    references : sequence of ImageReference
        The selected images, all of ``source``'s study.
    sop_uid, series_uid : str
        UIDs of the new document and its series.
    description : str
        Optional text, written as a (113012, DCM, "Key Object Description") item.
    when : datetime, optional
        Content date and time (the time the selection was made); now by default.

    Returns
    -------
    Dataset
        With File Meta Information, ready for ``save_as(..., enforce_file_format=True)``.
    """
    if not references:
        raise ValueError("a key object selection needs at least one image")
    study_uid = str(source.StudyInstanceUID)
    if any(r.study_uid != study_uid for r in references):
        raise ValueError("a key object selection references images of its own study only")
    when = when or datetime.now()
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = KOS_SOP_CLASS
    ds.SOPInstanceUID = sop_uid
    for keyword in _COPIED:
        if keyword in source:
            ds[keyword] = source[keyword]
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
                    "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber"):
        if keyword not in ds:  # Type 2: present, possibly empty
            setattr(ds, keyword, "")
    ds.Modality = "KO"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = "For Teaching"
    ds.ReferencedPerformedProcedureStepSequence = DicomSequence([])
    ds.Manufacturer = "MedViewer"
    ds.SoftwareVersions = __version__
    ds.InstanceNumber = instance_number
    ds.ContentDate = when.strftime("%Y%m%d")
    ds.ContentTime = when.strftime("%H%M%S")
    ds.CurrentRequestedProcedureEvidenceSequence = DicomSequence([_evidence(references)])
    # SR Document Content: the root container titled "For Teaching" (TID 2010).
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = DicomSequence([_code(FOR_TEACHING)])
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = "2010"
    ds.ContentTemplateSequence = DicomSequence([template])
    content = []
    if description:
        text = Dataset()
        text.RelationshipType = "CONTAINS"
        text.ValueType = "TEXT"
        text.ConceptNameCodeSequence = DicomSequence([_code(KEY_OBJECT_DESCRIPTION)])
        text.TextValue = description[:10240]
        content.append(text)
    for ref in references:
        item = Dataset()
        item.RelationshipType = "CONTAINS"
        item.ValueType = "IMAGE"
        sop = Dataset()
        sop.ReferencedSOPClassUID = ref.sop_class
        sop.ReferencedSOPInstanceUID = ref.sop_uid
        if ref.frames:
            sop.ReferencedFrameNumber = list(ref.frames) if len(ref.frames) > 1 else ref.frames[0]
        item.ReferencedSOPSequence = DicomSequence([sop])
        content.append(item)
    ds.ContentSequence = DicomSequence(content)
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = KOS_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"MEDVIEWER_{__version__.replace('.', '')}"[:16]
    ds.file_meta = meta
    return ds


def _evidence(references: Sequence[ImageReference]) -> Dataset:
    """Return one Hierarchical SOP Instance Reference item (study > series > instances)."""
    study = Dataset()
    study.StudyInstanceUID = references[0].study_uid
    series_items = []
    for series_uid in dict.fromkeys(r.series_uid for r in references):
        series = Dataset()
        series.SeriesInstanceUID = series_uid
        sops = []
        for ref in (r for r in references if r.series_uid == series_uid):
            sop = Dataset()
            sop.ReferencedSOPClassUID = ref.sop_class
            sop.ReferencedSOPInstanceUID = ref.sop_uid
            sops.append(sop)
        series.ReferencedSOPSequence = DicomSequence(sops)
        series_items.append(series)
    study.ReferencedSeriesSequence = DicomSequence(series_items)
    return study


def kos_references(ds: Dataset) -> list[str]:
    """Return the SOP Instance UIDs a KOS selects (its IMAGE content items), in order."""
    out = []
    for item in ds.get("ContentSequence", []):
        if item.get("ValueType") in ("IMAGE", "COMPOSITE"):
            out.extend(str(s.ReferencedSOPInstanceUID) for s in item.ReferencedSOPSequence)
    return out

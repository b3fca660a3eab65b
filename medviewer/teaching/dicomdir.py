"""Write exported files as a DICOM File-set with a DICOMDIR, so any viewer opens them.

References
----------
DICOM PS3.10 (media storage, File-set) and PS3.3 F.5 (directory records: PATIENT,
STUDY, SERIES, IMAGE, KEY OBJECT DOC).  pydicom's :class:`~pydicom.fileset.FileSet`
writes the File-set; the records are made here because de-identified studies have
empty Study Date, Time and ID, which the STUDY record needs (Type 1): the record
gets a dummy there, the instance keeps its empty values.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset

from medviewer.teaching.kos import KOS_SOP_CLASS


def _record(kind: str, **values) -> Dataset:
    record = Dataset()
    record.DirectoryRecordType = kind
    for keyword, value in values.items():
        setattr(record, keyword, value)
    return record


def write_fileset(files: Sequence[str | Path], out_dir: str | Path) -> dict[str, Path]:
    """Copy ``files`` into a File-set under ``out_dir`` with a DICOMDIR.

    Returns
    -------
    dict
        SOP Instance UID -> path of the file in the File-set (``PT000000/ST000000/...``).
    """
    from pydicom.fileset import FileSet, RecordNode

    fileset = FileSet()
    fileset.ID = "TEACHING"
    for path in files:
        ds = dcmread(path, stop_before_pixels=True)
        kos = str(ds.SOPClassUID) == KOS_SOP_CLASS
        leaf_values = {
            "InstanceNumber": ds.get("InstanceNumber", 1) or 1,
            "ReferencedSOPClassUIDInFile": ds.SOPClassUID,
            "ReferencedSOPInstanceUIDInFile": ds.SOPInstanceUID,
            "ReferencedTransferSyntaxUIDInFile": ds.file_meta.TransferSyntaxUID}
        if kos:
            leaf_values.update(ContentDate=ds.ContentDate, ContentTime=ds.ContentTime,
                               ConceptNameCodeSequence=ds.ConceptNameCodeSequence)
        leaf = RecordNode(_record("KEY OBJECT DOC" if kos else "IMAGE", **leaf_values))
        series = RecordNode(_record("SERIES", Modality=ds.get("Modality", "OT") or "OT",
                                    SeriesInstanceUID=ds.SeriesInstanceUID,
                                    SeriesNumber=ds.get("SeriesNumber", 1) or 1))
        study = RecordNode(_record(
            "STUDY", StudyInstanceUID=ds.StudyInstanceUID,
            StudyDate=ds.get("StudyDate", "") or "19000101",
            StudyTime=ds.get("StudyTime", "") or "000000",
            StudyID=ds.get("StudyID", "") or "1",
            AccessionNumber=ds.get("AccessionNumber", "") or "", StudyDescription=""))
        patient = RecordNode(_record("PATIENT", PatientID=ds.PatientID,
                                     PatientName=ds.get("PatientName", "")))
        series.add(leaf)
        study.add(series)
        patient.add(study)
        fileset.add_custom(str(path), leaf)
    fileset.write(str(out_dir))
    return {str(inst.SOPInstanceUID): Path(inst.path) for inst in fileset}

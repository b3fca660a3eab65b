"""Key images out as DICOM Key Object Selection documents (one per study, via highdicom).

The document (PS3.3 A.35.4, TID 2010) titled "Of Interest" references each key
image; a PACS shows them as the study's key images.  A key frame of a multi-frame
image references the whole image (frame references are not written yet).
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from pathlib import Path

from medviewer.measurements.sr import MANUFACTURER, MeasurementReportError, _evidence, _header
from medviewer.measurements.store import list_key_images
from medviewer.store.library import Library


def export_key_objects(library: Library, out_folder: str | Path) -> list[Path]:
    """Write one Key Object Selection document per study with key images; return the files."""
    import highdicom as hd  # imported when used: highdicom is large
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    keys = list_key_images(library)
    if not keys:
        raise MeasurementReportError("no key images to export", path=library.path,
                                     hint="show an image and press K to mark it")
    by_study: dict[str, list] = defaultdict(list)
    for _ref, frame, location, _series in keys:
        ds = _header(location)
        if "SOPClassUID" not in ds:
            raise MeasurementReportError("the key image is not DICOM", path=location,
                                         hint="Key Object Selection references DICOM images")
        by_study[str(ds.get("StudyInstanceUID", ""))].append((_evidence(ds), frame))
    folder = Path(out_folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for items in by_study.values():
        # One reference per image, however many of its frames are key frames.
        evidence = list({ds.SOPInstanceUID: ds for ds, _f in items}.values())
        content = hd.ko.KeyObjectSelection(
            document_title=codes.DCM.OfInterest, referenced_objects=evidence,
            description="Key images marked in MedViewer")
        uid = generate_uid()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            document = hd.ko.KeyObjectSelectionDocument(
                evidence=evidence, content=content, series_instance_uid=generate_uid(),
                series_number=991, sop_instance_uid=uid, instance_number=1,
                manufacturer=MANUFACTURER)
        path = folder / f"{uid}.dcm"
        document.save_as(path)
        written.append(path)
    return written

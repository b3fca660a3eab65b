"""Measurements to and from DICOM SR: TID 1500 Measurement Report, with highdicom.

Each measurement becomes a TID 1410 planar ROI group: its region as an SCOORD on
the measured image (POLYLINE for lengths, angles, Cobb lines and polygons,
ELLIPSE, a closed POLYLINE for rectangles), a tracking identifier carrying its
UID and label, and its values as numeric measurements with UCUM units (SCT
Length, Area, Mean, Standard Deviation, Minimum, Maximum; DCM angle).  That is
the structure OHIF's measurement export writes and reads, so a report goes both
ways.  Import reads any TID 1500 report's planar ROI groups that point at
images the library holds; what it cannot draw is counted and said.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medviewer.errors import MedViewerError
from medviewer.measurements.model import Measurement, measure
from medviewer.measurements.store import (add_measurement, instance_ref_for_sop,
                                          list_measurements, measurement_exists)
from medviewer.store.library import Library

MANUFACTURER = "MedViewer"


class MeasurementReportError(MedViewerError):
    """An SR that is not a measurement report, or one that cannot be written."""


@dataclass
class ImportSummary:
    """What an SR import brought in, and what it left out and why."""

    imported: int = 0
    updated: int = 0
    skipped: list[str] = field(default_factory=list)


def _hd():
    import highdicom as hd  # imported when used: SR work is rare and highdicom is large

    return hd


def _header(location: str):
    from medviewer.dicom.pixels import read_header
    from medviewer.dicom.sources import FileRef

    return read_header(FileRef.from_display(location))


# Type 2 attributes of the Patient and General Study modules an SR copies from its evidence;
# images in the wild often leave them out, so they are added empty (as the standard allows).
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
          "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber")


def _evidence(ds):
    out = ds.copy()
    for keyword in _TYPE2:
        if keyword not in out:
            setattr(out, keyword, "")
    return out


def _values_for(measurement: Measurement, location: str):
    from medviewer.dicom.pixels import decode
    from medviewer.dicom.sources import FileRef

    image = decode(FileRef.from_display(location))
    values = None if image.is_color else image.frames[measurement.frame]
    return measure(measurement, values, image.pixel_spacing, image.units)


def _region(measurement: Measurement, source):
    hd = _hd()
    pts = np.asarray(measurement.points, dtype=float)
    kind = measurement.kind
    if kind == "ellipse":
        graphic, data = hd.sr.GraphicTypeValues.ELLIPSE, pts
    elif kind == "rectangle":
        (x0, y0), (x1, y1) = pts[0], pts[1]
        data = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]])
        graphic = hd.sr.GraphicTypeValues.POLYLINE
    elif kind in ("polygon", "freehand"):
        data = np.vstack([pts, pts[:1]])  # closed: the last point repeats the first
        graphic = hd.sr.GraphicTypeValues.POLYLINE
    else:  # length, angle, cobb: open polylines
        graphic, data = hd.sr.GraphicTypeValues.POLYLINE, pts
    return hd.sr.ImageRegion(graphic_type=graphic, graphic_data=data, source_image=source)


def _numeric(values):
    from pydicom.sr.codedict import codes

    hd = _hd()
    unit = (codes.UCUM.Millimeter if values.length_unit == "mm"
            else hd.sr.CodedConcept("{pixels}", "UCUM", "pixels"))
    area_unit = (codes.UCUM.SquareMillimeter if values.length_unit == "mm"
                 else hd.sr.CodedConcept("{pixels^2}", "UCUM", "square pixels"))
    value_unit = (codes.UCUM.HounsfieldUnit if values.value_unit == "HU"
                  else hd.sr.CodedConcept("1", "UCUM", "no units"))
    out = []

    def add(name, value, unit_code):
        if value is not None:
            out.append(hd.sr.Measurement(name=name, value=float(value), unit=unit_code))

    add(codes.SCT.Length, values.length, unit)
    if values.angle is not None:
        out.append(hd.sr.Measurement(name=hd.sr.CodedConcept("1483009", "SCT", "Angle"),
                                     value=float(values.angle),
                                     unit=hd.sr.CodedConcept("deg", "UCUM", "degree")))
    add(codes.SCT.Area, values.area, area_unit)
    add(codes.SCT.Mean, values.mean, value_unit)
    add(codes.SCT.StandardDeviation, values.sd, value_unit)
    add(codes.SCT.Minimum, values.minimum, value_unit)
    add(codes.SCT.Maximum, values.maximum, value_unit)
    return out


def export_report(library: Library, out_folder: str | Path,
                  series_ref: int | None = None) -> list[Path]:
    """Write one TID 1500 Comprehensive 3D SR per study with measurements; return the files.

    Parameters
    ----------
    library : Library
    out_folder : path
        Folder for the SR files (created); files are named by the SR's SOP Instance UID.
    series_ref : int, optional
        Only the measurements of this series.
    """
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    hd = _hd()
    rows = list_measurements(library)
    if series_ref is not None:
        keep = {i.location for i in library.instances(series_ref)}
        rows = [r for r in rows if r[1] in keep]
    if not rows:
        raise MeasurementReportError("no measurements to export", path=library.path,
                                     hint="draw a measurement first")
    by_study: dict[str, list] = defaultdict(list)
    headers = {}
    for measurement, location, _series in rows:
        if location not in headers:
            headers[location] = _header(location)
        by_study[str(headers[location].get("StudyInstanceUID", ""))].append((measurement, location))
    folder = Path(out_folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for items in by_study.values():
        groups = []
        evidence = {}
        for measurement, location in items:
            ds = headers[location]
            if "SOPClassUID" not in ds:
                raise MeasurementReportError("the measured image is not DICOM", path=location,
                                             hint="SR measurement reports reference DICOM images")
            evidence[ds.SOPInstanceUID] = _evidence(ds)
            source = hd.sr.SourceImageForRegion(
                referenced_sop_class_uid=ds.SOPClassUID,
                referenced_sop_instance_uid=ds.SOPInstanceUID,
                referenced_frame_numbers=[measurement.frame + 1]
                if int(ds.get("NumberOfFrames", 1) or 1) > 1 else None)
            tracking = hd.sr.TrackingIdentifier(uid=measurement.uid,
                                                identifier=measurement.label or measurement.kind)
            groups.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=tracking, referenced_region=_region(measurement, source),
                finding_type=hd.sr.CodedConcept("MV-" + measurement.kind, "99MEDVIEWER",
                                                measurement.kind),
                measurements=_numeric(_values_for(measurement, location)) or None))
        observer = hd.sr.ObserverContext(
            observer_type=codes.DCM.Device,
            observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
                uid=generate_uid(), name=MANUFACTURER))
        report = hd.sr.MeasurementReport(
            observation_context=hd.sr.ObservationContext(observer_device_context=observer),
            procedure_reported=hd.sr.CodedConcept("363679005", "SCT", "Imaging procedure"),
            imaging_measurements=groups)
        uid = generate_uid()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sr = hd.sr.Comprehensive3DSR(
                evidence=list(evidence.values()), content=report, series_instance_uid=generate_uid(),
                series_number=990, sop_instance_uid=uid, instance_number=1,
                manufacturer=MANUFACTURER, series_description="MedViewer measurements",
                is_complete=True, is_final=False)
        path = folder / f"{uid}.dcm"
        sr.save_as(path)
        written.append(path)
    return written


_FINDING_KINDS = {"length", "angle", "cobb", "rectangle", "ellipse", "polygon", "freehand"}


def _kind_and_points(group) -> tuple[str, list] | None:
    hd = _hd()
    region = group.roi
    if region is None:
        return None
    graphic = region.graphic_type
    data = np.asarray(region.value, dtype=float).reshape(-1, 2)
    finding = getattr(group, "finding_type", None)
    declared = None
    if finding is not None and str(finding.scheme_designator) == "99MEDVIEWER":
        declared = str(finding.meaning)
    if graphic == hd.sr.GraphicTypeValues.ELLIPSE and len(data) == 4:
        return "ellipse", data.tolist()
    if graphic == hd.sr.GraphicTypeValues.CIRCLE and len(data) == 2:
        centre, edge = data
        r = float(np.linalg.norm(edge - centre))
        return "ellipse", [(centre[0] - r, centre[1]), (centre[0] + r, centre[1]),
                           (centre[0], centre[1] - r), (centre[0], centre[1] + r)]
    if graphic == hd.sr.GraphicTypeValues.POLYLINE:
        closed = len(data) > 3 and np.allclose(data[0], data[-1])
        if closed:
            pts = data[:-1]
            if declared == "rectangle" and len(pts) == 4:
                return "rectangle", [tuple(pts[0]), tuple(pts[2])]
            return (declared if declared in ("polygon", "freehand") else "polygon"), pts.tolist()
        if len(data) == 2:
            return "length", data.tolist()
        if len(data) == 3:
            return "angle", data.tolist()
        if len(data) == 4 and declared in (None, "cobb"):
            return "cobb", data.tolist()
        return "polygon", data.tolist()
    return None


def _source_of(region) -> tuple[str, list[int]]:
    """Return the SOP Instance UID and frame numbers an SCOORD region is drawn on."""
    for item in region.get("ContentSequence", []):
        refs = item.get("ReferencedSOPSequence")
        if refs:
            ref = refs[0]
            frames = ref.get("ReferencedFrameNumber")
            if frames is None:
                frames = []
            elif not isinstance(frames, (list, tuple)) and not hasattr(frames, "__len__"):
                frames = [frames]
            return str(ref.get("ReferencedSOPInstanceUID", "")), [int(f) for f in frames]
    return "", []


def import_report(library: Library, path: str | Path) -> ImportSummary:
    """Read a TID 1500 measurement report's planar ROIs into the library.

    Raises
    ------
    MeasurementReportError
        The file is not an SR measurement report.
    """
    hd = _hd()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sr = hd.sr.srread(str(path))
    except Exception as exc:  # noqa: BLE001 - highdicom/pydicom raise many types on other files
        raise MeasurementReportError(f"not a readable DICOM SR ({exc})", path=str(path),
                                     hint="choose a measurement report (TID 1500) SR") from exc
    try:
        groups = sr.content.get_planar_roi_measurement_groups()
    except (AttributeError, ValueError, TypeError) as exc:
        raise MeasurementReportError("the SR is not a TID 1500 measurement report",
                                     path=str(path)) from exc
    summary = ImportSummary()
    source = f"sr:{sr.SOPInstanceUID}"
    for group in groups:
        region = group.roi
        if region is None:
            summary.skipped.append("a region given as a segmentation, not drawn here")
            continue
        sop, frames = _source_of(region)
        if not sop:
            summary.skipped.append("a region without its source image")
            continue
        instance_ref = instance_ref_for_sop(library, sop)
        if instance_ref is None:
            summary.skipped.append(f"image {sop} is not in this library")
            continue
        found = _kind_and_points(group)
        if found is None:
            summary.skipped.append(f"a {region.graphic_type.value} region cannot be drawn")
            continue
        kind, points = found
        frame = int(frames[0]) - 1 if frames else 0
        tracking_uid = str(group.tracking_uid) if getattr(group, "tracking_uid", None) else ""
        label = str(group.tracking_identifier or "") if getattr(group, "tracking_identifier",
                                                                None) else ""
        if label == kind:
            label = ""
        existed = bool(tracking_uid) and measurement_exists(library, tracking_uid)
        try:
            measurement = Measurement(kind=kind, points=[tuple(p) for p in points], sop_uid=sop,
                                      frame=frame, label=label, uid=tracking_uid, source=source)
        except ValueError as exc:
            summary.skipped.append(str(exc))
            continue
        add_measurement(library, instance_ref, measurement)
        if existed:
            summary.updated += 1
        else:
            summary.imported += 1
    return summary

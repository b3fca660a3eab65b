"""Measurements: geometry and statistics, display transforms, library store, DICOM SR."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import helpers_dicom as h
from medviewer.measurements.model import Measurement, measure, region_mask
from medviewer.measurements.store import (add_measurement, delete_measurement,
                                          list_measurements, measurements_for_series)
from medviewer.measurements.transform import to_display, to_stored
from medviewer.services.importer import import_paths
from medviewer.store import Library


def test_lengths_and_angles_use_the_pixel_spacing():
    m = Measurement("length", [(0, 0), (30, 40)])
    assert measure(m, None, (0.5, 0.5)).length == pytest.approx(25.0)
    assert measure(m, None, (1.0, 2.0)).length == pytest.approx(math.hypot(60, 40))
    assert measure(m, None, None).length_unit == "px"
    right = Measurement("angle", [(10, 0), (0, 0), (0, 10)])
    assert measure(right, None, (1, 1)).angle == pytest.approx(90.0)
    # Anisotropic pixels change angles: 45 degrees in pixels is not 45 in mm.
    diag = Measurement("angle", [(10, 0), (0, 0), (10, 10)])
    assert measure(diag, None, (2.0, 1.0)).angle == pytest.approx(math.degrees(math.atan(2)))
    # Cobb: the angle between two lines, whichever way each was drawn, at most 90.
    cobb = Measurement("cobb", [(0, 0), (10, 0), (10, 10), (0, 0)])
    assert measure(cobb, None, (1, 1)).angle == pytest.approx(45.0)
    steep = Measurement("cobb", [(0, 0), (10, 0), (0, 0), (-10, 1)])
    assert measure(steep, None, (1, 1)).angle == pytest.approx(math.degrees(math.atan(0.1)))


def test_region_statistics_are_in_modality_units():
    values = np.full((20, 20), -1000.0)
    values[5:15, 5:15] = 40.0
    values[9, 9] = 100.0
    rect = Measurement("rectangle", [(5, 5), (15, 15)])
    stats = measure(rect, values, (0.5, 0.5), "HU")
    assert stats.pixels == 100 and stats.maximum == 100.0 and stats.minimum == 40.0
    assert stats.mean == pytest.approx(40.6) and stats.area == pytest.approx(25.0)
    assert "HU" in stats.text()
    ellipse = Measurement("ellipse", [(5, 10), (15, 10), (10, 5), (10, 15)])
    mask = region_mask(ellipse, values.shape)
    assert mask.sum() == pytest.approx(math.pi * 25, rel=0.1) and mask[10, 10] and not mask[5, 5]
    assert measure(ellipse, values, (1, 1)).area == pytest.approx(math.pi * 25)
    triangle = Measurement("polygon", [(0, 0), (20, 0), (0, 20)])
    assert measure(triangle, values, (1, 1)).area == pytest.approx(200.0)
    assert region_mask(triangle, values.shape).sum() == pytest.approx(200, rel=0.12)


def test_bad_measurements_are_refused_in_words():
    with pytest.raises(ValueError, match="needs 2 points"):
        Measurement("length", [(0, 0)])
    with pytest.raises(ValueError, match="unknown measurement kind"):
        Measurement("volume", [(0, 0), (1, 1)])
    with pytest.raises(ValueError, match="finite"):
        Measurement("length", [(0, 0), (float("nan"), 1)])


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
@pytest.mark.parametrize("flips", [(False, False), (True, False), (False, True), (True, True)])
def test_display_transform_matches_the_viewport_and_inverts(rotation, flips):
    frame = np.arange(6 * 4).reshape(6, 4)  # 6 rows, 4 columns
    shown = np.rot90(frame, k=-(rotation // 90))
    if flips[0]:
        shown = shown[:, ::-1]
    if flips[1]:
        shown = shown[::-1]
    for row in range(6):
        for col in range(4):
            (x, y), = to_display([(col + 0.5, row + 0.5)], frame.shape, rotation, *flips)
            assert shown[int(y), int(x)] == frame[row, col]
            back, = to_stored([(x, y)], frame.shape, rotation, *flips)
            assert back == pytest.approx((col + 0.5, row + 0.5))


@pytest.fixture
def ct_library(tmp_path, ct_series):
    path = tmp_path / "lib.sqlite"
    with Library(path) as lib:
        import_paths(lib, [ct_series.folder])
    return path


def test_store_keeps_measurements_per_image(ct_library):
    with Library(ct_library) as lib:
        series = lib.series()[0]
        first, second = lib.instances(series.id)[:2]
        a = Measurement("length", [(1, 1), (5, 5)], frame=0, label="nodule")
        add_measurement(lib, first.id, a)
        add_measurement(lib, second.id, Measurement("rectangle", [(1, 1), (8, 8)]))
        found = measurements_for_series(lib, series.id)
        assert [(m.kind, m.instance_ref, m.label) for m in found] == [
            ("length", first.id, "nodule"), ("rectangle", second.id, "")]
        assert found[0].sop_uid == first.sop_uid and found[0].uid == a.uid
        a.label = "RUL nodule"
        add_measurement(lib, first.id, a)  # the same UID updates, never duplicates
        assert len(list_measurements(lib)) == 2
        assert delete_measurement(lib, a.id) and not delete_measurement(lib, a.id)
        assert [m.kind for m in measurements_for_series(lib, series.id)] == ["rectangle"]
    with Library(ct_library) as lib:  # reopened: still there
        assert len(list_measurements(lib)) == 1


def test_sr_export_reads_back_with_highdicom_and_imports_again(ct_library, ct_series, tmp_path):
    hd = pytest.importorskip("highdicom")
    from medviewer.measurements.sr import export_report, import_report

    with Library(ct_library) as lib:
        series = lib.series()[0]
        inst = lib.instances(series.id)[0]
        drawn = [Measurement("length", [(2, 2), (10, 8)], label="a"),
                 Measurement("ellipse", [(4, 8), (12, 8), (8, 5), (8, 11)], label="b"),
                 Measurement("rectangle", [(1, 1), (9, 6)]),
                 Measurement("angle", [(2, 2), (8, 8), (14, 2)]),
                 Measurement("polygon", [(1, 1), (10, 1), (5, 9)])]
        for m in drawn:
            add_measurement(lib, inst.id, m)
        files = export_report(lib, tmp_path / "sr")
    assert len(files) == 1
    sr = hd.sr.srread(files[0])
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    groups = sr.content.get_planar_roi_measurement_groups()
    assert len(groups) == 5
    by_uid = {str(g.tracking_uid): g for g in groups}
    length = by_uid[drawn[0].uid]
    refs = length.roi.ContentSequence[0].ReferencedSOPSequence[0]
    assert refs.ReferencedSOPInstanceUID == inst.sop_uid
    names = {m.name.meaning: m.value for m in length.get_measurements()}
    spacing = inst.pixel_spacing
    expected = math.hypot(8 * spacing[1], 6 * spacing[0])
    assert names["Length"] == pytest.approx(expected, rel=1e-6)
    region = {m.name.meaning for m in by_uid[drawn[1].uid].get_measurements()}
    assert {"Area", "Mean", "Standard Deviation", "Minimum", "Maximum"} <= region

    # Into a fresh library holding the same images: every measurement comes back, the same.
    other = tmp_path / "other.sqlite"
    with Library(other) as lib:
        import_paths(lib, [ct_series.folder])
        summary = import_report(lib, files[0])
        assert (summary.imported, summary.skipped) == (5, [])
        back = {m.uid: m for m, _loc, _s in list_measurements(lib)}
        for m in drawn:
            got = back[m.uid]
            assert got.kind == m.kind and got.label == m.label
            assert np.allclose(got.points, m.points)
        again = import_report(lib, files[0])  # importing twice updates, never duplicates
        assert (again.imported, again.updated) == (0, 5)


def test_import_of_an_sr_written_by_highdicom_elsewhere(ct_library, tmp_path):
    hd = pytest.importorskip("highdicom")
    from pydicom import dcmread
    from pydicom.sr.codedict import codes

    from medviewer.measurements.sr import import_report

    with Library(ct_library) as lib:
        inst = lib.instances(lib.series()[0].id)[3]
    image = dcmread(inst.path, stop_before_pixels=True)
    source = hd.sr.SourceImageForRegion(referenced_sop_class_uid=image.SOPClassUID,
                                        referenced_sop_instance_uid=image.SOPInstanceUID)
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="Lesion 1"),
        referenced_region=hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
            graphic_data=np.array([[3.0, 3.0], [12.0, 3.0], [12.0, 9.0], [3.0, 3.0]]),
            source_image=source),
        measurements=[hd.sr.Measurement(name=codes.SCT.Area, value=27.0,
                                        unit=codes.UCUM.SquareMillimeter)])
    length = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="Long axis"),
        referenced_region=hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
            graphic_data=np.array([[2.0, 2.0], [14.0, 10.0]]), source_image=source))
    other_image = copy.deepcopy(image)
    other_image.SOPInstanceUID = hd.UID()  # an image of the study this library does not hold
    elsewhere = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="Other image"),
        referenced_region=hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
            graphic_data=np.array([[2.0, 2.0], [4.0, 4.0]]),
            source_image=hd.sr.SourceImageForRegion(
                referenced_sop_class_uid=image.SOPClassUID,
                referenced_sop_instance_uid=other_image.SOPInstanceUID)))
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name="Reader^A"))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=observer),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=[group, length, elsewhere])
    sr = hd.sr.Comprehensive3DSR(evidence=[image, other_image], content=report,
                                 series_instance_uid=hd.UID(), series_number=5,
                                 sop_instance_uid=hd.UID(), instance_number=1,
                                 manufacturer="Elsewhere", is_complete=True)
    path = tmp_path / "elsewhere.dcm"
    sr.save_as(path)
    with Library(ct_library) as lib:
        summary = import_report(lib, path)
        assert summary.imported == 2
        assert len(summary.skipped) == 1 and "not in this library" in summary.skipped[0]
        found = sorted(((m.kind, m.label) for m, _l, _s in list_measurements(lib)))
        assert found == [("length", "Long axis"), ("polygon", "Lesion 1")]


def test_import_refuses_a_file_that_is_not_a_report(ct_library, tmp_path):
    from medviewer.measurements.sr import MeasurementReportError, import_report

    path = h.write(h.make_image(np.zeros((4, 4), np.uint16)), tmp_path / "ct.dcm")
    with Library(ct_library) as lib, pytest.raises(MeasurementReportError, match="SR"):
        import_report(lib, path)


def test_cli_lists_exports_imports_and_deletes(ct_library, tmp_path, capsys):
    import json

    from medviewer.cli.main import main

    with Library(ct_library) as lib:
        inst = lib.instances(lib.series()[0].id)[0]
        add_measurement(lib, inst.id, Measurement("rectangle", [(2, 2), (10, 10)], label="roi"))
    assert main(["measurements", "list", "--library", str(ct_library), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["kind"] == "rectangle" and "HU" in listed[0]["values"]
    assert main(["measurements", "export", "--library", str(ct_library),
                 "--out", str(tmp_path / "sr")]) == 0
    written = capsys.readouterr().out.split()[-1]
    assert main(["measurements", "delete", "--library", str(ct_library),
                 str(listed[0]["id"])]) == 0
    capsys.readouterr()
    assert main(["measurements", "import", "--library", str(ct_library), written]) == 0
    assert "1 imported" in capsys.readouterr().out
    assert main(["measurements", "import", "--library", str(ct_library),
                 str(inst.path)]) == 1  # a CT image is not a report: said, not a traceback
    assert "not a" in capsys.readouterr().out

"""A DICOM SEG written by highdicom, drawn in colour on its referenced series."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

pytest.importorskip("PySide6")
hd = pytest.importorskip("highdicom")

from test_gui_viewer import open_first_series, write_ct_series  # noqa: E402
from test_gui_viewport_reading import make_window  # noqa: E402

pytestmark = pytest.mark.gui


def write_seg(folder, out):
    from pydicom.sr.codedict import codes

    sources = sorted((pydicom.dcmread(p) for p in folder.glob("*.dcm")),
                     key=lambda d: d.InstanceNumber)
    for ds in sources:
        ds.FrameOfReferenceUID = ds.get("FrameOfReferenceUID") or "1.2.826.0.1.3680043.10.1"
        for keyword in ("PatientBirthDate", "PatientSex", "StudyTime", "ReferringPhysicianName",
                        "StudyID", "AccessionNumber"):
            setattr(ds, keyword, ds.get(keyword, ""))
    mask = np.stack([ds.pixel_array > 1024 for ds in sources])  # the disc (above 0 HU)
    description = hd.seg.SegmentDescription(
        segment_number=1, segment_label="disc", segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Tissue,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=mask,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description], series_instance_uid=hd.UID(), series_number=100,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="Elsewhere",
        manufacturer_model_name="test", software_versions="1", device_serial_number="1")
    seg.save_as(out)
    return {ds.SOPInstanceUID: m for ds, m in zip(sources, mask, strict=True)}


def test_seg_is_drawn_on_its_series_where_the_mask_is(qtbot, tmp_path, monkeypatch):
    from medviewer.qt.seg_actions import open_segmentation

    folder = write_ct_series(tmp_path / "ct")
    truth = write_seg(folder, tmp_path / "seg.dcm")
    win = make_window(qtbot, tmp_path, monkeypatch, folder)
    viewport = open_first_series(qtbot, win)
    runner = open_segmentation(win, str(tmp_path / "seg.dcm"))
    with qtbot.waitSignal(runner.sig_finished, timeout=20000):
        pass
    assert viewport.seg_item.isVisible()
    assert "Segmentation shown: disc" in win.statusBar().currentMessage()
    shown = viewport.seg_item.image
    expected = truth[viewport.state.current.instance.sop_uid]
    assert np.array_equal(shown[..., 3] > 0, expected)  # coloured exactly where the mask is
    with qtbot.waitSignal(viewport.sig_plane_shown, timeout=5000):
        viewport.state.set_index(0)
    assert np.array_equal(viewport.seg_item.image[..., 3] > 0,
                          truth[viewport.state.current.instance.sop_uid])


def test_a_file_that_is_not_a_seg_is_said(qtbot, tmp_path, monkeypatch):
    from medviewer.qt.seg_actions import open_segmentation

    folder = write_ct_series(tmp_path / "ct")
    win = make_window(qtbot, tmp_path, monkeypatch, folder)
    open_first_series(qtbot, win)
    runner = open_segmentation(win, str(next(folder.glob("*.dcm"))))
    with qtbot.waitSignal(runner.sig_errored, timeout=20000):
        pass
    assert "not a readable DICOM SEG" in win.statusBar().currentMessage()

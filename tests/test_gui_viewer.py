"""The viewer on a real library: opening, scrolling, windowing, transforms, measurements.

These tests build a real library from small seeded DICOM files and drive the
real widgets offscreen; pixels on screen are compared with ``render_frame``,
the function behind ``medviewer render``.
"""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

pytest.importorskip("PySide6")

from medviewer.display.render import render_frame  # noqa: E402
from medviewer.display.windowing import PRESETS  # noqa: E402
from medviewer.services.importer import import_paths  # noqa: E402
from medviewer.store import Library  # noqa: E402

pytestmark = pytest.mark.gui


def write_ct_series(folder, slices=12, size=64, seed=3, spacing=2.5):
    """Write a small CT series with a bright disc whose size grows with the slice."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    study, series = generate_uid(), generate_uid()
    yy, xx = np.mgrid[:size, :size]
    for i in rng.permutation(slices):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"x{i:03d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientName, ds.PatientID, ds.Modality = "TEST^GUI", "GUI001", "CT"
        ds.StudyDate, ds.SeriesDescription, ds.SeriesNumber = "20240101", "Test CT", 1
        ds.InstanceNumber = int(i) + 1
        ds.ImagePositionPatient = [0.0, 0.0, float(i) * spacing]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.5, 0.5]
        ds.SliceThickness = spacing
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.WindowCenter, ds.WindowWidth = 40, 400
        radius = 6 + i
        disc = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < radius**2
        hu = np.where(disc, 60, -1000) + rng.normal(0, 5, (size, size))
        ds.PixelData = np.clip(hu + 1024, 0, 4095).astype(np.uint16).tobytes()
        ds.save_as(folder / f"x{i:03d}.dcm", enforce_file_format=True)
    return folder


@pytest.fixture
def library(tmp_path):
    data = write_ct_series(tmp_path / "ct")
    path = tmp_path / "lib.sqlite"
    with Library(path) as lib:
        import_paths(lib, [data])
    return str(path)


@pytest.fixture
def window(qtbot, library, tmp_path, monkeypatch):
    from medviewer.qt.app import create_window

    # Fresh settings per test: a toggle saved by one test must not leak into the next.
    monkeypatch.setenv("MEDVIEWER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path / "data"))
    win = create_window(library)
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    return win


def open_first_series(qtbot, win):
    viewport = win.viewports[0]
    series_id = win.library_panel.series_order()[0]
    with qtbot.waitSignal(viewport.sig_plane_shown, timeout=10000):
        win.open_series(series_id)
    return viewport


def screen_grey(viewport) -> np.ndarray:
    """Return the grey levels pyqtgraph rendered for the current image."""
    from PySide6.QtGui import QImage

    item = viewport.image_item
    item.render()
    # pyqtgraph may hand Qt an indexed or grey image; converting applies the LUT.
    qimage = item.qimage.convertToFormat(QImage.Format_Grayscale8)
    arr = np.frombuffer(qimage.constBits(), np.uint8).reshape(qimage.height(),
                                                              qimage.bytesPerLine())
    return arr[:, : qimage.width()].astype(int)


def test_library_lists_patient_and_series(window):
    tree = window.library_panel.tree
    assert tree.topLevelItemCount() == 1
    assert "GUI001" in tree.topLevelItem(0).text(0)
    assert len(window.library_panel.series_order()) == 1


def test_series_opens_in_spatial_order_and_scrolls(qtbot, window):
    viewport = open_first_series(qtbot, window)
    planes = viewport.state.planes
    assert len(planes) == 12
    # Files were written shuffled; the stack must run along the slice normal.
    numbers = [p.instance.instance_number for p in planes]
    assert numbers == sorted(numbers)
    with qtbot.waitSignal(viewport.sig_plane_shown, timeout=10000) as blocker:
        viewport.state.set_index(0)
    assert blocker.args == [0]
    area_first = int((viewport.frame_values() > 0).sum())
    with qtbot.waitSignal(viewport.sig_plane_shown, timeout=10000):
        viewport.state.set_index(11)
    assert int((viewport.frame_values() > 0).sum()) > area_first  # the disc grows with the slice
    assert "Im 12/12" in viewport.corner_text("bl")


def test_screen_matches_render_command(qtbot, window):
    viewport = open_first_series(qtbot, window)
    plane = viewport.state.current
    image = window.cache.peek(plane.instance.location)
    expected = render_frame(image, plane.frame, window=viewport.state.window)
    assert np.abs(screen_grey(viewport) - expected.astype(int)).max() <= 1
    viewport.state.set_window(PRESETS["lung"])
    expected = render_frame(image, plane.frame, window=PRESETS["lung"])
    assert np.abs(screen_grey(viewport) - expected.astype(int)).max() <= 1
    assert "W 1500  L -600" in viewport.corner_text("br")


def test_invert_rotate_flip(qtbot, window):
    viewport = open_first_series(qtbot, window)
    before = screen_grey(viewport)
    viewport.state.toggle_invert()
    assert np.abs(screen_grey(viewport) - (255 - before)).max() <= 1
    viewport.state.toggle_invert()
    viewport.state.rotate(90)
    rotated = screen_grey(viewport)
    assert np.abs(rotated - np.rot90(before, k=-1)).max() <= 1
    viewport.state.reset_transform()
    viewport.state.flip(True)
    assert np.abs(screen_grey(viewport) - before[:, ::-1]).max() <= 1


def test_window_drag_changes_levels(qtbot, window):
    viewport = open_first_series(qtbot, window)
    start = viewport.state.window
    viewport._on_window_drag(40.0, 0.0)
    assert viewport.state.window.width > start.width
    viewport._on_window_drag(0.0, 40.0)
    assert viewport.state.window.center < start.center


def test_measurements_in_millimetres_and_modality_units(qtbot, window):
    from PySide6.QtCore import QPointF

    viewport = open_first_series(qtbot, window)
    viewport.set_tool("length")
    # View coordinates are millimetres (pixel spacing 0.5 mm): a 10 mm line.
    viewport._on_tool_drag(QPointF(2.0, 2.0), QPointF(8.0, 10.0), True)
    (length, values), = viewport.measurements.on_screen()
    assert length.kind == "length" and values.text() == "10.0 mm"
    viewport.set_tool("ellipse")
    # An ellipse inside the disc (HU 60) at the centre of the 32 mm image.
    viewport._on_tool_drag(QPointF(14.0, 14.0), QPointF(18.0, 18.0), True)
    ellipse, values = viewport.measurements.on_screen()[1]
    assert abs(values.mean - 60) < 5 and values.sd < 10
    assert abs(values.area - np.pi * 4) < 1e-6
    assert "HU" in values.text()


def test_layout_and_synchronised_scrolling(qtbot, window):
    window.set_layout("1x2")
    first = open_first_series(qtbot, window)
    second = window.viewports[1]
    window.set_active(second)
    with qtbot.waitSignal(second.sig_plane_shown, timeout=10000):
        window.open_series(window.library_panel.series_order()[0])
    window.set_active(first)
    with qtbot.waitSignal(second.sig_plane_shown, timeout=10000):
        first.state.set_index(2)
    assert second.state.index == 2


def test_hide_identifying_text(qtbot, window):
    viewport = open_first_series(qtbot, window)
    assert "TEST, Gui" in viewport.corner_text("tl")  # PN shown as a reader writes it
    window.hide_action.setChecked(True)
    window.toggle_identifying()
    assert viewport.corner_text("tl") == ""
    assert "GUI001" not in window.library_panel.tree.topLevelItem(0).text(0)


def test_tag_browser_filters(qtbot, window):
    from medviewer.dicom.pixels import read_header
    from medviewer.qt.tag_browser import TagBrowserDialog

    viewport = open_first_series(qtbot, window)
    dialog = TagBrowserDialog(read_header(viewport.state.current.instance.ref), "x")
    qtbot.addWidget(dialog)
    assert dialog.apply_filter("PatientID") >= 1
    assert dialog.apply_filter("(0028,1050)") == 1
    assert dialog.apply_filter("no-such-tag-anywhere") == 0


def test_shortcut_sheet_lists_keys(window):
    rows = window.shortcut_rows()
    keys = {text: keys for _group, keys, text in rows}
    assert keys["Invert"] == "I"
    assert "Home" in keys["First image"]
    assert len(rows) > 30


def test_import_runs_off_the_gui_thread_and_reports_skips(qtbot, window, tmp_path):
    extra = write_ct_series(tmp_path / "more", slices=3, seed=9)
    (extra / "notes.dcm").write_text("<html>not an image</html>")
    with qtbot.waitSignal(window.importer.sig_finished, timeout=20000) as blocker:
        window.import_paths([str(extra)])
    report = blocker.args[0]
    assert report.instances == 3
    assert [s.reason for s in report.skipped] == ["not DICOM"]
    assert len(window.library_panel.series_order()) == 2

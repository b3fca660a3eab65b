"""The MPR window on a real series: three planes, cross-reference lines, clicks, slabs, refusals."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402

import helpers_dicom as h  # noqa: E402
from test_gui_viewer import open_first_series, write_ct_series  # noqa: E402
from test_gui_viewport_reading import make_window  # noqa: E402

pytestmark = pytest.mark.gui


def open_mpr(qtbot, win):
    from medviewer.qt.mpr_window import open_mpr as open_it

    viewport = open_first_series(qtbot, win)
    viewport.setFocus()
    mpr = open_it(win)
    qtbot.addWidget(mpr)
    with qtbot.waitSignal(mpr.sig_ready, timeout=20000):
        pass
    return mpr


def test_three_planes_with_cross_reference_lines_and_click_to_move(qtbot, tmp_path, monkeypatch):
    win = make_window(qtbot, tmp_path, monkeypatch, write_ct_series(tmp_path / "ct"))
    mpr = open_mpr(qtbot, win)
    assert mpr.volume is not None and mpr.volume.shape == (12, 64, 64)
    axial, coronal, sagittal = (mpr.views[p] for p in ("slice", "row", "column"))
    assert axial.view.overlay.text("tl").startswith("Axial reformat")
    assert coronal.view.overlay.text("tl").startswith("Coronal")
    assert [coronal.view.overlay.text(e) for e in ("left", "right", "top", "bottom")] == \
        ["R", "L", "H", "F"]
    assert [sagittal.view.overlay.text(e) for e in ("left", "right", "top", "bottom")] == \
        ["A", "P", "H", "F"]
    # The coronal plane's line on the axial image is the row it cuts (0.5 mm pixels).
    angle, value = axial.line_position("row")
    assert angle == 0 and value == pytest.approx((coronal.index + 0.5) * 0.5)
    # Scrolling the axial stack moves its line on the coronal image (head up: lower row = higher).
    before = coronal.line_position("slice")[1]
    axial.set_index(axial.index + 2)
    after = coronal.line_position("slice")[1]
    assert after == pytest.approx(before - 2 * 2.5)  # 2 slices of 2.5 mm, upwards
    # A real click on the sagittal view moves the axial and coronal planes to that point.
    canvas = sagittal.view.viewport()
    target = sagittal.box.mapViewToDevice(QPointF(10 * 0.5 + 0.1, (12 - 3 - 0.5) * 2.5))
    qtbot.mouseClick(canvas, Qt.LeftButton, pos=QPoint(round(target.x()), round(target.y())))
    assert axial.index == 3 and coronal.index == 10


def test_thick_slab_mip(qtbot, tmp_path, monkeypatch):
    win = make_window(qtbot, tmp_path, monkeypatch, write_ct_series(tmp_path / "ct"))
    mpr = open_mpr(qtbot, win)
    axial = mpr.views["slice"]
    thin = axial.current.pixels.copy()
    mpr.slab_box.setCurrentIndex(mpr.slab_box.findData(10))  # 10 mm = 4 slices of 2.5 mm
    assert axial.slab == 4 and "slab 10 mm MIP" in axial.view.overlay.text("tl")
    assert (axial.current.pixels >= thin).all() and (axial.current.pixels > thin).any()


def test_a_series_that_is_not_a_volume_is_refused_in_words(qtbot, tmp_path, monkeypatch):
    folder = tmp_path / "two"
    folder.mkdir()
    for k in range(2):
        h.write(h.make_image(np.zeros((8, 8), np.uint16), position=(0, 0, k),
                             orientation=(1, 0, 0, 0, 1, 0), instance_number=k + 1,
                             series_uid="1.2.3.9", sop_uid=f"1.2.3.9.{k}"), folder / f"{k}.dcm")
    win = make_window(qtbot, tmp_path, monkeypatch, folder)
    mpr = open_mpr(qtbot, win)
    assert mpr.volume is None
    assert "No reformats: a volume needs at least 3 slices" in mpr.message.text()

"""Reading aids on screen: orientation markers, scale bar, probe, active outline, bad spacing.

Real library, real widgets offscreen, real key and mouse events through qtbot.
The rendering checks read the canvas's own pixels (what the reader sees).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QPoint, Qt  # noqa: E402

import helpers_dicom as h  # noqa: E402
from medviewer.services.importer import import_paths  # noqa: E402
from medviewer.store import Library  # noqa: E402
from test_gui_viewer import open_first_series, screen_grey, write_ct_series  # noqa: E402

pytestmark = pytest.mark.gui


def make_window(qtbot, tmp_path, monkeypatch, data):
    from medviewer.qt.app import create_window

    path = tmp_path / "lib.sqlite"
    with Library(path) as lib:
        import_paths(lib, [data])
    monkeypatch.setenv("MEDVIEWER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path / "data"))
    win = create_window(str(path))
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    # Window shortcuts (the viewer's keys) fire only in the active window.
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)
    return win


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    return make_window(qtbot, tmp_path, monkeypatch, write_ct_series(tmp_path / "ct"))


def canvas_pixels(viewport) -> np.ndarray:
    """Return the canvas as the reader sees it, (rows, cols, 3) uint8."""
    from PySide6.QtGui import QImage

    image = viewport.view.viewport().grab().toImage().convertToFormat(QImage.Format_RGB888)
    arr = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    # Copied: the QImage (and the buffer the array views) goes when this returns.
    return arr[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def marker_mask(pixels: np.ndarray) -> np.ndarray:
    # The markers' yellow (255, 214, 10): red and green high, blue low.
    r, g, b = (pixels[..., i].astype(int) for i in range(3))
    return (r > 180) & (g > 140) & (b < 90)


def longest_run(row: np.ndarray) -> int:
    best = run = 0
    for on in row:
        run = run + 1 if on else 0
        best = max(best, run)
    return best


def test_markers_follow_the_rotate_key(qtbot, window):
    viewport = open_first_series(qtbot, window)
    assert [viewport.corner_text(e) for e in ("left", "right", "top", "bottom")] == \
        ["R", "L", "A", "P"]
    viewport.setFocus()
    with qtbot.waitSignal(viewport.sig_plane_shown, timeout=5000):
        qtbot.keyClick(viewport, Qt.Key_R)  # "Rotate clockwise"
    assert viewport.state.rotation == 90
    assert [viewport.corner_text(e) for e in ("left", "right", "top", "bottom")] == \
        ["P", "A", "R", "L"]
    assert "Loc" not in viewport.corner_text("bl") or "mm" in viewport.corner_text("bl")
    assert "Thk 2.5 mm" in viewport.corner_text("bl")


def test_markers_and_scale_bar_are_painted_where_a_reader_looks(qtbot, window):
    viewport = open_first_series(qtbot, window)
    qtbot.waitUntil(lambda: viewport.overlay.scale_bar is not None, timeout=5000)
    pixels = canvas_pixels(viewport)
    rows, cols = pixels.shape[:2]
    yellow = marker_mask(pixels)
    band = slice(rows // 2 - 15, rows // 2 + 15)
    assert yellow[band, :40].sum() > 10  # "R" at the left edge, mid-height
    assert yellow[band, -40:].sum() > 10  # "L" at the right edge
    assert yellow[:40, cols // 2 - 15: cols // 2 + 15].sum() > 10  # "A" on top
    assert yellow[rows // 3: 2 * rows // 3, cols // 4: 3 * cols // 4].sum() == 0  # not on anatomy
    # The scale bar: a light horizontal line, centred, as long as the overlay says.
    length, label = viewport.overlay.scale_bar
    light = pixels.min(axis=2) > 200
    bar_rows = [y for y in range(rows - 60, rows) if light[y].sum() >= length - 2]
    assert bar_rows, "no scale bar line near the bottom"
    assert abs(longest_run(light[bar_rows[0]]) - length) <= 3  # its label sits apart, to its right
    # Its length in mm matches the zoom: bar pixels x mm per screen pixel.
    mm_per_px = viewport.box.viewRect().width() / viewport.box.width()
    mm = float(label.split()[0]) * (10 if label.endswith("cm") else 1)
    assert length * mm_per_px == pytest.approx(mm, rel=0.02)


def test_probe_shows_hounsfield_units_under_the_mouse(qtbot, window):
    viewport = open_first_series(qtbot, window)
    canvas = viewport.view.viewport()
    centre = viewport.box.mapViewToDevice(viewport.image_item.mapRectToParent(
        viewport.image_item.boundingRect()).center())
    qtbot.mouseMove(canvas, QPoint(int(centre.x()), int(centre.y())))
    qtbot.waitUntil(lambda: "HU" in viewport.probe_text, timeout=5000)
    value = float(viewport.probe_text.split(":")[1].split()[0])
    assert 40 <= value <= 80  # the disc is 60 HU (+ noise), the air around it -1000
    assert viewport.corner_text("bl").startswith(viewport.probe_text)
    qtbot.mouseMove(canvas, QPoint(3, 3))  # outside the image: no value
    qtbot.waitUntil(lambda: viewport.probe_text == "", timeout=5000)


def test_active_viewport_is_outlined_and_a_click_moves_the_outline(qtbot, window):
    from medviewer.qt.viewport_widget import ACTIVE_OUTLINE

    open_first_series(qtbot, window)
    window.set_layout("1x2")
    first, second = window.viewports[:2]
    qtbot.waitUntil(lambda: second.isVisible() and second.width() > 50, timeout=5000)

    def edge_colour(viewport):
        image = viewport.grab().toImage()
        return image.pixelColor(0, image.height() // 2)

    assert first.is_outlined and not second.is_outlined
    assert edge_colour(first) == ACTIVE_OUTLINE
    qtbot.mouseClick(second.view.viewport(), Qt.LeftButton)
    assert window.active is second
    assert second.is_outlined and not first.is_outlined
    assert edge_colour(second) == ACTIVE_OUTLINE
    assert edge_colour(first) != ACTIVE_OUTLINE


def test_zero_pixel_spacing_cr_is_shown_with_a_note(qtbot, tmp_path, monkeypatch):
    folder = tmp_path / "cr"
    folder.mkdir()
    yy, xx = np.mgrid[:96, :80]
    pixels = (xx * 40 + yy * 5).astype(np.uint16)
    ds = h.make_image(pixels, modality="CR", photometric="MONOCHROME1", pixel_spacing=(0, 0))
    h.write(ds, folder / "cr.dcm")
    win = make_window(qtbot, tmp_path, monkeypatch, folder)
    viewport = open_first_series(qtbot, win)
    grey = screen_grey(viewport)
    assert grey.std() > 20  # an image, not a black viewport
    assert viewport.banner.isVisible() and "Pixel Spacing 0" in viewport.banner.text()
    assert viewport.overlay.scale_bar is None  # no spacing, no scale bar
    assert "mm" not in viewport.corner_text("bl")
    assert viewport.zoom_percent() > 0


def test_export_viewport_png_leaves_identity_out_unless_asked(qtbot, window, tmp_path):
    from PIL import Image

    from medviewer.qt.viewport_export import export_viewport_png

    viewport = open_first_series(qtbot, window)
    plain = np.asarray(Image.open(export_viewport_png(viewport, tmp_path / "a.png")).convert("RGB"))
    named = np.asarray(Image.open(export_viewport_png(viewport, tmp_path / "b.png",
                                                      identifying=True)).convert("RGB"))
    bare = np.asarray(Image.open(export_viewport_png(viewport, tmp_path / "c.png",
                                                     annotations=False)).convert("RGB"))
    corner = (slice(0, 40), slice(0, 160))
    assert plain[corner].max() < 60 < named[corner].max()  # the name only when asked
    assert marker_mask(plain).sum() > 20 and marker_mask(bare).sum() == 0  # markers go with annotations
    assert viewport.corner_text("tl").startswith("TEST, Gui")  # the screen is as it was
    restored = canvas_pixels(viewport)  # the screen shows the name and markers again
    assert restored[corner].max() > 60 and marker_mask(restored).sum() > 0

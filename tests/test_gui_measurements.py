"""Measurements drawn with the mouse last: stored per image, drawn again, listed, deleted.

Real key presses choose the tools; real mouse presses, moves and releases draw.
"""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import QPoint, Qt  # noqa: E402

from medviewer.measurements.store import list_measurements  # noqa: E402
from medviewer.store import Library  # noqa: E402
from test_gui_viewer import open_first_series, write_ct_series  # noqa: E402
from test_gui_viewport_reading import make_window  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def every_mouse_move(monkeypatch):
    # pyqtgraph drops moves closer than 1/100 s apart; a test's moves come faster than a hand's.
    old = pg.getConfigOption("mouseRateLimit")
    pg.setConfigOption("mouseRateLimit", -1)
    yield
    pg.setConfigOption("mouseRateLimit", old)


def to_screen(viewport, x_mm: float, y_mm: float) -> QPoint:
    from PySide6.QtCore import QPointF

    point = viewport.box.mapViewToDevice(QPointF(x_mm, y_mm))
    return QPoint(round(point.x()), round(point.y()))


def drag(qtbot, viewport, start_mm, end_mm) -> None:
    canvas = viewport.view.viewport()
    a, b = to_screen(viewport, *start_mm), to_screen(viewport, *end_mm)
    qtbot.mousePress(canvas, Qt.LeftButton, pos=a)
    for t in (0.25, 0.5, 0.75, 1.0):
        qtbot.mouseMove(canvas, QPoint(round(a.x() + (b.x() - a.x()) * t),
                                       round(a.y() + (b.y() - a.y()) * t)))
    qtbot.mouseRelease(canvas, Qt.LeftButton, pos=b)


def stored(library_path):
    with Library(library_path) as lib:
        return [m for m, _loc, _series in list_measurements(lib)]


def test_drawn_measurements_are_stored_and_drawn_again(qtbot, tmp_path, monkeypatch):
    win = make_window(qtbot, tmp_path, monkeypatch, write_ct_series(tmp_path / "ct"))
    viewport = open_first_series(qtbot, win)
    viewport.setFocus()
    qtbot.keyClick(viewport, Qt.Key_L)  # length tool
    drag(qtbot, viewport, (4.0, 4.0), (16.0, 20.0))  # 20 mm on a 0.5 mm grid
    qtbot.keyClick(viewport, Qt.Key_B)  # rectangle ROI inside the 60 HU disc
    drag(qtbot, viewport, (14.0, 14.0), (18.0, 18.0))
    found = stored(win.library_path)
    assert [m.kind for m in found] == ["length", "rectangle"]
    on_screen = dict((m.kind, v) for m, v in viewport.measurements.on_screen())
    assert on_screen["length"].length == pytest.approx(20.0, abs=0.8)
    assert on_screen["rectangle"].mean == pytest.approx(60, abs=5)
    index = viewport.state.index

    # Rotating redraws them where the anatomy went; the stored points do not change.
    qtbot.keyClick(viewport, Qt.Key_R)
    assert [m.points for m in stored(win.library_path)] == [m.points for m in found]
    assert viewport.measurements.on_screen()[0][1].length == pytest.approx(20.0, abs=0.8)

    # Another image has none; coming back shows them.
    viewport.state.set_index(index - 1)
    assert viewport.measurements.on_screen() == []
    viewport.state.set_index(index)
    assert len(viewport.measurements.on_screen()) == 2

    # Another window on the same library (a restart) draws them again.
    path = win.library_path
    win.close()
    from medviewer.qt.app import create_window

    again = create_window(path)
    qtbot.addWidget(again)
    again.show()
    viewport = open_first_series(qtbot, again)
    assert viewport.state.index == index
    assert sorted(m.kind for m, _v in viewport.measurements.on_screen()) == ["length", "rectangle"]
    drawn = viewport.measurements._drawn[index]
    assert all(entry.label.toPlainText() for entry in drawn)

    # Delete removes the newest from the library too.
    again.activateWindow()
    qtbot.waitUntil(again.isActiveWindow, timeout=5000)
    viewport.setFocus()
    qtbot.keyClick(viewport, Qt.Key_Delete)
    assert [m.kind for m in stored(path)] == ["length"]
    assert [m.kind for m, _v in viewport.measurements.on_screen()] == ["length"]


def test_angle_and_cobb_take_two_drags(qtbot, tmp_path, monkeypatch):
    win = make_window(qtbot, tmp_path, monkeypatch, write_ct_series(tmp_path / "ct"))
    viewport = open_first_series(qtbot, win)
    viewport.setFocus()
    qtbot.keyClick(viewport, Qt.Key_N)  # angle
    drag(qtbot, viewport, (4.0, 20.0), (16.0, 20.0))  # first arm, ending at the vertex
    assert stored(win.library_path) == []  # not yet an angle
    drag(qtbot, viewport, (16.0, 20.0), (16.0, 8.0))  # from the vertex, straight up
    qtbot.keyClick(viewport, Qt.Key_N, Qt.ShiftModifier)  # Cobb
    drag(qtbot, viewport, (4.0, 4.0), (16.0, 4.0))
    drag(qtbot, viewport, (4.0, 10.0), (16.0, 22.0))
    values = {m.kind: v.angle for m, v in viewport.measurements.on_screen()}
    assert values["angle"] == pytest.approx(90.0, abs=3.0)
    assert values["cobb"] == pytest.approx(45.0, abs=3.0)


def test_measurements_list_deletes_and_round_trips_sr(qtbot, tmp_path, monkeypatch):
    from medviewer.qt.measurement_actions import MeasurementsDialog

    win = make_window(qtbot, tmp_path, monkeypatch, write_ct_series(tmp_path / "ct"))
    viewport = open_first_series(qtbot, win)
    viewport.setFocus()
    qtbot.keyClick(viewport, Qt.Key_E)
    drag(qtbot, viewport, (12.0, 12.0), (20.0, 20.0))
    qtbot.keyClick(viewport, Qt.Key_L)
    drag(qtbot, viewport, (2.0, 2.0), (10.0, 2.0))
    dialog = MeasurementsDialog(win.library_path, win)
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == 2
    files = dialog.export_to(str(tmp_path / "sr"))
    assert len(files) == 1
    dialog.table.selectRow(0)
    assert dialog.delete_selected() == 1
    assert [m.kind for m in stored(win.library_path)] == ["length"]
    dialog.import_from([str(files[0])])
    assert "1 imported, 1 updated" in dialog.message.text()
    assert sorted(m.kind for m in stored(win.library_path)) == ["ellipse", "length"]


def test_no_two_viewer_actions_share_a_key(qtbot, tmp_path, monkeypatch):
    from PySide6.QtGui import QKeySequence

    win = make_window(qtbot, tmp_path, monkeypatch, write_ct_series(tmp_path / "ct"))
    seen = {}
    for action in win.actions():
        for key in action.shortcuts():
            text = key.toString(QKeySequence.PortableText)
            assert text not in seen, f"{text}: {seen.get(text)} and {action.text()}"
            seen[text] = action.text()


def click(qtbot, viewport, at_mm, double=False) -> None:
    canvas = viewport.view.viewport()
    at = to_screen(viewport, *at_mm)
    qtbot.mouseClick(canvas, Qt.LeftButton, pos=at)
    if double:
        # What a hand's double click delivers: press, release, double-click, release
        # (QTest's mouseDClick sends the double-click event alone).
        qtbot.mouseDClick(canvas, Qt.LeftButton, pos=at)
        qtbot.mouseRelease(canvas, Qt.LeftButton, pos=at)


def test_polygon_is_clicked_closed_by_double_click_or_enter_and_escape_cancels(
        qtbot, tmp_path, monkeypatch):
    win = make_window(qtbot, tmp_path, monkeypatch, write_ct_series(tmp_path / "ct"))
    viewport = open_first_series(qtbot, win)
    viewport.setFocus()
    qtbot.keyClick(viewport, Qt.Key_P)  # polygon tool
    assert viewport.box.tool == "polygon"

    # Escape abandons the polygon being clicked: nothing stored, nothing left drawn.
    click(qtbot, viewport, (13.0, 13.0))
    click(qtbot, viewport, (19.0, 13.0))
    assert viewport.measurements.polygon_in_progress()
    qtbot.keyClick(viewport, Qt.Key_Escape)
    assert not viewport.measurements.polygon_in_progress()
    assert stored(win.library_path) == []

    # A 6 x 6 mm square inside the 60 HU disc, closed by a double click on the last corner.
    for at in ((13.0, 13.0), (19.0, 13.0), (19.0, 19.0)):
        click(qtbot, viewport, at)
    click(qtbot, viewport, (13.0, 19.0), double=True)
    found = stored(win.library_path)
    assert [m.kind for m in found] == ["polygon"]
    assert len(found[0].points) == 4  # the double click added no fifth vertex
    values = dict((m.kind, v) for m, v in viewport.measurements.on_screen())["polygon"]
    assert values.mean == pytest.approx(60, abs=5)
    assert values.sd is not None and values.minimum <= values.mean <= values.maximum
    assert values.area == pytest.approx(36.0, rel=0.2)  # mm^2 on the 0.5 mm grid
    assert values.value_unit == "HU"

    # A triangle closed by Enter; two clicks and Enter make nothing.
    for at in ((4.0, 4.0), (10.0, 4.0), (4.0, 10.0)):
        click(qtbot, viewport, at)
    qtbot.keyClick(viewport, Qt.Key_Return)
    click(qtbot, viewport, (4.0, 4.0))
    click(qtbot, viewport, (10.0, 4.0))
    qtbot.keyClick(viewport, Qt.Key_Return)
    kinds = [m.kind for m in stored(win.library_path)]
    assert kinds == ["polygon", "polygon"]
    assert len(viewport.measurements.on_screen()) == 2
    triangle = viewport.measurements.on_screen()[1][1]
    assert triangle.area == pytest.approx(18.0, rel=0.25)

    # Drawn again after the series is read again (as after a restart).
    viewport.measurements.load(viewport.library_path, viewport.state.planes)
    viewport.measurements.show_plane(viewport.state.index)
    assert [m.kind for m, _v in viewport.measurements.on_screen()] == ["polygon", "polygon"]
    assert len(viewport.measurements._drawn[viewport.state.index]) == 2


def test_key_image_toggles_with_k_is_listed_and_exports_as_key_object_selection(
        qtbot, tmp_path, monkeypatch):
    import pydicom

    from medviewer.measurements.store import is_key_image, list_key_images
    from medviewer.qt.key_image_actions import show_key_images

    win = make_window(qtbot, tmp_path, monkeypatch, write_ct_series(tmp_path / "ct"))
    viewport = open_first_series(qtbot, win)
    viewport.setFocus()
    marked_sop = viewport.state.current.instance.sop_uid
    qtbot.keyClick(viewport, Qt.Key_K)
    viewport.state.step(1)
    qtbot.keyClick(viewport, Qt.Key_K)
    qtbot.keyClick(viewport, Qt.Key_K)  # toggled off again
    with Library(win.library_path) as lib:
        keys = list_key_images(lib)
        second = viewport.state.current
        assert not is_key_image(lib, second.instance.id, second.frame)
    assert len(keys) == 1 and "no longer" in win.statusBar().currentMessage()

    show_key_images(win)
    dialog = win._key_images_dialog
    assert dialog.list.count() == 1 and dialog.export_button.isEnabled()
    files = dialog.export_to(str(tmp_path / "ko"))
    assert len(files) == 1
    ko = pydicom.dcmread(files[0])
    assert ko.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.59"  # Key Object Selection Document
    assert ko.ConceptNameCodeSequence[0].CodeValue == "113000"  # "Of Interest"
    referenced = [item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
                  for item in ko.ContentSequence if item.ValueType == "IMAGE"]
    assert referenced == [marked_sop]
    assert ko.StudyInstanceUID == pydicom.dcmread(keys[0][2]).StudyInstanceUID

    # Unmarking the last one empties the list; exporting nothing says so and writes nothing.
    dialog.reject()
    viewport.state.step(-1)
    qtbot.keyClick(viewport, Qt.Key_K)
    show_key_images(win)
    dialog = win._key_images_dialog
    assert dialog.list.count() == 0 and not dialog.export_button.isEnabled()
    assert dialog.export_to(str(tmp_path / "ko2")) == []
    assert "no key images" in dialog.message.text()

"""Hanging protocols: current study with priors by date, layouts by modality/body part, remembered."""

from __future__ import annotations

import numpy as np
import pytest

import helpers_dicom as h
from medviewer.display.hanging import SeriesChoice, parse_layout, plan_hanging, protocol_key


def choice(series_id, study_id, date, modality="CT", body="HEAD", description="Head axial",
           instances=30):
    return SeriesChoice(series_id, study_id, date, modality, body, description, instances)


def test_current_first_then_priors_newest_first_same_kind():
    current = choice(1, 10, "20240601")
    studies = [
        [current, choice(2, 10, "20240601", description="Scout", instances=1)],
        [choice(3, 11, "20230101", description="Scout", instances=2),
         choice(4, 11, "20230101", description="HEAD AXIAL 5mm", instances=28)],
        [choice(5, 12, "20220101")],
        [choice(6, 13, "20250101")],  # a later study is not a prior
        [choice(7, 14, "20231201", modality="CR", body="CHEST")],  # another modality
    ]
    plan = plan_hanging(current, studies)
    assert plan.series_ids == [1, 4, 5] and plan.layout == "1x3"
    assert plan.study_dates == ["20240601", "20230101", "20220101"]
    alone = plan_hanging(current, [[current]])
    assert alone.layout == "1x1" and "no prior" in alone.notes[0]


def test_remembered_layout_wins_and_says_what_it_hides():
    current = choice(1, 10, "20240601")
    studies = [[current], [choice(2, 11, "2023")], [choice(3, 12, "2022")]]
    plan = plan_hanging(current, studies, {protocol_key("CT", "head"): "1x2"})
    assert plan.layout == "1x2" and plan.series_ids == [1, 2]
    assert "shows 2 of 3" in plan.notes[0]
    assert plan_hanging(current, studies, {"CT|HEAD": "2x3"}).layout == "2x3"


def test_layout_names():
    assert parse_layout("2x3") == (2, 3) and parse_layout("3 x 2") == (3, 2)
    with pytest.raises(ValueError, match="1 to 6"):
        parse_layout("3x3")
    with pytest.raises(ValueError, match="rows x columns"):
        parse_layout("big")


def write_study(folder, date, study_uid, modality="CT", slices=4, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = f"{study_uid}.1"
    for k in range(slices):
        ds = h.make_image(np.full((16, 16), 1000 + 10 * seed, np.uint16), modality=modality,
                          patient_id="PRI-1", patient_name="PRIOR^PAT", study_uid=study_uid,
                          series_uid=series_uid, sop_uid=f"{series_uid}.{k}",
                          position=(0, 0, 2.0 * k), orientation=(1, 0, 0, 0, 1, 0),
                          instance_number=k + 1, rescale=(1.0, -1024.0), seed=seed * 10 + k,
                          series_description="Head axial")
        ds.StudyDate = date
        ds.BodyPartExamined = "HEAD"
        h.write(ds, folder / f"{k}.dcm")


@pytest.mark.gui
def test_hang_with_priors_in_the_window_and_remember_the_layout(qtbot, tmp_path, monkeypatch):
    pytest.importorskip("PySide6")
    from PySide6.QtCore import Qt

    from test_gui_viewport_reading import make_window

    root = tmp_path / "data"
    write_study(root / "now", "20240601", "1.2.826.0.1.9.1", seed=1)
    write_study(root / "prior1", "20230301", "1.2.826.0.1.9.2", seed=2)
    write_study(root / "prior2", "20210901", "1.2.826.0.1.9.3", seed=3)
    win = make_window(qtbot, tmp_path, monkeypatch, root)
    with win.session.library() as lib:
        current = next(s for s in lib.series() if s.series_uid == "1.2.826.0.1.9.1.1")
    with qtbot.waitSignal(win.viewports[0].sig_plane_shown, timeout=10000):
        win.open_series(current.id, viewport=win.viewports[0])
    win.set_active(win.viewports[0])
    win.viewports[0].setFocus()
    with qtbot.waitSignal(win.viewports[2].sig_plane_shown, timeout=10000):
        qtbot.keyClick(win.viewports[0], Qt.Key_P, Qt.ControlModifier)  # Hang with priors
    assert win.settings.layout == "1x3"
    dates = [v.corner_text("tr").splitlines()[0] for v in win.viewports[:3]]
    assert dates == ["2024-06-01", "2023-03-01", "2021-09-01"]
    assert "with priors 2023-03-01, 2021-09-01" in win.statusBar().currentMessage()
    # The reader prefers 1x2 for head CT: remembered, and used by the next hanging.
    qtbot.keyClick(win.viewports[0], Qt.Key_2, Qt.ControlModifier)
    assert win.settings.hanging_layouts["CT|HEAD"] == "1x2"
    qtbot.keyClick(win.viewports[0], Qt.Key_P, Qt.ControlModifier)
    assert win.settings.layout == "1x2"

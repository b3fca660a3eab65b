"""Scroll sync by patient position: the rules and their sentences, headless."""

from __future__ import annotations

from medviewer.display.position_sync import follow_by_position
from medviewer.services.viewer_state import PlaneRef, ScrollSync, ViewerState
from medviewer.store.library import InstanceRow, SeriesRow

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)


def instances(zs, orientation=AXIAL, series=1, positions=True):
    out = []
    for i, z in enumerate(zs):
        pos = ((0.0, 0.0, float(z)) if orientation == AXIAL else (float(z), 0.0, 0.0))
        out.append(InstanceRow(id=series * 1000 + i, series_ref=series, location=f"/s{series}/{i}",
                               path=f"/s{series}/{i}", member="", kind="dicom",
                               sop_uid=f"1.2.{series}.{i}", instance_number=i + 1, rows=8,
                               columns=8, frames=1, photometric="MONOCHROME2",
                               transfer_syntax="", pixel_spacing=(1.0, 1.0), slice_index=i,
                               image_position=pos if positions else None,
                               image_orientation=orientation if positions else None))
    return out


def planes(rows):
    return [PlaneRef(r, 0) for r in rows]


def test_thin_follows_thick_by_position_not_by_index():
    thick = planes(instances(range(0, 100, 5)))       # 20 slices, 5 mm
    thin = planes(instances([z * 1.25 for z in range(40)], series=2))  # 40 slices, 1.25 mm
    decision = follow_by_position(thick, 6, thin, "FOR1", "FOR1")  # z = 30 mm
    assert decision.index == 24 and decision.by_position  # 24 * 1.25 = 30 mm
    assert decision.reason == "linked by patient position"
    assert round(6 / 19 * 39) == 12  # where index-fraction sync would have sent it: 15 mm off


def test_beyond_the_other_stack_it_stays():
    long = planes(instances(range(0, 200, 5)))
    short = planes(instances(range(0, 50, 5), series=2))
    decision = follow_by_position(long, 30, short, "F", "F")  # z = 150 mm, short ends at 45
    assert decision.index is None and "beyond" in decision.reason


def test_other_frames_of_reference_are_not_linked_and_said():
    a, b = planes(instances(range(10))), planes(instances(range(10), series=2))
    decision = follow_by_position(a, 3, b, "FOR-A", "FOR-B")
    assert decision.index is None
    assert "different frames of reference" in decision.reason


def test_perpendicular_planes_are_not_linked():
    axial, sagittal = planes(instances(range(10))), planes(instances(range(10), SAGITTAL, 2))
    decision = follow_by_position(axial, 3, sagittal, "F", "F")
    assert decision.index is None and "90 degrees apart" in decision.reason


def test_without_positions_it_follows_by_relative_position():
    a = planes(instances(range(11), positions=False))
    b = planes(instances(range(21), series=2, positions=False))
    decision = follow_by_position(a, 5, b)
    assert decision.index == 10 and "relative position" in decision.reason


def series_row(n):
    return SeriesRow(id=n, study_ref=1, series_uid=f"1.{n}", modality="CT", series_number=n,
                     description="", body_part="", instances=10, frames=10, spacing=None,
                     tilt_degrees=None, sorted_by="position", warnings=[])


def test_loading_a_series_never_moves_the_other_viewport():
    sync = ScrollSync()
    first, second = ViewerState(), ViewerState()
    first.set_series(series_row(1), instances(range(0, 100, 5)))
    first.set_index(3)
    states = [first, second]
    for state in states:
        state.connect("index_changed", lambda index, s=state: sync.follow(s, states))
    second.set_series(series_row(2), instances(range(0, 100, 2), series=2))
    assert first.index == 3  # the new series announced its middle slice; nothing followed
    first.set_index(10)  # z = 50 mm
    assert second.index == 25
    assert sync.reason_for(second) == "linked by patient position (frame of reference not in the header)"

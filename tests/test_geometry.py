"""Series sorting along the slice normal and the geometry warnings a reader must see."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medviewer.dicom.geometry import slice_normal, sort_series

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)


@dataclass
class Slice:
    image_position: tuple | None
    image_orientation: tuple | None = AXIAL
    instance_number: int | None = None
    rows: int = 64
    columns: int = 64


def stack(along, orientation=AXIAL, shear_deg=0.0, numbers=None):
    """Slices at the given distances along the normal (optionally sheared like a gantry tilt)."""
    normal = slice_normal(orientation)
    col = np.asarray(orientation[3:], float)
    shear = math.tan(math.radians(shear_deg))
    out = []
    for i, a in enumerate(along):
        point = a * normal + (a - along[0]) * shear * col
        out.append(Slice(tuple(float(v) for v in point), orientation,
                         numbers[i] if numbers else i + 1))
    return out


def codes(geometry):
    return [w.code for w in geometry.warnings]


def test_slice_normal_is_unit_cross_product():
    assert np.allclose(slice_normal(AXIAL), [0, 0, 1])
    assert np.allclose(slice_normal(SAGITTAL), [-1, 0, 0])
    oblique = (1, 0, 0, 0, math.cos(0.3), math.sin(0.3))
    n = slice_normal(oblique)
    assert math.isclose(np.linalg.norm(n), 1.0) and abs(n @ [0, math.cos(0.3), math.sin(0.3)]) < 1e-12


def test_regular_stack_sorted_by_position_not_input_or_instance_order():
    along = [10.0, -5.0, 0.0, 5.0, 15.0, 20.0]
    slices = stack(along, numbers=[6, 5, 4, 3, 2, 1])  # instance numbers disagree with space
    g = sort_series(slices)
    assert g.sorted_by == "position"
    assert [along[i] for i in g.order] == sorted(along)
    assert g.positions == pytest.approx(sorted(along))
    assert g.spacing == pytest.approx(5.0)
    assert g.tilt_degrees == pytest.approx(0.0, abs=1e-6)
    assert g.warnings == []


@pytest.mark.parametrize("orientation", [SAGITTAL, CORONAL, (1, 0, 0, 0, 0.8, 0.6)],
                         ids=["sagittal", "coronal", "oblique"])
def test_non_axial_stacks_sort_along_their_own_normal(orientation):
    along = [4.0, 0.0, 8.0, 2.0, 6.0]
    g = sort_series(stack(along, orientation))
    assert [along[i] for i in g.order] == sorted(along)
    assert g.spacing == pytest.approx(2.0)
    assert g.warnings == []


@settings(max_examples=60, deadline=None)
@given(st.permutations(list(range(12))), st.floats(0.5, 10.0), st.floats(-500, 500))
def test_any_shuffle_is_recovered(perm, spacing, start):
    along = [start + spacing * k for k in range(12)]
    slices = stack([along[k] for k in perm])
    g = sort_series(slices)
    assert [perm[i] for i in g.order] == list(range(12))
    assert g.spacing == pytest.approx(spacing)
    assert g.warnings == []


def test_rounding_jitter_is_not_a_warning():
    along = [0.0, 2.5, 5.005, 7.5, 9.998, 12.5]  # < 1% off
    assert sort_series(stack(along)).warnings == []


def test_uneven_spacing_warns_with_range():
    along = [0.0, 4.0, 8.0, 12.0, 13.1, 20.1, 27.1, 34.1]  # like the GE head CT: 4 mm then 7 mm
    g = sort_series(stack(along))
    assert codes(g) == ["uneven spacing"]
    message = g.warnings[0].message
    assert "1.10" in message and "7.00" in message


def test_one_missing_slice_is_reported_as_missing_not_uneven():
    along = [0.0, 2.0, 4.0, 8.0, 10.0, 12.0]  # 6.0 missing
    g = sort_series(stack(along))
    assert codes(g) == ["missing slices"]
    assert "About 1 slice" in g.warnings[0].message
    assert g.spacing == pytest.approx(2.0)


def test_several_missing_slices_are_counted():
    along = [0.0, 2.0, 8.0, 10.0, 12.0, 14.0, 20.0]  # 4, 6 and 16, 18 missing
    g = sort_series(stack(along))
    assert codes(g) == ["missing slices"]
    assert "About 4 slice" in g.warnings[0].message


def test_gantry_tilt_is_measured_and_warned():
    g = sort_series(stack([0, 5, 10, 15, 20], shear_deg=18.5))
    assert g.tilt_degrees == pytest.approx(18.5, abs=0.01)
    assert codes(g) == ["gantry tilt"]
    assert "18.5" in g.warnings[0].message
    # The spacing is measured along the normal, not along the sheared step.
    assert g.spacing == pytest.approx(5.0)


def test_tiny_tilt_is_rounding():
    g = sort_series(stack([0, 5, 10, 15, 20], shear_deg=0.3))
    assert g.tilt_degrees == pytest.approx(0.3, abs=0.01)
    assert g.warnings == []


def test_mixed_orientation_falls_back_to_instance_number():
    slices = stack([0, 5, 10], numbers=[3, 1, 2]) + stack([7], SAGITTAL, numbers=[4])
    g = sort_series(slices)
    assert "mixed orientation" in codes(g)
    assert g.sorted_by == "instance number"
    assert g.order == [1, 2, 0, 3]
    assert g.positions is None and g.spacing is None


def test_mixed_size_is_warned_and_listed():
    slices = stack([0, 5, 10])
    slices[1].rows, slices[1].columns = 32, 48
    g = sort_series(slices)
    assert "mixed size" in codes(g)
    assert "48x32" in g.warnings[0].message and "64x64" in g.warnings[0].message


def test_duplicate_positions_are_counted():
    g = sort_series(stack([0, 5, 5, 10, 10, 15]))
    assert "duplicate positions" in codes(g)
    assert g.warnings[codes(g).index("duplicate positions")].message.startswith("2 slices")
    assert g.spacing == pytest.approx(5.0)


def test_all_duplicates_do_not_crash():
    g = sort_series(stack([3, 3, 3]))
    assert codes(g) == ["duplicate positions"]
    assert g.spacing is None and sorted(g.order) == [0, 1, 2]


def test_missing_position_sorts_by_instance_number_with_unnumbered_last():
    slices = [Slice(None, None, 2), Slice(None, None, None), Slice(None, None, 1), Slice(None, None, 3)]
    g = sort_series(slices)
    assert g.sorted_by == "instance number"
    assert g.order == [2, 0, 3, 1]
    assert codes(g) == ["sorted by instance number"]


def test_one_slice_and_empty_series():
    one = sort_series(stack([42.0]))
    assert one.order == [0] and one.positions == [pytest.approx(42.0)] and one.warnings == []
    radiograph = sort_series([Slice(None, None, 1)])
    assert radiograph.order == [0] and radiograph.positions is None
    empty = sort_series([])
    assert empty.order == [] and empty.warnings == []

"""Orientation markers, corner-text formatting and the scale bar (Qt-free)."""

from __future__ import annotations

import pytest

from medviewer.display.corner_text import (age_text, format_da, format_person_name,
                                           patient_lines, study_lines)
from medviewer.display.orientation import direction_label, edge_labels
from medviewer.display.scale_bar import scale_bar_length

AXIAL = (1, 0, 0, 0, 1, 0)  # rows run to the patient's left, columns to posterior
CORONAL = (1, 0, 0, 0, 0, -1)
SAGITTAL = (0, 1, 0, 0, 0, -1)


def labels(*args, **kw):
    e = edge_labels(*args, **kw)
    return (e.left, e.right, e.top, e.bottom)


def test_standard_planes_read_as_radiologists_expect():
    # Axial seen from the feet: patient's right on the screen's left, anterior up.
    assert labels(AXIAL) == ("R", "L", "A", "P")
    assert labels(CORONAL) == ("R", "L", "H", "F")
    assert labels(SAGITTAL) == ("A", "P", "H", "F")


def test_rotation_and_flips_move_the_markers_with_the_pixels():
    # Clockwise: what was at the top (A) is now at the right.
    assert labels(AXIAL, rotation=90) == ("P", "A", "R", "L")
    assert labels(AXIAL, rotation=180) == ("L", "R", "P", "A")
    assert labels(AXIAL, rotation=270) == labels(AXIAL, rotation=-90) == ("A", "P", "L", "R")
    assert labels(AXIAL, flip_horizontal=True) == ("L", "R", "A", "P")
    assert labels(AXIAL, flip_vertical=True) == ("R", "L", "P", "A")
    # Rotation first, then the flip (the viewport's order).
    assert labels(AXIAL, rotation=90, flip_horizontal=True) == ("A", "P", "R", "L")


def test_oblique_directions_get_two_letters_largest_first():
    assert direction_label((0.94, 0.0, 0.34)) == "LH"
    assert direction_label((0.05, -0.99, 0.1)) == "A"  # a few degrees is not worth a letter
    assert direction_label((0, 0, 0)) == ""


def test_patient_orientation_is_used_for_radiographs_without_iop():
    # A PA chest film: rows run to the patient's left, columns to the feet.
    assert labels(None, ("L", "F")) == ("R", "L", "H", "F")
    assert labels(None, ("P", "FL")) == ("A", "P", "RH", "LF")  # equal parts: L-R axis first
    assert edge_labels(None, None) is None
    assert edge_labels(None, ("X", "F")) is None


@pytest.mark.parametrize("raw,shown", [
    ("KHAN^WEI^A", "KHAN, Wei A"),
    ("Doe^Jane", "DOE, Jane"),
    ("SMITH", "SMITH"),
    ("^Mary-ann", "Mary-Ann"),
    ("VAN DYKE^JOHN^^DR^JR", "Dr VAN DYKE, John JR"),
    ("YAMADA^TARO=山田^太郎", "YAMADA, Taro"),
    ("", ""),
    (None, ""),
])
def test_person_names(raw, shown):
    assert format_person_name(raw) == shown


def test_dates_and_ages():
    assert format_da("20240131") == "2024-01-31"
    assert format_da("2024.01.31") == "2024-01-31"
    assert format_da("garbage") == "garbage"
    assert age_text("19700615", "20240614") == "53Y"  # the day before the birthday
    assert age_text("19700615", "20240615") == "54Y"
    assert age_text("20230101", "20240615") == "17M"
    assert age_text("20240501", "20240615") == "6W"
    assert age_text("20240610", "20240615") == "5D"
    assert age_text("20250101", "20240615") == ""  # born after the study: say nothing
    assert age_text("19700615", "20240615", "045Y") == "45Y"  # the header's age wins
    assert patient_lines("KHAN^WEI^A", "P1", "19700615", "F", "20240615") == [
        "KHAN, Wei A", "ID P1", "b. 1970-06-15  54Y  F"]
    assert patient_lines("", None, "", "", "") == ["(no name)"]
    assert study_lines("20240615", "CT HEAD", "A12") == ["2024-06-15", "CT HEAD", "Acc A12"]


def test_scale_bar_is_a_round_length_that_fits():
    assert scale_bar_length(0.5, 200) == (100.0, "10 cm")  # 100 mm fits in 100 mm
    assert scale_bar_length(0.5, 150) == (50.0, "5 cm")
    assert scale_bar_length(0.1, 150) == (10.0, "1 cm")
    assert scale_bar_length(0.01, 150) == (1.0, "1 mm")
    assert scale_bar_length(0.7, 100) == (50.0, "5 cm")
    assert scale_bar_length(0.0, 100) is None
    assert scale_bar_length(float("nan"), 100) is None

"""Orientation markers: which patient direction lies at each edge of the screen.

DICOM's patient coordinate system (PS3.3 C.7.6.2.1.1) is LPS: +x towards the
patient's left, +y posterior, +z head.  (0020,0037) Image Orientation (Patient)
gives the direction of increasing column index (the first three cosines, the
screen's rightward direction) and of increasing row index (the last three,
downward).  Radiographs without it may carry (0020,0020) Patient Orientation,
letters for the same two directions (e.g. ``P\\F``).  Rotation and flips of the
viewer move the directions with the pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Letter for the positive and negative direction of each LPS axis.
_AXIS_LETTERS = (("L", "R"), ("P", "A"), ("H", "F"))
_LETTER_VECTORS = {"L": (1, 0, 0), "R": (-1, 0, 0), "P": (0, 1, 0), "A": (0, -1, 0),
                   "H": (0, 0, 1), "S": (0, 0, 1), "F": (0, 0, -1), "I": (0, 0, -1)}
# A component smaller than this share of the direction is not worth a letter
# (an oblique of a few degrees still reads "L", not "LPH").
MIN_COMPONENT = 0.25


@dataclass(frozen=True)
class EdgeLabels:
    """The patient direction at each edge of the viewport (e.g. ``right="L"``)."""

    left: str
    right: str
    top: str
    bottom: str


def direction_label(vector: Sequence[float]) -> str:
    """Return the letters of a direction in patient space, largest component first."""
    v = np.asarray(vector, dtype=float)
    norm = float(np.linalg.norm(v))
    if norm == 0:
        return ""
    v = v / norm
    order = np.argsort(-np.abs(v), kind="stable")
    letters = []
    for axis in order:
        if abs(v[axis]) < MIN_COMPONENT:
            break
        letters.append(_AXIS_LETTERS[axis][0 if v[axis] > 0 else 1])
    return "".join(letters)


def letters_vector(letters: str) -> np.ndarray | None:
    """Return the direction named by Patient Orientation letters (``"PF"``), or ``None``."""
    parts = [_LETTER_VECTORS.get(ch) for ch in letters.strip().upper()]
    if not parts or any(p is None for p in parts):
        return None
    return np.sum(np.asarray(parts, dtype=float), axis=0)


def screen_directions(orientation: Sequence[float] | None = None,
                      patient_orientation: Sequence[str] | None = None
                      ) -> tuple[np.ndarray, np.ndarray] | None:
    """Return the patient directions of the image's rightward and downward axes, or ``None``."""
    if orientation is not None and len(orientation) == 6:
        right = np.asarray(orientation[:3], dtype=float)
        down = np.asarray(orientation[3:], dtype=float)
        if np.linalg.norm(right) > 0 and np.linalg.norm(down) > 0:
            return right, down
    if patient_orientation is not None and len(patient_orientation) == 2:
        right, down = (letters_vector(p) for p in patient_orientation)
        if right is not None and down is not None:
            return right, down
    return None


def edge_labels(orientation: Sequence[float] | None = None,
                patient_orientation: Sequence[str] | None = None, *, rotation: int = 0,
                flip_horizontal: bool = False, flip_vertical: bool = False) -> EdgeLabels | None:
    """Return the letters at the four edges after the viewer's rotation and flips.

    Parameters
    ----------
    orientation : sequence of 6 float, optional
        (0020,0037) Image Orientation (Patient).
    patient_orientation : sequence of 2 str, optional
        (0020,0020) Patient Orientation, used when there is no orientation.
    rotation : int
        Clockwise rotation in degrees (a multiple of 90), applied before the flips,
        as the viewport applies them.
    flip_horizontal, flip_vertical : bool

    Returns
    -------
    EdgeLabels or None
        ``None`` when the header says nothing about orientation.
    """
    directions = screen_directions(orientation, patient_orientation)
    if directions is None:
        return None
    right, down = directions
    for _ in range((rotation // 90) % 4):
        # Turning clockwise brings the top edge to the right: right' = up, down' = right.
        right, down = -down, right
    if flip_horizontal:
        right = -right
    if flip_vertical:
        down = -down
    return EdgeLabels(left=direction_label(-right), right=direction_label(right),
                      top=direction_label(-down), bottom=direction_label(down))

"""Multiplanar reformats of a volume: the three orthogonal planes, thick slabs, MIP.

A plane is named by the voxel axis it holds fixed: ``"slice"`` (the acquired
plane), ``"row"`` (fixed row: for an axial stack, coronal) and ``"column"``
(fixed column: sagittal for an axial stack).  Each reformat is returned with its
pixel spacing and the patient directions of its rightward and downward axes, so
orientation markers and the scale bar work on it as on an acquired image.  The
planes through the stack are shown head up (or anterior up, for a stack that
steps along head-feet), as radiologists read coronal and sagittal images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medviewer.dicom.volume import Volume

PLANES = ("slice", "row", "column")
_AXIS = {"slice": 0, "row": 1, "column": 2}
_NAMES = {0: "sagittal", 1: "coronal", 2: "axial"}  # plane normal along x, y, z


@dataclass(frozen=True)
class Reformat:
    """One reformatted image.

    Attributes
    ----------
    pixels : numpy.ndarray
        (rows, columns) voxel values (stored type; window with ``Volume.stored_levels``).
    spacing : (float, float)
        (row, column) spacing in mm.
    orientation : tuple of 6 float
        Rightward then downward direction cosines, as (0020,0037).
    flipped_stack : bool
        Whether screen rows run against the slice index (head up for axial stacks).
    """

    pixels: np.ndarray
    spacing: tuple[float, float]
    orientation: tuple[float, ...]
    flipped_stack: bool


def plane_count(volume: Volume, plane: str) -> int:
    """Return how many images a plane has."""
    return volume.shape[_AXIS[plane]]


def plane_name(volume: Volume, plane: str) -> str:
    """Return the anatomical name of a plane ("axial", "coronal", "sagittal", or "oblique")."""
    normal = {"slice": volume.normal, "row": volume.column_direction,
              "column": volume.row_direction}[plane]
    axis = int(np.argmax(np.abs(normal)))
    return _NAMES[axis] if abs(normal[axis]) > 0.8 else "oblique " + _NAMES[axis]


def reformat(volume: Volume, plane: str, index: int, thickness: int = 1,
             mode: str = "mip") -> Reformat:
    """Return one image of a plane, optionally a thick slab.

    Parameters
    ----------
    volume : Volume
    plane : str
        ``"slice"``, ``"row"`` or ``"column"``.
    index : int
        Position along the plane's axis (clamped).
    thickness : int
        Slab thickness in voxels (1 = a plain reformat).
    mode : str
        ``"mip"`` (maximum), ``"minip"`` (minimum) or ``"mean"`` for slabs.
    """
    axis = _AXIS[plane]
    count = volume.shape[axis]
    index = int(np.clip(index, 0, count - 1))
    half = max(0, int(thickness) - 1) // 2
    lo, hi = max(0, index - half), min(count, index + half + 1)
    taken = np.take(volume.voxels, range(lo, hi), axis=axis)
    if hi - lo == 1:
        pixels = np.squeeze(taken, axis=axis)
    elif mode == "mip":
        pixels = taken.max(axis=axis)
    elif mode == "minip":
        pixels = taken.min(axis=axis)
    elif mode == "mean":
        pixels = taken.mean(axis=axis).astype(np.float32)
    else:
        raise ValueError(f"unknown slab mode {mode!r}; mip, minip or mean")
    ds, dr, dc = volume.spacing
    if plane == "slice":
        return Reformat(np.ascontiguousarray(pixels), (dr, dc),
                        tuple(volume.row_direction) + tuple(volume.column_direction), False)
    # The stack axis becomes the screen's vertical axis; shown so that its
    # head/anterior end is up when the stack steps that way.
    down = volume.normal
    flip = _stack_points_up(volume)
    if flip:
        pixels = pixels[::-1]
        down = -down
    right = volume.row_direction if plane == "row" else volume.column_direction
    return Reformat(np.ascontiguousarray(pixels), (ds, dc if plane == "row" else dr),
                    tuple(right) + tuple(down), flip)


def _stack_points_up(volume: Volume) -> bool:
    """Whether increasing slice index points up on screen (head, or anterior, or patient left)."""
    n = volume.normal
    axis = int(np.argmax(np.abs(n)))
    if axis == 2:  # axial stack: head up
        return n[2] > 0
    if axis == 1:  # coronal stack: anterior (-y) up
        return n[1] < 0
    return n[0] > 0  # sagittal stack: the patient's left (+x) up in the reformats


def screen_row(volume: Volume, plane: str, index: int) -> float:
    """Return the screen row, in a row/column reformat, of a slice index (centre of the row)."""
    rows = volume.shape[0]
    if plane == "slice":
        raise ValueError("slice images have no slice row")
    return (rows - 1 - index if _stack_points_up(volume) else index) + 0.5


def cross_reference(volume: Volume, shown: str, other: str, other_index: int
                    ) -> tuple[str, float] | None:
    """Return where another plane's image cuts the shown plane: ("h" | "v", pixel coordinate).

    The coordinate is in the shown reformat's pixels (row for a horizontal line,
    column for a vertical one), at the centre of the voxel row or column.
    """
    if shown == other:
        return None
    if shown == "slice":
        # Row planes cut slices along a row (horizontal), column planes along a column.
        return ("h", other_index + 0.5) if other == "row" else ("v", other_index + 0.5)
    if other == "slice":
        return ("h", screen_row(volume, shown, other_index))
    # A row image seen in a column reformat: vertical line at that row's column (and back).
    return ("v", other_index + 0.5)

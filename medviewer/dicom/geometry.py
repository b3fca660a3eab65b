"""Order the slices of a series in space and warn about geometry a reader must know.

Slices are sorted by their position along the slice normal, the cross product
of the row and column direction cosines of (0020,0037) Image Orientation
(Patient), projected from (0020,0032) Image Position (Patient).  Where either
is missing or the orientations disagree, (0020,0013) Instance Number decides.
The approach follows 3D Slicer's ``DICOMUtils.getSortedImageFiles``: examine,
sort, and return warnings with the result instead of refusing to load.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

# Tolerances: spacing differences below 1% and tilts below half a degree are
# scanner rounding, not something to show a reader.
SPACING_TOLERANCE = 0.01
TILT_TOLERANCE_DEG = 0.5
ORIENTATION_TOLERANCE = 1e-3


class SliceLike(Protocol):
    """What sorting needs from a slice header (an InstanceHeader or a library row)."""

    image_position: tuple[float, float, float] | None
    image_orientation: tuple[float, ...] | None
    instance_number: int | None
    rows: int
    columns: int


@dataclass(frozen=True)
class GeometryWarning:
    """One geometry problem of a series: a short code and a sentence for the reader."""

    code: str
    message: str


@dataclass
class SeriesGeometry:
    """The spatial order of a series and what is odd about it.

    Attributes
    ----------
    order : list of int
        Indices into the input slices, in spatial order (feet to head for axial
        slices, i.e. increasing position along the normal).
    positions : list of float or None
        Position of each sorted slice along the normal (mm), or ``None`` when
        sorted by Instance Number.
    spacing : float or None
        Median distance between neighbouring slices (mm).
    tilt_degrees : float
        Angle between the slice normal and the direction the slices step in.
    warnings : list of GeometryWarning
    sorted_by : str
        ``"position"`` or ``"instance number"``.
    """

    order: list[int]
    positions: list[float] | None = None
    spacing: float | None = None
    tilt_degrees: float = 0.0
    warnings: list[GeometryWarning] = field(default_factory=list)
    sorted_by: str = "position"


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    """Return the unit normal of a slice from its six direction cosines."""
    row = np.asarray(orientation[:3], dtype=float)
    col = np.asarray(orientation[3:6], dtype=float)
    normal = np.cross(row, col)
    norm = np.linalg.norm(normal)
    return normal / norm if norm > 0 else normal


def sort_series(slices: Sequence[SliceLike]) -> SeriesGeometry:
    """Sort the slices of one series in space and list geometry warnings.

    Parameters
    ----------
    slices : sequence of SliceLike
        Headers of the instances of one series, in any order.

    Returns
    -------
    SeriesGeometry
    """
    count = len(slices)
    warnings: list[GeometryWarning] = []
    sizes = {(s.rows, s.columns) for s in slices}
    if len(sizes) > 1:
        listed = ", ".join(f"{c}x{r}" for r, c in sorted(sizes))
        warnings.append(GeometryWarning("mixed size", f"Images differ in size ({listed})."))
    if count < 2:
        return SeriesGeometry(order=list(range(count)), warnings=warnings,
                              positions=_single_position(slices))

    orientations = [s.image_orientation for s in slices]
    positions = [s.image_position for s in slices]
    if any(o is None for o in orientations) or any(p is None for p in positions):
        return _by_instance_number(slices, warnings, "no position or orientation in the header")
    reference = np.asarray(orientations[0], dtype=float)
    if any(np.abs(np.asarray(o, dtype=float) - reference).max() > ORIENTATION_TOLERANCE
           for o in orientations):
        warnings.append(GeometryWarning(
            "mixed orientation", "Slices have different orientations; this is not one stack."))
        return _by_instance_number(slices, warnings, None)

    normal = slice_normal(reference)
    points = np.asarray(positions, dtype=float)
    along = points @ normal
    order = [int(i) for i in np.argsort(along, kind="stable")]
    along_sorted = along[order]
    gaps = np.diff(along_sorted)
    result = SeriesGeometry(order=order, positions=[float(v) for v in along_sorted],
                            warnings=warnings)
    if np.any(gaps < 1e-3):
        warnings.append(GeometryWarning(
            "duplicate positions",
            f"{int(np.sum(gaps < 1e-3))} slices share a position with another slice."))
    positive = gaps[gaps >= 1e-3]
    if positive.size == 0:
        return result
    spacing = float(np.median(positive))
    result.spacing = spacing
    _spacing_warnings(positive, spacing, warnings)
    step = points[order[-1]] - points[order[0]]
    if np.linalg.norm(step) > 0:
        cosine = abs(float(step @ normal)) / float(np.linalg.norm(step))
        tilt = math.degrees(math.acos(min(1.0, cosine)))
        result.tilt_degrees = tilt
        if tilt > TILT_TOLERANCE_DEG:
            warnings.append(GeometryWarning(
                "gantry tilt",
                f"Slices are sheared by {tilt:.1f} degrees (gantry tilt); distances and "
                "reformats are not exact."))
    return result


def _spacing_warnings(gaps: np.ndarray, spacing: float, warnings: list[GeometryWarning]) -> None:
    relative = np.abs(gaps - spacing) / spacing
    if not np.any(relative > SPACING_TOLERANCE):
        return
    # A gap close to a whole multiple of the usual spacing means slices are missing;
    # anything else is a genuinely uneven series (e.g. variable-pitch head CT).
    multiples = gaps / spacing
    missing = [int(round(m)) - 1 for m in multiples
               if m > 1.5 and abs(m - round(m)) < 0.1]
    if missing:
        warnings.append(GeometryWarning(
            "missing slices",
            f"About {sum(missing)} slice(s) appear to be missing (gaps of "
            f"{', '.join(f'{g:.2f}' for g in gaps[multiples > 1.5])} mm where "
            f"{spacing:.2f} mm is usual)."))
    uneven = [(g, m) for g, m in zip(gaps, multiples, strict=True)
              if abs(g - spacing) / spacing > SPACING_TOLERANCE
              and not (m > 1.5 and abs(m - round(m)) < 0.1)]
    if uneven:
        low, high = float(gaps.min()), float(gaps.max())
        warnings.append(GeometryWarning(
            "uneven spacing",
            f"Slice spacing varies from {low:.2f} to {high:.2f} mm; distances along the "
            "stack are approximate."))


def _single_position(slices: Sequence[SliceLike]) -> list[float] | None:
    if len(slices) == 1 and slices[0].image_position and slices[0].image_orientation:
        normal = slice_normal(slices[0].image_orientation)
        return [float(np.asarray(slices[0].image_position) @ normal)]
    return None


def _by_instance_number(slices: Sequence[SliceLike], warnings: list[GeometryWarning],
                        reason: str | None) -> SeriesGeometry:
    numbers = [s.instance_number if s.instance_number is not None else 10**9 for s in slices]
    order = sorted(range(len(slices)), key=lambda i: (numbers[i], i))
    if reason:
        warnings.append(GeometryWarning("sorted by instance number",
                                        f"Sorted by Instance Number: {reason}."))
    return SeriesGeometry(order=order, warnings=warnings, sorted_by="instance number")

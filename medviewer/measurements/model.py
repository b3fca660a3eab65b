"""A measurement on one image and what it measures, in modality units.

Points are image pixel coordinates ``(column, row)`` of the stored frame (not as
rotated or flipped on screen), with the top-left corner of the top-left pixel at
``(0, 0)`` and its centre at ``(0.5, 0.5)``: the convention of DICOM SR SCOORD
(PS3.3 C.18.6.1.2), so points go into and come out of an SR unchanged.

Kinds and their points:

- ``length``: two points;
- ``angle``: three points, the vertex in the middle;
- ``cobb``: four points, two lines (the angle between the lines, 0-90 degrees);
- ``rectangle``: two opposite corners;
- ``ellipse``: the two ends of one axis, then the two ends of the other (SR ELLIPSE);
- ``polygon`` / ``freehand``: three or more vertices, closed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

KINDS = ("length", "angle", "cobb", "rectangle", "ellipse", "polygon", "freehand")
REGION_KINDS = ("rectangle", "ellipse", "polygon", "freehand")
_POINTS = {"length": (2, 2), "angle": (3, 3), "cobb": (4, 4), "rectangle": (2, 2),
           "ellipse": (4, 4), "polygon": (3, 10_000), "freehand": (3, 100_000)}


@dataclass
class Measurement:
    """One measurement or annotation on one frame of one image.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    points : list of (float, float)
        ``(column, row)`` image coordinates, see the module docstring.
    sop_uid : str
        SOP Instance UID of the image measured.
    frame : int
        Frame of a multi-frame image (0-based).
    label : str
        The reader's text ("RUL nodule").
    uid : str
        Tracking UID (stable across export and import).
    source : str
        ``"user"``, or where it came from (``"sr:<SOP Instance UID of the SR>"``).
    id : int or None
        Row id in the library.
    """

    kind: str
    points: list[tuple[float, float]]
    sop_uid: str = ""
    frame: int = 0
    label: str = ""
    uid: str = ""
    source: str = "user"
    id: int | None = None
    instance_ref: int | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown measurement kind {self.kind!r}; one of {', '.join(KINDS)}")
        low, high = _POINTS[self.kind]
        self.points = [(float(x), float(y)) for x, y in self.points]
        if not low <= len(self.points) <= high:
            raise ValueError(f"a {self.kind} needs {low} points, not {len(self.points)}")
        if not all(math.isfinite(v) for p in self.points for v in p):
            raise ValueError("measurement points must be finite numbers")
        if not self.uid:
            from pydicom.uid import generate_uid

            self.uid = generate_uid()


@dataclass(frozen=True)
class MeasurementValues:
    """What a measurement measures. Lengths in mm (or pixels without spacing)."""

    length: float | None = None
    angle: float | None = None  # degrees
    area: float | None = None
    mean: float | None = None
    sd: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    pixels: int | None = None
    length_unit: str = "mm"
    value_unit: str = ""

    def text(self) -> str:
        """Return the label drawn beside the measurement."""
        unit, values = self.length_unit, self.value_unit
        vu = f" {values}" if values else ""
        if self.length is not None:
            return f"{self.length:.1f} {unit}"
        if self.angle is not None:
            return f"{self.angle:.1f}\u00b0"
        if self.mean is None:
            return f"area {self.area:.1f} {unit}\u00b2" if self.area is not None else ""
        return (f"mean {self.mean:.1f}{vu}  SD {self.sd:.1f}\n"
                f"min {self.minimum:.0f}  max {self.maximum:.0f}{vu}\n"
                f"area {self.area:.1f} {unit}\u00b2 ({self.pixels} px)")


def _scaled(points, spacing) -> np.ndarray:
    row_mm, col_mm = spacing or (1.0, 1.0)
    return np.asarray(points, dtype=float) * np.array([col_mm, row_mm])


def line_angle(p0, p1, p2) -> float:
    """Return the angle at ``p1`` between the rays to ``p0`` and ``p2``, degrees (0-180)."""
    a, b = np.asarray(p0) - np.asarray(p1), np.asarray(p2) - np.asarray(p1)
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    if norm == 0:
        return 0.0
    return math.degrees(math.acos(float(np.clip(a @ b / norm, -1.0, 1.0))))


def cobb_angle(points) -> float:
    """Return the Cobb angle: between two lines, 0-90 degrees, whichever way each is drawn."""
    p = np.asarray(points, dtype=float)
    u, v = p[1] - p[0], p[3] - p[2]
    norm = np.linalg.norm(u) * np.linalg.norm(v)
    if norm == 0:
        return 0.0
    angle = math.degrees(math.acos(float(np.clip(abs(u @ v) / norm, 0.0, 1.0))))
    return angle


def region_mask(measurement: Measurement, shape: tuple[int, int]) -> np.ndarray:
    """Return the pixels whose centres lie inside a region measurement (rows x columns)."""
    mask = np.zeros(shape, dtype=bool)
    window = _bounding_window(measurement, shape)
    if window is not None:
        (r0, r1), (c0, c1) = window
        mask[r0:r1, c0:c1] = _mask_in(measurement, r0, r1, c0, c1)
    return mask


def _bounding_window(measurement: Measurement, shape) -> tuple | None:
    # Only the region's bounding box is tested: a small ROI on a 512x512 (or a
    # 3000x3000 radiograph) must not cost a whole-image pass.
    pts = np.asarray(measurement.points, dtype=float)
    if measurement.kind == "ellipse":
        centre = (pts[0] + pts[1]) / 2.0
        reach = max(np.linalg.norm(pts[1] - pts[0]), np.linalg.norm(pts[3] - pts[2])) / 2.0
        low, high = centre - reach, centre + reach
    else:
        low, high = pts.min(axis=0), pts.max(axis=0)
    rows, cols = shape
    c0, c1 = max(0, int(math.floor(low[0]))), min(cols, int(math.ceil(high[0])) + 1)
    r0, r1 = max(0, int(math.floor(low[1]))), min(rows, int(math.ceil(high[1])) + 1)
    if r0 >= r1 or c0 >= c1:
        return None
    return (r0, r1), (c0, c1)


def region_values(measurement: Measurement, values: np.ndarray) -> np.ndarray:
    """Return the values of the pixels inside a region measurement."""
    window = _bounding_window(measurement, values.shape)
    if window is None:
        return np.empty(0, dtype=values.dtype)
    (r0, r1), (c0, c1) = window
    return values[r0:r1, c0:c1][_mask_in(measurement, r0, r1, c0, c1)]


def _mask_in(measurement: Measurement, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    yy, xx = np.mgrid[r0:r1, c0:c1]
    cx, cy = xx + 0.5, yy + 0.5
    shape = cx.shape
    pts = np.asarray(measurement.points, dtype=float)
    if measurement.kind == "rectangle":
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        return (cx >= x0) & (cx <= x1) & (cy >= y0) & (cy <= y1)
    if measurement.kind == "ellipse":
        centre = (pts[0] + pts[1]) / 2.0
        a_vec, b_vec = (pts[1] - pts[0]) / 2.0, (pts[3] - pts[2]) / 2.0
        a, b = np.linalg.norm(a_vec), np.linalg.norm(b_vec)
        if a == 0 or b == 0:
            return np.zeros(shape, dtype=bool)
        ua = a_vec / a
        dx, dy = cx - centre[0], cy - centre[1]
        along = dx * ua[0] + dy * ua[1]
        across = -dx * ua[1] + dy * ua[0]
        return (along / a) ** 2 + (across / b) ** 2 <= 1.0
    return _polygon_mask(pts, cx, cy)


def _polygon_mask(pts: np.ndarray, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    # Even-odd rule, one edge at a time (vectorised over pixels).
    inside = np.zeros(cx.shape, dtype=bool)
    x, y = pts[:, 0], pts[:, 1]
    for i in range(len(pts)):
        x0, y0, x1, y1 = x[i - 1], y[i - 1], x[i], y[i]
        if y0 == y1:
            continue
        crosses = (cy >= min(y0, y1)) & (cy < max(y0, y1))
        at = x0 + (cy - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (cx < at)
    return inside


def region_area(measurement: Measurement, spacing) -> float:
    """Return the geometric area of a region (mm^2 with spacing, else pixels^2)."""
    pts = _scaled(measurement.points, spacing)
    if measurement.kind == "rectangle":
        w, h = np.abs(pts[1] - pts[0])
        return float(w * h)
    if measurement.kind == "ellipse":
        return float(math.pi * np.linalg.norm(pts[1] - pts[0]) / 2 * np.linalg.norm(pts[3] - pts[2]) / 2)
    x, y = pts[:, 0], pts[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def measure(measurement: Measurement, values: np.ndarray | None, spacing,
            value_unit: str = "") -> MeasurementValues:
    """Compute what a measurement measures.

    Parameters
    ----------
    measurement : Measurement
    values : numpy.ndarray or None
        The frame's modality values (rows x columns), for region statistics.
    spacing : (float, float) or None
        (row, column) pixel spacing in mm; without it lengths and areas are in pixels.
    value_unit : str
        Units of ``values`` ("HU").
    """
    unit = "mm" if spacing else "px"
    kind = measurement.kind
    if kind == "length":
        p = _scaled(measurement.points, spacing)
        return MeasurementValues(length=float(np.linalg.norm(p[1] - p[0])), length_unit=unit)
    if kind == "angle":
        return MeasurementValues(angle=line_angle(*_scaled(measurement.points, spacing)),
                                 length_unit=unit)
    if kind == "cobb":
        return MeasurementValues(angle=cobb_angle(_scaled(measurement.points, spacing)),
                                 length_unit=unit)
    area = region_area(measurement, spacing)
    if values is None or values.ndim != 2:
        return MeasurementValues(area=area, length_unit=unit, value_unit=value_unit)
    inside = region_values(measurement, np.asarray(values))
    if inside.size == 0:
        return MeasurementValues(area=area, pixels=0, length_unit=unit, value_unit=value_unit)
    inside = inside.astype(np.float64)
    return MeasurementValues(area=area, mean=float(inside.mean()), sd=float(inside.std()),
                             minimum=float(inside.min()), maximum=float(inside.max()),
                             pixels=int(inside.size), length_unit=unit, value_unit=value_unit)

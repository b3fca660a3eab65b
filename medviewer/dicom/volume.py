"""A series as a volume on an orthogonal grid, or a refusal in words.

The slices must share size and (0020,0037) orientation and have (0020,0032)
positions.  Two things real series do are corrected, and said:

- gantry tilt: the slices step along a direction that is not their normal (the
  stack is sheared).  Each slice is shifted in its own plane by its offset from
  the first slice, so the grid becomes orthogonal (what Slicer's "acquisition
  geometry regularization" and dcm2niix's tilt correction do); the corners that
  no slice covered have no data.
- uneven spacing: slices are interpolated (linearly, between the two nearest)
  onto a grid with the median spacing, so distances along the stack are true.

Voxels are kept as the series' stored values (16-bit) with the rescale, as the
image cache keeps them, so a 300x512x512 CT volume is 150 MB, not 300.
References: DICOM PS3.3 C.7.6.2.1.1 (Image Position and Orientation); 3D Slicer
``DICOMScalarVolumePlugin`` / ``vtkITKArchetypeImageSeriesReader`` (geometry checks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from medviewer.errors import MedViewerError

ORIENTATION_TOLERANCE = 1e-3
TILT_TOLERANCE_DEG = 0.5
SPACING_TOLERANCE = 0.01


class VolumeError(MedViewerError):
    """A series that is not one consistent volume (said in words, with what to do)."""


@dataclass
class Volume:
    """Voxels on an orthogonal grid in patient space.

    Attributes
    ----------
    voxels : numpy.ndarray
        ``(slices, rows, columns)``: stored values (uint8/uint16) or float32 modality values.
    slope, intercept : float
        Modality value = voxels * slope + intercept.
    spacing : (float, float, float)
        mm between slices, rows and columns.
    origin : numpy.ndarray
        Patient position (mm) of the centre of voxel (0, 0, 0).
    row_direction, column_direction, normal : numpy.ndarray
        Unit vectors of increasing column index (IOP's first triplet), increasing row
        index (second triplet) and increasing slice index.
    warnings : list of str
        What was corrected ("gantry tilt of 18.5 degrees corrected ...").
    """

    voxels: np.ndarray
    slope: float
    intercept: float
    spacing: tuple[float, float, float]
    origin: np.ndarray
    row_direction: np.ndarray
    column_direction: np.ndarray
    normal: np.ndarray
    units: str = ""
    frame_of_reference: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(slices, rows, columns)."""
        return tuple(self.voxels.shape)

    def to_modality(self, values: np.ndarray) -> np.ndarray:
        """Return modality values (HU for CT) for voxel values."""
        out = np.asarray(values, dtype=np.float32)
        if (self.slope, self.intercept) != (1.0, 0.0):
            out = out * np.float32(self.slope) + np.float32(self.intercept)
        return out

    def stored_levels(self, low: float, high: float) -> tuple[float, float]:
        """Map (black, white) modality values to voxel values, for windowing."""
        return (low - self.intercept) / self.slope, (high - self.intercept) / self.slope

    def position(self, index: Sequence[float]) -> np.ndarray:
        """Return the patient position (mm) of a (slice, row, column) voxel index."""
        k, r, c = (float(v) for v in index)
        ds, dr, dc = self.spacing
        return (self.origin + k * ds * self.normal + r * dr * self.column_direction
                + c * dc * self.row_direction)

    def index_of(self, point: Sequence[float]) -> np.ndarray:
        """Return the (slice, row, column) index, possibly fractional, of a patient position."""
        d = np.asarray(point, dtype=float) - self.origin
        ds, dr, dc = self.spacing
        return np.array([d @ self.normal / ds, d @ self.column_direction / dr,
                         d @ self.row_direction / dc])


def build_volume(images: Sequence) -> Volume:
    """Stack decoded images of one series into a volume, or refuse in words.

    Parameters
    ----------
    images : sequence of DecodedImage
        One single-frame grey image per slice, in any order.

    Raises
    ------
    VolumeError
        Fewer than three slices, colour or multi-frame images, mixed sizes or
        orientations, missing positions, or two slices at one position.
    """
    if len(images) < 3:
        raise VolumeError(f"a volume needs at least 3 slices; this series has {len(images)}",
                          hint="reformats need a stack of slices")
    if any(im.is_color for im in images):
        raise VolumeError("colour images are not a volume")
    if any(im.frame_count != 1 for im in images):
        raise VolumeError("multi-frame images are not handled as a volume here",
                          hint="open the frames as a stack instead")
    shapes = {tuple(im.frames.shape[1:3]) for im in images}
    if len(shapes) > 1:
        raise VolumeError(f"slices differ in size ({', '.join(f'{c}x{r}' for r, c in sorted(shapes))})")
    if any(im.orientation is None or im.position is None for im in images):
        raise VolumeError("some slices have no Image Position/Orientation (Patient)",
                          hint="without them the slices cannot be placed in space")
    reference = np.asarray(images[0].orientation, dtype=float)
    if any(np.abs(np.asarray(im.orientation) - reference).max() > ORIENTATION_TOLERANCE
           for im in images):
        raise VolumeError("slices have different orientations; this is not one stack",
                          hint="it may be a localiser series or several stacks in one series")
    row_dir = _unit(reference[:3])
    col_dir = _unit(reference[3:])
    normal = _unit(np.cross(row_dir, col_dir))
    positions = np.asarray([im.position for im in images], dtype=float)
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    along, positions = along[order], positions[order]
    gaps = np.diff(along)
    if np.any(gaps < 1e-3):
        raise VolumeError(f"{int(np.sum(gaps < 1e-3))} slice(s) share a position with another",
                          hint="the series may hold two acquisitions (e.g. two echoes or phases)")
    spacing_row, spacing_col = images[0].pixel_spacing or (1.0, 1.0)
    warnings = []
    if images[0].pixel_spacing is None:
        warnings.append("no pixel spacing: in-plane distances are in pixels")
    stored = [images[i] for i in order]
    voxels, slope, intercept = _stack(stored)
    # Gantry tilt: the in-plane offset of each slice from the first.
    offsets = positions - positions[0]
    shift_rows = offsets @ col_dir / spacing_row
    shift_cols = offsets @ row_dir / spacing_col
    step = positions[-1] - positions[0]
    tilt = math.degrees(math.acos(min(1.0, abs(float(step @ normal)) / float(np.linalg.norm(step)))))
    if tilt > TILT_TOLERANCE_DEG:
        voxels = _deshear(voxels, shift_rows, shift_cols)
        warnings.append(f"gantry tilt of {tilt:.1f} degrees corrected: slices shifted in their "
                        "plane onto an upright grid; corners no slice covered are blank")
    spacing = float(np.median(gaps))
    if np.any(np.abs(gaps - spacing) / spacing > SPACING_TOLERANCE):
        voxels, count = _resample(voxels, along, spacing)
        warnings.append(f"uneven slice spacing ({gaps.min():.2f} to {gaps.max():.2f} mm) "
                        f"resampled to {spacing:.2f} mm ({count} slices, linear)")
    return Volume(voxels=voxels, slope=slope, intercept=intercept,
                  spacing=(spacing, float(spacing_row), float(spacing_col)),
                  origin=positions[0], row_direction=row_dir, column_direction=col_dir,
                  normal=normal, units=images[0].units,
                  frame_of_reference=images[0].frame_of_reference, warnings=warnings)


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    n = float(np.linalg.norm(v))
    if n == 0:
        raise VolumeError("Image Orientation (Patient) has a zero direction")
    return v / n


def _stack(images) -> tuple[np.ndarray, float, float]:
    from medviewer.dicom.pixels import ModalityFrames

    frames = [im.frames for im in images]
    if all(isinstance(f, ModalityFrames) for f in frames):
        rescales = {(f.slope, f.intercept, f.stored.dtype) for f in frames}
        if len(rescales) == 1:
            slope, intercept, _dtype = rescales.pop()
            out = np.empty((len(frames),) + frames[0].stored.shape[1:], frames[0].stored.dtype)
            for i, f in enumerate(frames):
                out[i] = f.stored[0]
            return out, slope, intercept
    out = np.empty((len(frames),) + tuple(frames[0].shape[1:]), np.float32)
    for i, f in enumerate(frames):
        out[i] = f[0]
    return out, 1.0, 0.0


def _deshear(voxels: np.ndarray, shift_rows, shift_cols) -> np.ndarray:
    from scipy import ndimage

    out = np.empty_like(voxels)
    blank = voxels.min()
    for k in range(voxels.shape[0]):
        if abs(shift_rows[k]) < 1e-3 and abs(shift_cols[k]) < 1e-3:
            out[k] = voxels[k]
            continue
        # Slice k's pixel (r, c) lies where the upright grid has (r + dr, c + dc).
        shifted = ndimage.shift(voxels[k].astype(np.float32), (shift_rows[k], shift_cols[k]),
                                order=1, mode="constant", cval=float(blank))
        out[k] = _cast(shifted, voxels.dtype)
    return out


def _resample(voxels: np.ndarray, along: np.ndarray, spacing: float) -> tuple[np.ndarray, int]:
    count = int(math.floor((along[-1] - along[0]) / spacing + 1e-6)) + 1
    targets = along[0] + spacing * np.arange(count)
    upper = np.clip(np.searchsorted(along, targets, side="right"), 1, len(along) - 1)
    lower = upper - 1
    weight = ((targets - along[lower]) / (along[upper] - along[lower])).astype(np.float32)
    out = np.empty((count,) + voxels.shape[1:], voxels.dtype)
    for i in range(count):
        w = float(np.clip(weight[i], 0.0, 1.0))
        a, b = voxels[lower[i]], voxels[upper[i]]
        if w <= 1e-6:
            out[i] = a
        elif w >= 1 - 1e-6:
            out[i] = b
        else:
            out[i] = _cast(a.astype(np.float32) * (1 - w) + b.astype(np.float32) * w, voxels.dtype)
    return out, count


def _cast(values: np.ndarray, dtype) -> np.ndarray:
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)

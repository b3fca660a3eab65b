"""Convert phantom images to stored DICOM values and 8-bit display images.

The windowing here mirrors the linear VOI function of DICOM PS3.3
C.11.2.1.2.1 (the one :func:`pydicom.pixels.apply_voi_lut` implements); it
exists only so the generator can write display PNGs without building a
dataset first, and the tests check it against pydicom.
"""

from __future__ import annotations

import numpy as np

from medviewer.synthetic.dicom_writer import MAX_STORED

CT_RESCALE_INTERCEPT = -1024


def density_to_stored(density: np.ndarray) -> np.ndarray:
    """Map a display-convention image in [0, 1] to 12-bit MONOCHROME2 stored values."""
    stored = np.rint(np.clip(density, 0.0, 1.0) * np.float32(MAX_STORED))
    return stored.astype(np.uint16)


def auto_window(stored: np.ndarray) -> tuple[float, float]:
    """Return a (center, width) window spanning the 1st-99.5th percentile of the image.

    Like a modality's default presentation: it ignores the few brightest and
    darkest pixels.  A sub-sample is enough and keeps it fast.
    """
    low, high = np.percentile(stored[::3, ::3], [1.0, 99.5])
    width = max(float(high - low), 64.0)
    return float(np.round((low + high) / 2.0)), float(np.round(width))


def to_monochrome1(stored: np.ndarray, window: tuple[float, float]) -> tuple[np.ndarray, tuple]:
    """Invert stored values and window for MONOCHROME1, keeping the displayed picture.

    With center ``c`` for MONOCHROME2, the linear VOI function of the inverted
    values is exactly one minus the original when the new center is
    ``MAX_STORED + 1 - c``.
    """
    inverted = (np.uint16(MAX_STORED) - stored).astype(np.uint16)
    center, width = window
    return inverted, (float(MAX_STORED + 1 - center), float(width))


def window_to_uint8(stored: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Apply a linear DICOM window to MONOCHROME2 values and return 8-bit display values."""
    center, width = window
    scaled = (stored.astype(np.float32) - np.float32(center - 0.5)) / np.float32(width - 1.0)
    scaled += np.float32(0.5)
    np.clip(scaled, 0.0, 1.0, out=scaled)
    return np.rint(scaled * np.float32(255.0)).astype(np.uint8)


def hu_to_stored(hu: np.ndarray) -> np.ndarray:
    """Map Hounsfield units to stored values for Rescale Intercept -1024, 12 bits."""
    return np.clip(hu.astype(np.int32) - CT_RESCALE_INTERCEPT, 0, MAX_STORED).astype(np.uint16)

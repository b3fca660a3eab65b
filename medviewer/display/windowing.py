"""VOI windowing and window/level presets.

The window maths is pydicom's :func:`pydicom.pixels.apply_windowing`
(PS3.3 C.11.2.1.2, LINEAR, LINEAR_EXACT and SIGMOID); this module only wraps it
to give display values in [0, 1], and supplies the presets radiologists expect.
The viewer gives pyqtgraph the same linear levels (see :func:`linear_levels`),
so what the CLI renders and what the screen shows agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """A VOI window: centre and width in modality units, with a name."""

    center: float
    width: float
    name: str = ""
    function: str = "LINEAR"


# Conventional presets (centre, width) in HU for CT; the radiograph default is data-driven.
PRESETS: dict[str, Window] = {
    "lung": Window(-600.0, 1500.0, "CT lung"),
    "mediastinum": Window(50.0, 350.0, "CT mediastinum"),
    "bone": Window(400.0, 1800.0, "CT bone"),
    "brain": Window(40.0, 80.0, "CT brain"),
    "abdomen": Window(50.0, 400.0, "CT abdomen"),
}
# Number keys 1-5 select these, 6 the radiograph/auto default, 0 the header window.
PRESET_KEYS = {"1": "lung", "2": "mediastinum", "3": "bone", "4": "brain", "5": "abdomen"}


def preset_applies(name: str, units: str) -> bool:
    """Return whether a named preset means anything for an image in ``units``.

    The presets are Hounsfield-unit windows: on a radiograph (raw detector values)
    "lung" turns the film white.  ``auto`` and ``header`` apply to everything.
    """
    if name not in PRESETS:
        return True
    return units == "HU"


def auto_window(values: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5) -> Window:
    """Return a window spanning the central percentiles of the image (radiograph default)."""
    sample = values[::4, ::4] if values.ndim == 2 and values.size > 65536 else values
    low, high = np.percentile(sample, [low_pct, high_pct])
    if high <= low:
        high = low + 1.0
    return Window((low + high) / 2.0, float(high - low), "auto")


def default_window(values: np.ndarray, header: list | None = None) -> Window:
    """Return the header's first window, or the percentile window when there is none."""
    if header:
        first = header[0]
        return Window(first.center, first.width, first.explanation or "header", first.function)
    return auto_window(values)


def window_to_unit(values: np.ndarray, window: Window) -> np.ndarray:
    """Apply a VOI window with pydicom's function; return float32 in [0, 1].

    Parameters
    ----------
    values : numpy.ndarray
        Modality values (after the modality LUT).
    window : Window
    """
    from pydicom.dataset import Dataset
    from pydicom.pixels import apply_windowing

    # A minimal VOI LUT module: unsigned 16-bit output range, no rescale (values
    # are already modality values), so the output is 0..65535 exactly.
    voi = Dataset()
    voi.PhotometricInterpretation = "MONOCHROME2"
    voi.BitsStored = 16
    voi.PixelRepresentation = 0
    voi.WindowCenter = float(window.center)
    voi.WindowWidth = max(float(window.width), 1.0)
    voi.VOILUTFunction = window.function
    out = apply_windowing(np.asarray(values, dtype=np.float64), voi)
    return (out / 65535.0).astype(np.float32)


def to_display_uint8(values: np.ndarray, window: Window, invert: bool = False) -> np.ndarray:
    """Window modality values to 8-bit display grey, inverted for MONOCHROME1 or on request."""
    unit = window_to_unit(values, window)
    if invert:
        unit = 1.0 - unit
    return np.round(unit * 255.0).astype(np.uint8)


def linear_levels(window: Window) -> tuple[float, float]:
    """Return the (black, white) modality values of a LINEAR window, for pyqtgraph levels.

    PS3.3 C.11.2.1.2.1: values at or below ``c - 0.5 - (w - 1) / 2`` are black,
    above ``c - 0.5 + (w - 1) / 2`` white, linear between.
    """
    if window.function == "LINEAR_EXACT":
        return window.center - window.width / 2.0, window.center + window.width / 2.0
    half = (max(window.width, 1.0) - 1.0) / 2.0
    low, high = window.center - 0.5 - half, window.center - 0.5 + half
    if high <= low:
        high = low + 1e-3
    return low, high

"""Scale bar length: a round number of millimetres that fits the viewport."""

from __future__ import annotations

import math

# Bar lengths a reader can read at a glance: 1, 2 or 5 times a power of ten.
_STEPS = (1.0, 2.0, 5.0)


def scale_bar_length(mm_per_pixel: float, max_pixels: float) -> tuple[float, str] | None:
    """Return the longest round length (mm) no longer than ``max_pixels`` on screen, and its label.

    Parameters
    ----------
    mm_per_pixel : float
        Millimetres per screen pixel at the current zoom.
    max_pixels : float
        The longest the bar may be on screen.

    Returns
    -------
    (float, str) or None
        Length in mm and a label (``"5 mm"``, ``"2 cm"``); ``None`` when nothing fits.
    """
    if not (mm_per_pixel > 0 and max_pixels > 0) or not math.isfinite(mm_per_pixel):
        return None
    longest = mm_per_pixel * max_pixels
    power = 10.0 ** math.floor(math.log10(longest))
    best = None
    for scale in (power / 10.0, power):
        for step in _STEPS:
            length = step * scale
            if length <= longest:
                best = length
    if best is None or best < 1e-3:
        return None
    if best >= 10.0:
        label = f"{best / 10.0:g} cm"
    else:
        label = f"{best:g} mm"
    return best, label

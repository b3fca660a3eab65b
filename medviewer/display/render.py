"""Render one frame to 8-bit display pixels, exactly as the viewer shows it (without zoom)."""

from __future__ import annotations

import numpy as np

from medviewer.dicom.pixels import DecodedImage
from medviewer.display.windowing import PRESETS, Window, default_window, to_display_uint8


# CT without a header window: a soft-tissue window, because a percentile window
# is stretched by the -2000/-3024 padding outside the scan field.
CT_DEFAULT = Window(40.0, 400.0, "CT soft tissue")


def initial_window(image: DecodedImage, frame: int) -> Window:
    """Return the window an image opens with: the header's, CT soft tissue, or auto."""
    if not image.windows and image.units == "HU":
        return CT_DEFAULT
    return default_window(image.frames[frame], image.windows)


def resolve_window(image: DecodedImage, frame: int, window: Window | None = None,
                   preset: str | None = None) -> Window:
    """Pick the window to show: explicit, then a named preset, then the header or auto window."""
    if window is not None:
        return window
    if preset:
        if preset in ("auto", "radiograph", "default"):
            from medviewer.display.windowing import auto_window

            return auto_window(image.frames[frame])
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose from "
                             f"{', '.join(sorted(PRESETS))}, auto")
        return PRESETS[preset]
    return initial_window(image, frame)


def render_frame(image: DecodedImage, frame: int = 0, window: Window | None = None,
                 preset: str | None = None, invert: bool = False) -> np.ndarray:
    """Return ``(rows, cols)`` uint8 grey or ``(rows, cols, 3)`` uint8 RGB display pixels.

    MONOCHROME1 images are inverted so that bright means dense, as on a film;
    ``invert`` inverts once more (the viewer's invert key).
    """
    if not 0 <= frame < image.frame_count:
        raise IndexError(f"frame {frame} out of range (the image has {image.frame_count})")
    if image.is_color:
        rgb = image.frames[frame]
        return 255 - rgb if invert else rgb.copy()
    chosen = resolve_window(image, frame, window, preset)
    flip = (image.photometric == "MONOCHROME1") != bool(invert)
    return to_display_uint8(image.frames[frame], chosen, invert=flip)


def thumbnail(image: DecodedImage, frame: int, size: int) -> np.ndarray:
    """Return a frame rendered as the viewer opens it, subsampled to about ``size`` pixels."""
    pixels = render_frame(image, frame)
    step = max(1, max(pixels.shape[:2]) // size)
    return np.ascontiguousarray(pixels[::step, ::step])


def save_png(pixels: np.ndarray, path: str) -> None:
    """Write display pixels to a PNG file."""
    from PIL import Image

    Image.fromarray(pixels).save(path)

"""Colour a map with a perceptually uniform colour map, blend it over the image, add a colour bar.

Used by ``medviewer explain --out FILE.png`` and by the overlay panel's
thumbnails (numpy and Pillow only).  The colour map is viridis (van der Walt,
Smith and Firing for matplotlib, 2015; CC0): lightness rises monotonically, so
brighter always means a higher value, also in greyscale print and for
colour-blind readers.  Pixels below ``threshold`` are left uncoloured, and
the colour fades in over the lowest ``FADE`` of the range (the colour bar
shows the same fade), so the lowest values do not tint the whole film.
"""

from __future__ import annotations

import numpy as np

# viridis at 33 evenly spaced stops (every 8th entry of the 256-entry table shipped
# with matplotlib and pyqtgraph); linear interpolation between them differs from
# the full table by at most 1.6 / 255.
_VIRIDIS_STOPS = np.array([
    (68, 1, 84), (71, 13, 96), (72, 24, 106), (72, 35, 116), (71, 45, 123), (69, 55, 129),
    (66, 64, 134), (62, 73, 137), (59, 82, 139), (55, 91, 141), (51, 99, 141), (47, 107, 142),
    (44, 114, 142), (41, 122, 142), (38, 130, 142), (35, 137, 142), (33, 145, 140),
    (31, 151, 139), (31, 159, 136), (33, 166, 133), (39, 173, 129), (49, 181, 123),
    (61, 188, 116), (76, 194, 108), (92, 200, 99), (110, 206, 88), (129, 211, 77),
    (149, 216, 64), (170, 220, 50), (192, 223, 37), (213, 226, 26), (234, 229, 26),
    (253, 231, 37),
], dtype=np.float64)

NOTE = "Shows model behaviour, not lesion localisation."
FADE = 0.25


def viridis_lut(entries: int = 256) -> np.ndarray:
    """Return an (entries, 3) uint8 viridis lookup table."""
    x = np.linspace(0.0, 1.0, entries)
    stops = np.linspace(0.0, 1.0, len(_VIRIDIS_STOPS))
    lut = np.stack([np.interp(x, stops, _VIRIDIS_STOPS[:, c]) for c in range(3)], axis=1)
    return np.round(lut).astype(np.uint8)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Return a display image (grey uint8/float, or RGB) as (rows, cols, 3) uint8."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        top = float(arr.max()) if arr.size else 1.0
        scale = 255.0 if top <= 1.0 + 1e-6 else 1.0
        arr = np.clip(arr.astype(np.float64) * scale, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        return np.repeat(arr[..., None], 3, axis=2)
    return np.ascontiguousarray(arr[..., :3])


def overlay_alpha(values: np.ndarray, opacity: float, threshold: float = 0.0,
                  fade: float = FADE) -> np.ndarray:
    """Return the overlay's opacity per value: 0 below ``threshold``, ramping up over ``fade``."""
    values = np.asarray(values, dtype=np.float64)
    ramp = np.clip(values / fade, 0.0, 1.0) if fade > 0 else np.ones_like(values)
    return np.where(values >= threshold, float(opacity) * ramp, 0.0)


def blend(image: np.ndarray, image_map: np.ndarray, *, opacity: float = 0.5,
          threshold: float = 0.0) -> np.ndarray:
    """Return the image with the map blended over it, (rows, cols, 3) uint8.

    Parameters
    ----------
    image : np.ndarray
        Display image, same (rows, cols) as the map.
    image_map : np.ndarray
        Values in [0, 1].
    opacity : float
        Weight of the colour where it is shown.
    threshold : float
        Values below it are not coloured.
    """
    base = to_rgb(image).astype(np.float64)
    values = np.clip(np.nan_to_num(np.asarray(image_map, dtype=np.float64)), 0.0, 1.0)
    if values.shape != base.shape[:2]:
        raise ValueError(f"map {values.shape} and image {base.shape[:2]} differ in size")
    colours = viridis_lut()[np.round(values * 255).astype(int)].astype(np.float64)
    alpha = overlay_alpha(values, opacity, threshold)[..., None]
    return np.round(base * (1 - alpha) + colours * alpha).astype(np.uint8)


def colour_bar(height: int, *, title: str = "", threshold: float = 0.0, opacity: float = 1.0,
               width: int | None = None) -> np.ndarray:
    """Return a legend panel (height, width, 3) uint8: colour bar (as blended over grey), ticks, title."""
    from PIL import Image, ImageDraw, ImageFont

    font_size = max(10, min(18, height // 28))
    width = width or max(64, 5 * font_size)
    panel = Image.new("RGB", (width, height), (20, 22, 26))
    draw = ImageDraw.Draw(panel)
    font = ImageFont.load_default(size=font_size)
    top, bottom = font_size * 2 + 6, height - font_size - 8
    bar_w = max(8, width // 5)
    span = max(bottom - top, 1)
    lut = viridis_lut()
    grey = np.array([128.0, 128.0, 128.0])
    for y in range(top, bottom + 1):
        value = 1.0 - (y - top) / span
        alpha = float(overlay_alpha(np.array(value), max(opacity, 0.75), threshold))
        colour = tuple(int(round(v)) for v in grey * (1 - alpha) + lut[int(round(value * 255))] * alpha)
        draw.line([(6, y), (6 + bar_w, y)], fill=colour)
    for value, text in ((1.0, "1 high"), (0.5, "0.5"), (0.0, "0 low")):
        y = top + (1.0 - value) * span
        draw.line([(6 + bar_w, y), (10 + bar_w, y)], fill=(220, 220, 220))
        draw.text((13 + bar_w, y - font_size / 2), text, fill=(220, 220, 220), font=font)
    if threshold > 0:
        y = top + (1.0 - threshold) * span
        draw.line([(2, y), (10 + bar_w, y)], fill=(255, 255, 255), width=2)
    if title:
        draw.text((4, 2), title, fill=(235, 235, 235), font=font)
    return np.asarray(panel)


def outline_seen(pixels: np.ndarray, seen: np.ndarray, colour=(201, 162, 39), dash: int = 6) -> np.ndarray:
    """Draw a dashed rectangle around the part of the image the model saw (when it is not all of it)."""
    if seen is None or seen.all() or not seen.any():
        return pixels
    out = pixels.copy()
    rows, cols = np.flatnonzero(seen.any(axis=1)), np.flatnonzero(seen.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1], cols[0], cols[-1]
    on_c = (np.arange(c0, c1 + 1) // dash) % 2 == 0
    on_r = (np.arange(r0, r1 + 1) // dash) % 2 == 0
    for r in (r0, r1):
        out[r, c0:c1 + 1][on_c] = colour
    for c in (c0, c1):
        out[r0:r1 + 1, c][on_r] = colour
    return out


MIN_COMPOSED_SIDE = 384


def _upscale(pixels: np.ndarray, factor: int) -> np.ndarray:
    """Return pixels enlarged by an integer factor, each pixel a block (no new detail is invented)."""
    return pixels if factor <= 1 else np.repeat(np.repeat(pixels, factor, axis=0), factor, axis=1)


def wrap_text(text: str, font, width: float) -> list[str]:
    """Return ``text`` broken into lines no wider than ``width`` pixels in ``font``."""
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and font.getlength(trial) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + ([line] if line else [])


def compose(image: np.ndarray, image_map: np.ndarray, *, opacity: float = 0.5, threshold: float = 0.0,
            title: str = "", note: str = NOTE, legend: bool = True,
            seen: np.ndarray | None = None, notes: tuple[str, ...] = ()) -> np.ndarray:
    """Return the blended image with a colour bar on the right and the note below, as RGB uint8.

    ``seen`` (the pixels inside the model's centre crop) adds a dashed outline
    of the region the model looked at.  An image smaller than
    :data:`MIN_COMPOSED_SIDE` is enlarged by whole pixel blocks first, and
    every line of text is wrapped to the panel's width, so the legend and the
    note stay legible and whole on a 64 px image.  ``notes`` are extra lines
    (e.g. "does not apply", "the map has no structure").
    """
    from PIL import Image, ImageDraw, ImageFont

    blended = outline_seen(blend(image, image_map, opacity=opacity, threshold=threshold), seen)
    if not legend:
        return blended
    factor = int(np.ceil(MIN_COMPOSED_SIDE / max(blended.shape[:2]))) if max(blended.shape[:2]) < MIN_COMPOSED_SIDE else 1
    blended = _upscale(blended, factor)
    rows, cols = blended.shape[:2]
    bar = colour_bar(rows, threshold=threshold, opacity=opacity, width=max(72, cols // 6))
    body = np.concatenate([blended, bar], axis=1)
    font_size = max(12, min(18, body.shape[1] // 40))
    font = ImageFont.load_default(size=font_size)
    wrapped = []  # (text, colour)
    for i, text in enumerate(t for t in (title, *notes, note) if t):
        colour = (235, 235, 235) if i == 0 and title else (201, 162, 39)
        wrapped += [(line, colour) for line in wrap_text(text, font, body.shape[1] - 12)]
    footer = Image.new("RGB", (body.shape[1], (font_size + 6) * len(wrapped) + 6), (20, 22, 26))
    draw = ImageDraw.Draw(footer)
    for i, (text, colour) in enumerate(wrapped):
        draw.text((6, 4 + i * (font_size + 6)), text, fill=colour, font=font)
    return np.concatenate([body, np.asarray(footer)], axis=0)


def save_png(pixels: np.ndarray, path: str) -> None:
    """Write an RGB uint8 array to a PNG file."""
    from PIL import Image

    Image.fromarray(pixels).save(path)

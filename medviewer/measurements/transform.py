"""Map measurement points between the stored frame and the frame as shown (rotated, flipped).

The viewport shows ``flip(rot90(frame, k=-turns))``: clockwise quarter turns, then
the horizontal and vertical flips.  Points are continuous pixel coordinates
``(column, row)`` with the image's top-left corner at (0, 0).
"""

from __future__ import annotations

from collections.abc import Iterable


def to_display(points: Iterable[tuple[float, float]], shape: tuple[int, int], rotation: int,
               flip_horizontal: bool, flip_vertical: bool) -> list[tuple[float, float]]:
    """Return stored-frame points as they lie on the shown frame.

    Parameters
    ----------
    shape : (int, int)
        (rows, columns) of the stored frame.
    """
    rows, cols = shape
    out = []
    for x, y in points:
        h, w = rows, cols
        for _ in range((rotation // 90) % 4):
            # One clockwise turn: the left edge becomes the top; the frame becomes w x h.
            x, y = h - y, x
            h, w = w, h
        if flip_horizontal:
            x = w - x
        if flip_vertical:
            y = h - y
        out.append((x, y))
    return out


def to_stored(points: Iterable[tuple[float, float]], shape: tuple[int, int], rotation: int,
              flip_horizontal: bool, flip_vertical: bool) -> list[tuple[float, float]]:
    """Return points on the shown frame as stored-frame points (the inverse of :func:`to_display`)."""
    rows, cols = shape
    turns = (rotation // 90) % 4
    h, w = (cols, rows) if turns % 2 else (rows, cols)  # the shown frame's size
    out = []
    for x, y in points:
        hh, ww = h, w
        if flip_vertical:
            y = hh - y
        if flip_horizontal:
            x = ww - x
        for _ in range(turns):
            # Undo one clockwise turn: (x, y) on a ww x hh frame came from (y, ww - x).
            x, y = y, ww - x
            hh, ww = ww, hh
        out.append((x, y))
    return out

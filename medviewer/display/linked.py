"""Relative window/level linking: one adjustment applied to each image's own window.

Linking absolute values (one centre and width for every image) washes out or
blackens images whose pixel range differs from the one the reader adjusted.
A relative link instead keeps each image's own default window (header window,
CT default or percentile window) and applies the same *relative* change to it:
the width is scaled by one factor and the centre moves by the same fraction of
the image's own width.  The identity adjustment shows each image as it opens.
"""

from __future__ import annotations

from dataclasses import dataclass

from medviewer.display.windowing import Window

MIN_SCALE = 0.02
MAX_SCALE = 50.0


@dataclass(frozen=True)
class WindowAdjustment:
    """A relative window change: ``width * scale``, ``center + shift * width``.

    Attributes
    ----------
    scale : float
        Width factor (1 = as opened).
    shift : float
        Centre shift in units of the image's own default width (0 = as opened).
    """

    scale: float = 1.0
    shift: float = 0.0

    @property
    def is_identity(self) -> bool:
        """Whether every image shows its own default window."""
        return self.scale == 1.0 and self.shift == 0.0

    def dragged(self, dx: float, dy: float, pixels_per_unit: float = 256.0) -> WindowAdjustment:
        """Return the adjustment after a window/level drag of ``(dx, dy)`` screen pixels.

        Right widens, down darkens (raises the centre), as in the viewer.
        """
        scale = min(MAX_SCALE, max(MIN_SCALE, self.scale * 2.0 ** (2.0 * dx / pixels_per_unit)))
        shift = self.shift - 2.0 * dy / pixels_per_unit * self.scale
        return WindowAdjustment(scale, shift)

    def apply(self, base: Window) -> Window:
        """Return ``base`` (an image's own window) with this adjustment."""
        if self.is_identity:
            return base
        width = max(1e-6, base.width * self.scale)
        return Window(base.center + self.shift * base.width, width, "linked", base.function)

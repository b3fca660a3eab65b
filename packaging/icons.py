"""Render the application icons from ``medviewer/resources/medviewer.svg``.

The build makes them fresh each time (PNG 16-512 px for the Linux icon
theme, ``.ico`` for Windows, ``.icns`` for macOS), so no generated binary is
committed and the icons can never drift from the SVG.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# Pillow builds every .icns size from the largest image it is given.
ICNS_SIZE = 1024


@dataclass(frozen=True)
class IconSet:
    """The rendered icons.

    Attributes
    ----------
    pngs : dict of int to Path
        One PNG per size in :data:`PNG_SIZES`.
    ico : Path
        Windows icon with every size in :data:`ICO_SIZES`.
    icns : Path
        macOS icon.
    svg : Path
        The source, for the ``scalable`` icon-theme folder.
    """

    pngs: dict[int, Path]
    ico: Path
    icns: Path
    svg: Path


def render_png(svg: Path, size: int, out: Path) -> Path:
    """Render ``svg`` to a square transparent PNG of ``size`` pixels; return ``out``."""
    # QtSvg renders into a QImage without a QGuiApplication, so this works
    # inside the PyInstaller process and on a machine without a display.
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg} is not a valid SVG file")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    out.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(out), "PNG"):
        raise OSError(f"could not write {out}")
    return out


def make_icons(svg: Path, out_dir: Path) -> IconSet:
    """Render the PNG set, the ``.ico`` and the ``.icns`` of ``svg`` into ``out_dir``."""
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    pngs = {size: render_png(svg, size, out_dir / f"medviewer-{size}.png") for size in PNG_SIZES}
    # Each .ico size from its own rendering: downscaling one large bitmap blurs the 16 px icon.
    ico_images = [Image.open(pngs[size]) for size in ICO_SIZES]
    ico = out_dir / "medviewer.ico"
    ico_images[-1].save(ico, format="ICO", sizes=[(s, s) for s in ICO_SIZES],
                        append_images=ico_images[:-1])
    large = render_png(svg, ICNS_SIZE, out_dir / f"medviewer-{ICNS_SIZE}.png")
    icns = out_dir / "medviewer.icns"
    Image.open(large).save(icns, format="ICNS")
    return IconSet(pngs=pngs, ico=ico, icns=icns, svg=svg)

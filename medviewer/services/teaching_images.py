"""Teaching key images as pixels: stored window, blackout, the overlay that was on screen.

The quiz (app and CLI) and the export draw key images from here, so a quiz never
needs to show where an image lives: the CLI writes neutral file names
(``question-3-1.png``) and the app shows pixels.  An overlay shown when a case was
added (a saliency or attention map) is kept as a ``.npy`` map beside the library,
named by the key image's id, never by anything of the patient.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medviewer.fileio import atomic_write_bytes
from medviewer.teaching.models import KeyImage

_log = logging.getLogger(__name__)


def overlay_folder(library_path: str | Path) -> Path:
    """Return the folder of a library's stored key-image overlays."""
    library_path = Path(library_path)
    return library_path.parent / f"{library_path.stem}-teaching-overlays"


def overlay_path(library_path: str | Path, key_image_id: int) -> Path:
    """Return the map file of a key image's overlay."""
    return overlay_folder(library_path) / f"key-{int(key_image_id)}.npy"


def save_overlay_map(library_path: str | Path, key_image_id: int, image_map) -> Path:
    """Keep an overlay map (values in [0, 1], the image's pixel grid) for a key image."""
    values = np.clip(np.nan_to_num(np.asarray(image_map, dtype=np.float32)), 0.0, 1.0)
    if values.ndim != 2:
        raise ValueError(f"an overlay map is 2-D, not {values.shape}")
    buffer = io.BytesIO()
    np.save(buffer, values)
    path = overlay_path(library_path, key_image_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(path, buffer.getvalue())


def load_overlay_map(library_path: str | Path, key_image_id: int) -> np.ndarray | None:
    """Return a key image's stored overlay map, or None."""
    path = overlay_path(library_path, key_image_id)
    if not path.is_file():
        return None
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        _log.warning("overlay map %s unreadable: %s", path, exc)
        return None


def _fit(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resample a map to ``shape`` (nearest), for a map made on another grid."""
    if values.shape == shape:
        return values
    rows = np.minimum((np.arange(shape[0]) * values.shape[0] / shape[0]).astype(int),
                      values.shape[0] - 1)
    cols = np.minimum((np.arange(shape[1]) * values.shape[1] / shape[1]).astype(int),
                      values.shape[1] - 1)
    return values[np.ix_(rows, cols)]


def library_overlay_renderer(library_path: str | Path):
    """Return an :data:`~medviewer.teaching.package.OverlayRenderer` for stored maps."""
    from medviewer.explain.render import blend

    def render(key: KeyImage, pixels: np.ndarray, _image) -> np.ndarray | None:
        values = load_overlay_map(library_path, key.id) if key.id else None
        if values is None:
            return None
        return blend(pixels, _fit(values, pixels.shape[:2]), opacity=0.45)

    return render


def black_out(pixels: np.ndarray, rectangles: Sequence[Sequence[int]]) -> np.ndarray:
    """Return display pixels with ``(x, y, width, height)`` rectangles set to black."""
    out = pixels.copy()
    for x, y, w, h in rectangles:
        out[max(0, y):max(0, y + h), max(0, x):max(0, x + w)] = 0
    return out


def render_key_image(key: KeyImage, *, with_overlay: bool = False,
                     library_path: str | Path | None = None) -> np.ndarray:
    """Return a key image as display pixels: its window, its blackout, and its overlay if asked.

    Call from a worker thread (it decodes the image).
    """
    from medviewer.dicom.pixels import decode
    from medviewer.dicom.sources import FileRef
    from medviewer.display.render import render_frame
    from medviewer.display.windowing import Window

    image = decode(FileRef.from_display(key.location))
    window = (Window(key.window_center, key.window_width, "as shown")
              if key.window_center is not None and key.window_width else None)
    pixels = render_frame(image, min(key.frame, image.frame_count - 1), window=window)
    pixels = black_out(pixels, key.blackout)
    if with_overlay and key.overlay and library_path is not None:
        drawn = library_overlay_renderer(library_path)(key, pixels, image)
        pixels = pixels if drawn is None else drawn
    return pixels


def may_show_identity(key: KeyImage) -> str:
    """Return why a key image's pixels may show identifying text ("" when none is known).

    Blackout rectangles stored with the key image count as the author's answer to it.
    """
    from medviewer.deid import assess_burned_in
    from medviewer.dicom.sources import RASTER_SUFFIXES, FileRef

    ref = FileRef.from_display(key.location)
    if key.blackout or ref.suffix in RASTER_SUFFIXES:
        return ""
    from pydicom import dcmread

    try:
        with ref.open() as fh:
            found = assess_burned_in(dcmread(fh, stop_before_pixels=True, force=True))
    except Exception:  # noqa: BLE001 - an unreadable header: the decode will say why
        return ""
    return "; ".join(found.reasons) if found.flagged else ""


def write_question_images(keys: Sequence[KeyImage], folder: str | Path, number: int) -> list[Path]:
    """Write a quiz question's images as ``question-<n>-<k>.png``; return their paths.

    The names say nothing of the patient (the library path of an image may hold an MRN).
    """
    from medviewer.display.render import save_png

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k, key in enumerate(keys, start=1):
        if may_show_identity(key):
            continue  # withheld: burned-in text may name the patient
        path = folder / f"question-{int(number)}-{k}.png"
        save_png(render_key_image(key), str(path))
        out.append(path)
    return out

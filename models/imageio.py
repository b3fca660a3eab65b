"""Read training images as displayed images (the input that ``preprocess_image`` expects)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_image(path: str | Path) -> np.ndarray:
    """Return an image's first frame as MedViewer displays it (uint8 grey or RGB).

    Every file goes through the viewer's own decode and render steps
    (``medviewer.dicom.pixels.decode``, ``medviewer.display.render.render_frame``:
    modality LUT, header or percentile window, MONOCHROME1 inversion; PNG/JPEG
    over their full range), the same path ``medviewer classify`` uses, so a
    model is trained on exactly what the app will show it.
    """
    from medviewer.dicom.pixels import decode
    from medviewer.dicom.sources import FileRef
    from medviewer.display.render import render_frame

    return render_frame(decode(FileRef.for_path(path)), 0)

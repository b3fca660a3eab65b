"""Read training images as displayed images (the input that ``preprocess_image`` expects)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

RASTER = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def load_image(path: str | Path) -> np.ndarray:
    """Return the image as displayed: PNG/JPEG pixels, or DICOM after LUTs and window.

    DICOM goes through the app's loader (``medviewer.images.loader`` when
    present, else the classify command's minimal one), so a model sees
    DICOM exactly as MedViewer shows it.
    """
    path = Path(path)
    if path.suffix.lower() in RASTER:
        with Image.open(path) as img:
            if img.mode not in ("L", "I;16", "I;16B", "I", "F", "RGB", "RGBA"):
                img = img.convert("L")
            return np.asarray(img)
    try:
        from medviewer.images.loader import load_display_image  # the lead's loader, once it exists
    except ImportError:
        from medviewer.cli.classify_cmd import load_display_image
    return load_display_image(path)

"""DICOM SEG: the masks of a segmentation per source image, read with highdicom.

Only what display needs: for each referenced image (SOP Instance UID) a
``(segments, rows, columns)`` boolean mask, the segments' labels and colours.
Fractional segmentations are thresholded at one half.  The referenced series is
given so the viewer can say in words when it is not on screen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medviewer.errors import MedViewerError

# Distinct, colour-blind-safe colours (Okabe-Ito) for segments without a recommended colour.
PALETTE = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178),
           (213, 94, 0), (204, 121, 167)]


class SegmentationError(MedViewerError):
    """A file that is not a readable DICOM SEG."""


@dataclass
class Segmentation:
    """Masks of a DICOM SEG, by source image."""

    masks: dict[str, np.ndarray]
    labels: list[str]
    colours: list[tuple[int, int, int]]
    series_uids: set[str]

    def mask_for(self, sop_uid: str) -> np.ndarray | None:
        """Return the (segments, rows, columns) mask drawn on one image, if any."""
        return self.masks.get(sop_uid)


def read_segmentation(path) -> Segmentation:
    """Read a DICOM SEG file.

    Raises
    ------
    SegmentationError
        Not a SEG, or one highdicom cannot read.
    """
    import highdicom as hd

    try:
        seg = hd.seg.segread(str(path))
    except Exception as exc:  # noqa: BLE001 - pydicom/highdicom raise many types
        raise SegmentationError(f"not a readable DICOM SEG ({exc})", path=str(path),
                                hint="choose a Segmentation Storage file") from exc
    numbers = list(seg.segment_numbers)
    labels = [str(seg.get_segment_description(n).segment_label) for n in numbers]
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(numbers))]
    sources = seg.get_source_image_uids()
    masks = {}
    for _study, _series, sop in sources:
        pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=[sop],
                                                   segment_numbers=numbers,
                                                   combine_segments=False)
        masks[str(sop)] = np.moveaxis(np.asarray(pixels[0]) > 0.5, -1, 0)
    return Segmentation(masks, labels, colours, {str(s[1]) for s in sources})


def colour_overlay(mask: np.ndarray, colours, alpha: int = 110) -> np.ndarray:
    """Return an RGBA uint8 image painting each segment in its colour (later segments on top)."""
    rows, cols = mask.shape[1:]
    out = np.zeros((rows, cols, 4), np.uint8)
    for segment, colour in zip(mask, colours, strict=False):
        out[segment] = (*colour, alpha)
    return out

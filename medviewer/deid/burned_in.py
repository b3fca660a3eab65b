"""Burned-in text: flag images that may show identity in their pixels, and black out regions.

References
----------
DICOM PS3.3 C.7.6.1.1.7 (0028,0301) Burned In Annotation; PS3.15 E.3.1 "Clean Pixel
Data Option" (113101): "any information encoded in the Pixel Data ... shall be
removed"; E.1.1 note 5: the de-identifier must ensure that no burned-in
identification remains, and finding it is outside the scope of the standard.

The header cannot prove an image is clean, so :func:`assess_burned_in` errs
toward flagging: it names every reason it found, from the header's own claim to
modalities and kinds of object known to carry text (ultrasound, secondary
capture, screen saves and dose reports of CT consoles, fluoroscopy overlays).
:func:`blackout` then overwrites rectangles of the stored pixel values; the user
chooses them after looking at the image.  Compressed pixel data is decoded first
and written back uncompressed (Explicit VR Little Endian), since re-encoding in
a lossy syntax would alter the rest of the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.uid import ExplicitVRLittleEndian

from medviewer.deid.errors import DeidError, RegionError

# Modalities whose images routinely carry burned-in text or graphics.
TEXT_MODALITIES = {
    "US": "ultrasound images carry patient and exam text",
    "IVUS": "intravascular ultrasound carries exam text",
    "SC": "secondary capture (screenshots, scanned documents)",
    "OT": "modality 'other' is often a screenshot or scanned form",
    "DOC": "a scanned or encapsulated document",
    "ES": "endoscopy video frames carry annotations",
    "XC": "external camera photographs may show faces or wristbands",
    "GM": "general microscopy slide labels",
    "SM": "slide microscopy label images",
    "RF": "fluoroscopy consoles burn in patient text",
    "XA": "angiography consoles burn in patient text",
    "PX": "panoramic dental radiographs often carry text",
    "IO": "intra-oral radiographs may carry text",
}
# SOP classes of captured screens and documents (PS3.4 B.5).
TEXT_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.1": "Multi-frame Single Bit Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.7.2": "Multi-frame Grayscale Byte Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.7.3": "Multi-frame Grayscale Word Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.7.4": "Multi-frame True Color Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.104.1": "Encapsulated PDF",
    "1.2.840.10008.5.1.4.1.1.6.1": "Ultrasound Image Storage",
    "1.2.840.10008.5.1.4.1.1.3.1": "Ultrasound Multi-frame Image Storage",
    "1.2.840.10008.5.1.4.1.1.77.1.4": "VL Photographic Image Storage",
}
# (0008,0008) Image Type values of console screen saves and reports.
TEXT_IMAGE_TYPES = {"SCREEN SAVE", "SECONDARY", "DOSE INFO", "DOSE REPORT", "CSA REPORT",
                    "SCREEN CAPTURE", "REPORT"}
# Words in series/image descriptions of dose screens and scanned forms.
TEXT_DESCRIPTION_WORDS = ("DOSE", "SCREEN", "REPORT", "PATIENT PROTOCOL", "SCANNED",
                          "REQUISITION", "SUMMARY", "EXAM PROTOCOL")
# (0008,0064) Conversion Type values that mean a captured screen or scanned paper.
TEXT_CONVERSIONS = {"WSD": "workstation screen capture", "DF": "digitized film",
                    "DI": "digital interface", "SD": "scanned document", "SI": "scanned image",
                    "DRW": "drawing", "SYN": "synthetic image"}
# Manufacturers (upper case, prefix) whose ultrasound and fluoroscopy units are known
# to burn identification into every frame unless configured otherwise.
TEXT_MANUFACTURERS = ("ACUSON", "ALOKA", "ESAOTE", "MINDRAY", "SONOSITE", "ZONARE",
                      "SAMSUNG MEDISON", "MEDISON", "SIEMENS", "PHILIPS", "GE", "TOSHIBA",
                      "CANON")
MANUFACTURER_MODALITIES = {"US", "RF", "XA", "ES"}


@dataclass(frozen=True)
class BurnedInAssessment:
    """Whether an image may show identifying text, and why.

    Attributes
    ----------
    flagged : bool
        True when any reason was found.
    reasons : tuple of str
        Human-readable reasons, most decisive first.
    header_says : str
        The (0028,0301) Burned In Annotation value ("YES", "NO" or "").
    """

    flagged: bool
    reasons: tuple[str, ...] = ()
    header_says: str = ""


@dataclass(frozen=True)
class Region:
    """A rectangle to black out, in pixel coordinates of the stored image.

    Attributes
    ----------
    x, y : int
        Column and row of the top-left corner (0-based).
    width, height : int
        Size in pixels; must be positive.
    frames : tuple of int, optional
        Frames to change (0-based); all frames when ``None``.
    """

    x: int
    y: int
    width: int
    height: int
    frames: tuple[int, ...] | None = None

    def as_dict(self) -> dict:
        """Return the region as JSON-able data."""
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height,
                "frames": list(self.frames) if self.frames is not None else None}

    @classmethod
    def parse(cls, text: str) -> Region:
        """Parse ``"x,y,width,height"`` (the CLI's ``--blackout`` form)."""
        try:
            x, y, w, h = (int(v) for v in text.split(","))
        except ValueError as exc:
            raise RegionError(f"bad region {text!r}", hint="write x,y,width,height in pixels"
                              ) from exc
        return cls(x, y, w, h)


def assess_burned_in(ds) -> BurnedInAssessment:
    """Tell whether the pixels of ``ds`` may show identifying text.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        A header (pixel data not needed).

    Returns
    -------
    BurnedInAssessment
    """
    reasons: list[str] = []
    header = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if header == "YES":
        reasons.append("(0028,0301) Burned In Annotation is YES")
    modality = str(ds.get("Modality", "") or "").strip().upper()
    if modality in TEXT_MODALITIES:
        reasons.append(f"modality {modality}: {TEXT_MODALITIES[modality]}")
    sop_class = str(ds.get("SOPClassUID", "") or "")
    if sop_class in TEXT_SOP_CLASSES:
        reasons.append(f"SOP class {TEXT_SOP_CLASSES[sop_class]}")
    image_type = {str(v).strip().upper() for v in _as_list(ds.get("ImageType"))}
    found = sorted(image_type & TEXT_IMAGE_TYPES)
    if found:
        reasons.append(f"image type {'/'.join(found)}")
    conversion = str(ds.get("ConversionType", "") or "").strip().upper()
    if conversion in TEXT_CONVERSIONS:
        reasons.append(f"conversion type {conversion} ({TEXT_CONVERSIONS[conversion]})")
    text = " ".join(str(ds.get(k, "") or "") for k in
                    ("SeriesDescription", "ImageComments", "StudyDescription")).upper()
    words = [w for w in TEXT_DESCRIPTION_WORDS if w in text]
    if words:
        reasons.append(f"description mentions {', '.join(words).lower()}")
    manufacturer = str(ds.get("Manufacturer", "") or "").strip().upper()
    if modality in MANUFACTURER_MODALITIES and manufacturer.startswith(TEXT_MANUFACTURERS):
        reasons.append(f"{manufacturer.title()} {modality} units burn in identification")
    if header == "NO" and not reasons:
        return BurnedInAssessment(False, (), header)
    return BurnedInAssessment(bool(reasons), tuple(reasons), header)


def blackout(ds, regions: list[Region]) -> int:
    """Overwrite ``regions`` of the pixel data with the darkest value; return pixels changed.

    The darkest value is the minimum stored value for MONOCHROME2 and colour images and
    the maximum for MONOCHROME1 (where high values display dark).  Compressed pixel data
    is decoded and stored uncompressed.

    Raises
    ------
    RegionError
        When a region is empty or lies outside the image or its frames.
    DeidError
        When the file has no pixel data or it cannot be decoded.
    """
    if not regions:
        return 0
    if "PixelData" not in ds:
        raise DeidError("the file has no pixel data to black out",
                        hint="blackout applies to images only")
    rows, cols = int(ds.Rows), int(ds.Columns)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    for region in regions:
        _check(region, rows, cols, frames)
    try:
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            ds.decompress()  # pydicom's decoders; sets Explicit VR Little Endian
        arr = ds.pixel_array.copy()
    except Exception as exc:  # decoders raise many kinds of errors
        raise DeidError(f"pixel data could not be decoded for blackout: {exc}",
                        hint="install the pylibjpeg/pyjpegls decoders, or exclude the image"
                        ) from exc
    dark = _darkest(ds)
    view = arr if frames > 1 else arr[None]
    changed = 0
    for region in regions:
        which = range(frames) if region.frames is None else region.frames
        for f in which:
            patch = view[f, region.y:region.y + region.height, region.x:region.x + region.width]
            changed += int(patch.shape[0] * patch.shape[1])
            patch[...] = dark
    _store(ds, arr)
    return changed


def _darkest(ds) -> int:
    """Return the stored value that displays darkest under any increasing window."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if not photometric.startswith("MONOCHROME"):
        return 0  # colour: black
    bits = int(ds.get("BitsStored", ds.BitsAllocated))
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return high if photometric == "MONOCHROME1" else low


def _check(region: Region, rows: int, cols: int, frames: int) -> None:
    if region.width <= 0 or region.height <= 0:
        raise RegionError(f"region {region.as_dict()} is empty",
                          hint="give a positive width and height")
    if region.x < 0 or region.y < 0 or region.x + region.width > cols or \
            region.y + region.height > rows:
        raise RegionError(f"region {region.as_dict()} lies outside the {cols}x{rows} image",
                          hint="regions are in pixels of the stored image, origin top-left")
    if region.frames is not None and any(not 0 <= f < frames for f in region.frames):
        raise RegionError(f"region {region.as_dict()} names a frame outside 0..{frames - 1}",
                          hint="frames are 0-based")


def _store(ds, arr: np.ndarray) -> None:
    """Write decoded pixels back, uncompressed, keeping the stored bit layout."""
    allocated = int(ds.BitsAllocated)
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    if allocated == 8:
        dtype = np.int8 if signed else np.uint8
    elif allocated == 16:
        dtype = np.int16 if signed else np.uint16
    elif allocated == 32:
        dtype = np.int32 if signed else np.uint32
    else:
        raise DeidError(f"cannot rewrite pixel data with {allocated} bits allocated",
                        hint="blackout supports 8, 16 and 32-bit images")
    if str(ds.get("PhotometricInterpretation", "")).startswith("YBR"):
        # pydicom converted YBR to RGB when decoding; store what we have.
        ds.PhotometricInterpretation = "RGB"
    if int(ds.get("SamplesPerPixel", 1)) > 1:
        ds.PlanarConfiguration = 0  # pydicom returns colour-by-pixel arrays
    data = np.ascontiguousarray(arr.astype(dtype, copy=False)).astype(
        np.dtype(dtype).newbyteorder("<"), copy=False).tobytes()
    ds.PixelData = data + (b"\x00" if len(data) % 2 else b"")
    ds["PixelData"].VR = "OB" if allocated == 8 else "OW"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]

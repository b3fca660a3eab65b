"""Decode pixels into modality values: the numbers a reader measures in (HU for CT).

Decoding uses pydicom's pixel pipeline (its decoders for every compressed
transfer syntax the installed plugins support, YBR to RGB conversion) and its
(0028,1052) Rescale / Modality LUT function.  VOI windowing is a display step
and lives in :mod:`medviewer.display.windowing`.  PNG/JPEG radiographs are
decoded with Pillow.  Call from worker threads, never the GUI thread.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from medviewer.dicom.sources import RASTER_SUFFIXES, FileRef
from medviewer.errors import NoPixelDataError, PixelDecodeError, TruncatedFileError


@dataclass(frozen=True)
class HeaderWindow:
    """A VOI window stored in the header: (0028,1050) centre and (0028,1051) width."""

    center: float
    width: float
    explanation: str = ""
    function: str = "LINEAR"


class ModalityFrames:
    """Frames kept as stored integers, read as float32 modality values.

    A CT kept as (0028,1052)/(0028,1053) rescale of 16-bit stored values takes
    half the memory of its float32 modality values; indexing converts only the
    frames asked for.  The viewer windows the stored values directly
    (:meth:`DecodedImage.stored_levels`), so scrolling never converts at all.

    Parameters
    ----------
    stored : numpy.ndarray
        ``(n, rows, cols)`` unsigned integers (uint8 or uint16).
    slope, intercept : float
        Modality value = stored * slope + intercept.
    """

    dtype = np.dtype(np.float32)

    def __init__(self, stored: np.ndarray, slope: float, intercept: float) -> None:
        self.stored = stored
        self.slope = float(slope)
        self.intercept = float(intercept)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the frames, as for an array."""
        return self.stored.shape

    @property
    def ndim(self) -> int:
        """Number of dimensions (3: frames, rows, columns)."""
        return self.stored.ndim

    @property
    def nbytes(self) -> int:
        """Memory actually held (the stored integers)."""
        return int(self.stored.nbytes)

    def __len__(self) -> int:
        return int(self.stored.shape[0])

    def __getitem__(self, key) -> np.ndarray:
        return self._convert(self.stored[key])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        values = self._convert(self.stored)
        return values if dtype is None else values.astype(dtype, copy=False)

    def _convert(self, stored: np.ndarray) -> np.ndarray:
        values = stored.astype(np.float32)
        if self.slope != 1.0:
            values *= np.float32(self.slope)
        if self.intercept != 0.0:
            values += np.float32(self.intercept)
        return values


@dataclass
class DecodedImage:
    """All frames of one instance, ready for display.

    Attributes
    ----------
    frames : numpy.ndarray or ModalityFrames
        ``(n, rows, cols)`` float32 modality values for grey images (indexing a
        :class:`ModalityFrames` gives float32 arrays), or ``(n, rows, cols, 3)``
        uint8 for colour images.
    photometric : str
        ``MONOCHROME1``, ``MONOCHROME2`` or ``RGB`` (after colour conversion).
    windows : list of HeaderWindow
        Windows suggested by the header, first is the default.
    units : str
        ``"HU"`` for CT with a rescale, else the (0028,1054) Rescale Type or "".
    pixel_spacing : tuple of float or None
        (row, column) spacing in mm; ``None`` when absent or unusable (see ``notes``).
    notes : list of str
        Header problems a reader should know (e.g. a Pixel Spacing of ``0\\0``).
    orientation : tuple of float or None
        (0020,0037) Image Orientation (Patient): row then column direction cosines.
    patient_orientation : tuple of str or None
        (0020,0020) Patient Orientation (row and column directions, e.g. ``("P", "F")``).
    slice_location, slice_thickness : float or None
        (0020,1041) Slice Location and (0018,0050) Slice Thickness in mm.
    position : tuple of float or None
        (0020,0032) Image Position (Patient): centre of the first pixel, mm.
    frame_of_reference : str
        (0020,0052) Frame of Reference UID ("" when absent).
    """

    frames: np.ndarray | ModalityFrames
    photometric: str
    windows: list[HeaderWindow] = field(default_factory=list)
    units: str = ""
    pixel_spacing: tuple[float, float] | None = None
    notes: list[str] = field(default_factory=list)
    orientation: tuple[float, ...] | None = None
    patient_orientation: tuple[str, ...] | None = None
    slice_location: float | None = None
    slice_thickness: float | None = None
    position: tuple[float, float, float] | None = None
    frame_of_reference: str = ""

    @property
    def is_color(self) -> bool:
        """Whether frames are RGB."""
        return self.frames.ndim == 4

    @property
    def frame_count(self) -> int:
        """Number of frames."""
        return int(self.frames.shape[0])

    @property
    def nbytes(self) -> int:
        """Memory held by the frames, for cache accounting."""
        return int(self.frames.nbytes)

    def stored_frame(self, frame: int) -> np.ndarray:
        """Return one frame as held in memory (stored integers or float32 modality values)."""
        if isinstance(self.frames, ModalityFrames):
            return self.frames.stored[frame]
        return self.frames[frame]

    def stored_levels(self, low: float, high: float) -> tuple[float, float]:
        """Map (black, white) modality values to the values :meth:`stored_frame` holds."""
        if isinstance(self.frames, ModalityFrames):
            slope, intercept = self.frames.slope, self.frames.intercept
            return (low - intercept) / slope, (high - intercept) / slope
        return low, high

    def modality_value(self, frame: int, row: int, col: int) -> float:
        """Return the modality value (HU for CT) of one pixel."""
        if isinstance(self.frames, ModalityFrames):
            f = self.frames
            return float(f.stored[frame, row, col]) * f.slope + f.intercept
        return float(self.frames[frame][row, col])


def decode(ref: FileRef) -> DecodedImage:
    """Decode every frame of one image file.

    Parameters
    ----------
    ref : FileRef

    Returns
    -------
    DecodedImage

    Raises
    ------
    PixelDecodeError, TruncatedFileError, NoPixelDataError
    """
    if ref.suffix in RASTER_SUFFIXES:
        return _decode_raster(ref)
    return _decode_dicom(ref)


def read_header(ref: FileRef):
    """Return the full DICOM header (no pixel data) for the tag browser."""
    from pydicom import dcmread

    with ref.open() as fh, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(fh, stop_before_pixels=True, force=True)


def _decode_raster(ref: FileRef) -> DecodedImage:
    from PIL import Image

    try:
        with ref.open() as fh, Image.open(fh) as img:
            img.load()
            if img.mode in ("RGB", "RGBA", "P", "LA", "CMYK"):
                rgb = np.asarray(img.convert("RGB"))
                # Most radiograph PNGs store grey in three equal channels.
                if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
                    arr = rgb[..., 0].astype(np.float32)
                    return _grey_raster(arr)
                return DecodedImage(frames=rgb[None].copy(), photometric="RGB")
            arr = np.asarray(img.convert("F") if img.mode not in ("L",) else img, dtype=np.float32)
    except OSError as exc:
        raise TruncatedFileError(f"image cannot be decoded ({exc})", path=ref.display) from exc
    return _grey_raster(arr)


def _grey_raster(arr: np.ndarray) -> DecodedImage:
    top = 255.0 if arr.max(initial=0) <= 255 else float(arr.max())
    return DecodedImage(frames=arr[None].astype(np.float32), photometric="MONOCHROME2",
                        windows=[HeaderWindow(top / 2 + 0.5, top + 1, "full range")])


def _decode_dicom(ref: FileRef) -> DecodedImage:
    from pydicom import dcmread

    from medviewer.dicom.scan import scan

    # The header scan first: it stops early on garbage, refuses images over the size
    # limit and cut-short files, so the full read below only runs on a plausible image.
    scan(ref)
    with ref.open() as fh, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = dcmread(fh, force=True)
        except Exception as exc:  # noqa: BLE001 - pydicom raises many types on damaged files
            raise TruncatedFileError(f"the header cannot be read ({exc})", path=ref.display,
                                     hint="the file may be cut short or damaged") from exc
        if not any(tag in ds for tag in (0x7FE00010, 0x7FE00008, 0x7FE00009)):
            raise NoPixelDataError("no pixel data", path=ref.display)
        _ensure_transfer_syntax(ds)
        try:
            # pydicom converts YBR to RGB and applies nothing else here.
            arr = ds.pixel_array
        except (ValueError, RuntimeError, TypeError, NotImplementedError, AttributeError,
                KeyError, EOFError) as exc:
            raise PixelDecodeError(f"pixel data could not be decoded: {exc}", path=ref.display,
                                   hint="the file may be damaged, or its compression unsupported") from exc
    frames_n = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    notes: list[str] = []
    spacing = _spacing(ds, notes)
    place = _placement(ds)
    if samples == 3 or photometric.startswith(("RGB", "YBR")):
        if frames_n == 1 or arr.ndim == 3:
            arr = arr.reshape((-1,) + arr.shape[-3:]) if arr.ndim == 4 else arr[None]
        return DecodedImage(frames=_to_uint8_rgb(arr), photometric="RGB", pixel_spacing=spacing,
                            notes=notes, **place)
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        rgb = apply_color_lut(arr, ds)
        rgb = rgb[None] if rgb.ndim == 3 else rgb
        return DecodedImage(frames=_to_uint8_rgb(rgb), photometric="RGB", pixel_spacing=spacing,
                            notes=notes, **place)
    frames = _stored_frames(arr, ds)
    if frames is None:
        values = _modality_values(arr, ds)
        frames = np.ascontiguousarray(values[None] if values.ndim == 2 else values)
    modality = str(ds.get("Modality", ""))
    units = "HU" if modality == "CT" and "RescaleSlope" in ds else str(ds.get("RescaleType", "") or "")
    return DecodedImage(frames=frames, photometric=photometric, windows=header_windows(ds),
                        units=units, pixel_spacing=spacing, notes=notes, **place)


def _stored_frames(arr: np.ndarray, ds) -> ModalityFrames | None:
    """Keep integer pixels as unsigned stored values plus a rescale, when that is exact.

    Not possible with a (0028,3000) Modality LUT Sequence, a non-positive slope or
    pixels wider than 16 bits; then the caller converts to float32 modality values.
    """
    lut = ds.get("ModalityLUTSequence")
    if lut is not None and len(lut) > 0:
        return None
    if arr.dtype.kind not in "iu" or arr.dtype.itemsize > 2:
        return None
    slope = _float(ds.get("RescaleSlope"), 1.0)
    intercept = _float(ds.get("RescaleIntercept"), 0.0)
    if not slope > 0 or not math.isfinite(slope) or not math.isfinite(intercept):
        return None
    if arr.ndim == 2:
        arr = arr[None]
    if not arr.dtype.isnative:  # big-endian files
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype.kind == "i":
        # Shift signed values into the unsigned range: pyqtgraph windows uint8/uint16
        # through one lookup, and the shift moves into the intercept.
        bits = arr.dtype.itemsize * 8
        shift = 1 << (bits - 1)
        unsigned = np.uint16 if bits == 16 else np.uint8
        arr = (arr.view(unsigned) ^ unsigned(shift))  # two's complement + shift, no widening
        intercept -= shift * slope
    return ModalityFrames(np.ascontiguousarray(arr), slope, intercept)


def _ensure_transfer_syntax(ds) -> None:
    """Fill in a missing (0002,0010) Transfer Syntax UID from how the file was actually read."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    if "TransferSyntaxUID" in meta:
        return
    implicit, little = getattr(ds, "original_encoding", (True, True))
    if implicit:
        meta.TransferSyntaxUID = ImplicitVRLittleEndian
    else:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _modality_values(arr: np.ndarray, ds) -> np.ndarray:
    """Apply the Modality LUT or rescale; an unusable LUT falls back to the rescale alone."""
    from pydicom.pixels import apply_modality_lut

    try:
        values = apply_modality_lut(arr, ds)
    except (TypeError, ValueError, IndexError, AttributeError):
        # Some writers leave an empty (0028,3000) Modality LUT Sequence behind;
        # then only the rescale, if any, is meaningful (empty values mean identity).
        slope = _float(ds.get("RescaleSlope"), 1.0)
        intercept = _float(ds.get("RescaleIntercept"), 0.0)
        values = arr.astype(np.float32) * slope + intercept
    return values.astype(np.float32, copy=False)


def _float(value, default: float) -> float:
    try:
        return default if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return default


def _to_uint8_rgb(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    top = float(arr.max()) or 1.0
    return np.clip(arr.astype(np.float32) * (255.0 / top), 0, 255).astype(np.uint8)


def _spacing(ds, notes: list[str] | None = None) -> tuple[float, float] | None:
    """Return (row, column) spacing in mm, or ``None`` with a note when the header's is unusable."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value is None:
            continue
        spacing = usable_spacing(value)
        if spacing is not None:
            return spacing
        if notes is not None:
            shown = "\\".join(str(v) for v in value) if hasattr(value, "__iter__") else str(value)
            name = "Pixel Spacing" if keyword == "PixelSpacing" else "Imager Pixel Spacing"
            notes.append(f"{name} {shown} is not usable; distances are in pixels.")
    return None


def usable_spacing(value) -> tuple[float, float] | None:
    """Return a (row, column) spacing of two positive finite numbers, else ``None``."""
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        row, col = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(row) and math.isfinite(col) and row > 0 and col > 0):
        return None
    return row, col


def _placement(ds) -> dict:
    """Read the attributes that place the image in the patient (orientation, slice)."""
    orientation = ds.get("ImageOrientationPatient")
    cosines = None
    if orientation is not None:
        try:
            cosines = tuple(float(v) for v in orientation)
        except (TypeError, ValueError):
            cosines = None
        if cosines is not None and (len(cosines) != 6 or not all(map(math.isfinite, cosines))):
            cosines = None
    patient = ds.get("PatientOrientation")
    letters = None
    if patient is not None and not isinstance(patient, (str, bytes)) and len(patient) == 2:
        letters = tuple(str(v).strip().upper() for v in patient)
    position = None
    ipp = ds.get("ImagePositionPatient")
    if ipp is not None:
        try:
            position = tuple(float(v) for v in ipp)
        except (TypeError, ValueError):
            position = None
        if position is not None and (len(position) != 3 or not all(map(math.isfinite, position))):
            position = None
    return {"orientation": cosines, "patient_orientation": letters, "position": position,
            "frame_of_reference": str(ds.get("FrameOfReferenceUID", "") or ""),
            "slice_location": _float(ds.get("SliceLocation"), None),
            "slice_thickness": _float(ds.get("SliceThickness"), None)}


def header_windows(ds) -> list[HeaderWindow]:
    """Return the windows in (0028,1050)/(0028,1051), with their explanations."""
    centers, widths = ds.get("WindowCenter"), ds.get("WindowWidth")
    if centers is None or widths is None:
        return []
    as_list = lambda v: list(v) if isinstance(v, (list, tuple)) or hasattr(v, "__iter__") and not isinstance(v, (str, bytes)) else [v]  # noqa: E731
    explanations = ds.get("WindowCenterWidthExplanation") or []
    explanations = as_list(explanations) if explanations else []
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
    windows = []
    for i, (c, w) in enumerate(zip(as_list(centers), as_list(widths), strict=False)):
        try:
            c, w = float(c), float(w)
        except (TypeError, ValueError):
            continue
        if w <= 0:
            continue
        label = str(explanations[i]) if i < len(explanations) else ""
        windows.append(HeaderWindow(c, w, label, function))
    return windows

"""Decode pixels into modality values: the numbers a reader measures in (HU for CT).

Decoding uses pydicom's pixel pipeline (its decoders for every compressed
transfer syntax the installed plugins support, YBR to RGB conversion) and its
(0028,1052) Rescale / Modality LUT function.  VOI windowing is a display step
and lives in :mod:`medviewer.display.windowing`.  PNG/JPEG radiographs are
decoded with Pillow.  Call from worker threads, never the GUI thread.
"""

from __future__ import annotations

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


@dataclass
class DecodedImage:
    """All frames of one instance, ready for display.

    Attributes
    ----------
    frames : numpy.ndarray
        ``(n, rows, cols)`` float32 modality values for grey images, or
        ``(n, rows, cols, 3)`` uint8 for colour images.
    photometric : str
        ``MONOCHROME1``, ``MONOCHROME2`` or ``RGB`` (after colour conversion).
    windows : list of HeaderWindow
        Windows suggested by the header, first is the default.
    units : str
        ``"HU"`` for CT with a rescale, else the (0028,1054) Rescale Type or "".
    pixel_spacing : tuple of float or None
        (row, column) spacing in mm.
    """

    frames: np.ndarray
    photometric: str
    windows: list[HeaderWindow] = field(default_factory=list)
    units: str = ""
    pixel_spacing: tuple[float, float] | None = None

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
    spacing = _spacing(ds)
    if samples == 3 or photometric.startswith(("RGB", "YBR")):
        if frames_n == 1 or arr.ndim == 3:
            arr = arr.reshape((-1,) + arr.shape[-3:]) if arr.ndim == 4 else arr[None]
        return DecodedImage(frames=_to_uint8_rgb(arr), photometric="RGB", pixel_spacing=spacing)
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        rgb = apply_color_lut(arr, ds)
        rgb = rgb[None] if rgb.ndim == 3 else rgb
        return DecodedImage(frames=_to_uint8_rgb(rgb), photometric="RGB", pixel_spacing=spacing)
    values = _modality_values(arr, ds)
    if values.ndim == 2:
        values = values[None]
    modality = str(ds.get("Modality", ""))
    units = "HU" if modality == "CT" and "RescaleSlope" in ds else str(ds.get("RescaleType", "") or "")
    return DecodedImage(frames=np.ascontiguousarray(values), photometric=photometric,
                        windows=header_windows(ds), units=units, pixel_spacing=spacing)


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


def _spacing(ds) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value is not None:
            try:
                row, col = (float(v) for v in value)
                return row, col
            except (TypeError, ValueError):
                continue
    return None


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

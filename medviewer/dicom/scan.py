"""Header-only scan of one image file: what it is, where it belongs, whether we can show it.

The scan never decodes pixels.  It reads the DICOM header with the pixel data
deferred (so its position and length are known without reading it), checks
that the file is complete and that an installed decoder handles its transfer
syntax, and returns an :class:`InstanceHeader`.  Problems raise one of the
:mod:`medviewer.errors` image errors, each with a reason a user can act on.
PNG and JPEG radiographs are scanned with Pillow's lazy open.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from dataclasses import dataclass, field

from medviewer.dicom.content import sample_hash
from medviewer.dicom.header_values import HeaderValues
from medviewer.dicom.sources import RASTER_SUFFIXES, FileRef
from medviewer.errors import (
    ImageReadError,
    NoPixelDataError,
    NotDicomError,
    PixelDataTooLargeError,
    TruncatedFileError,
    UnsupportedTransferSyntaxError,
)

PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # Pixel Data, Float, Double Float
# SOP classes that are indexes or documents, never images.
NON_IMAGE_SOP_CLASSES = {
    "1.2.840.10008.1.3.10": "a DICOMDIR (media directory); the files it lists are imported instead",
}
# Transfer syntaxes newer than the installed pydicom's dictionary.
TRANSFER_SYNTAX_NAMES = {"1.2.840.10008.1.2.8.1": "Deflated Image Frame Compression"}
# Header values above this size are not read during a scan.
DEFER_SIZE = 4096
# Top-level tags out of order more often than this mean garbage, not a header.
MAX_TAG_DISORDER = 32
# Images larger than this (decoded) are refused with a reason rather than failing in render.
DEFAULT_MAX_PIXEL_MB = 1024


@dataclass(frozen=True)
class InstanceHeader:
    """Everything the library stores about one image, read without decoding pixels.

    ``kind`` is ``"dicom"`` or ``"raster"`` (PNG/JPEG).  Geometry fields are
    ``None`` when the header lacks them.
    """

    ref: FileRef
    kind: str
    sop_instance_uid: str
    sop_class_uid: str = ""
    transfer_syntax: str = ""
    patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    study_uid: str = ""
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    accession_number: str = ""
    series_uid: str = ""
    series_number: int | None = None
    series_description: str = ""
    modality: str = ""
    body_part: str = ""
    instance_number: int | None = None
    rows: int = 0
    columns: int = 0
    frames: int = 1
    samples_per_pixel: int = 1
    photometric: str = ""
    bits_allocated: int = 0
    pixel_spacing: tuple[float, float] | None = None
    slice_thickness: float | None = None
    image_position: tuple[float, float, float] | None = None
    image_orientation: tuple[float, ...] | None = None
    burned_in_annotation: str = ""
    content_hash: str = ""
    extra: dict = field(default_factory=dict, compare=False)


def scan(ref: FileRef) -> InstanceHeader:
    """Read the header of one file; raise an :class:`ImageReadError` if it can't be imported.

    Parameters
    ----------
    ref : FileRef
        The file to scan.

    Returns
    -------
    InstanceHeader

    Raises
    ------
    NotDicomError, TruncatedFileError, NoPixelDataError, UnsupportedTransferSyntaxError,
    ImageReadError
    """
    header = _scan_raster(ref) if ref.suffix in RASTER_SUFFIXES else _scan_dicom(ref)
    # Taken here, with the file just read, so a later rewrite in place can be noticed.
    return dataclasses.replace(header, content_hash=sample_hash(ref))


def _scan_raster(ref: FileRef) -> InstanceHeader:
    from PIL import Image, UnidentifiedImageError

    try:
        with ref.open() as fh, Image.open(fh) as img:
            width, height = img.size
            mode = img.mode
            frames = getattr(img, "n_frames", 1)
            img.verify()  # checks structure and CRCs without decoding the whole image
    except UnidentifiedImageError as exc:
        raise NotDicomError("not a PNG or JPEG image", path=ref.display) from exc
    except (OSError, SyntaxError) as exc:
        raise TruncatedFileError(f"damaged image ({exc})", path=ref.display,
                                 hint="re-export or re-download the file") from exc
    # Raster images have no UIDs: derive stable ones from the file's location so
    # a re-import recognises the same image.
    uid = raster_uid(ref.display)
    return InstanceHeader(
        ref=ref, kind="raster", sop_instance_uid=uid,
        study_uid=raster_uid("study:" + ref.display), series_uid=raster_uid("series:" + ref.display),
        modality="DX", rows=height, columns=width, frames=frames,
        samples_per_pixel=1 if mode in ("L", "I", "I;16", "F", "1", "P") else 3,
        photometric="MONOCHROME2" if mode in ("L", "I", "I;16", "F", "1") else "RGB",
        bits_allocated=16 if mode.startswith("I") else 8,
        series_description="radiograph (" + ref.suffix.lstrip(".").upper() + ")",
    )


def raster_uid(key: str) -> str:
    """Return a stable DICOM-style UID for a non-DICOM image (2.25 + 128-bit hash)."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()[:16]
    return "2.25." + str(int.from_bytes(digest, "big"))


def _read_dataset(ref: FileRef, fh):
    """Parse the header from an open file; pydicom's warnings become our errors or are dropped."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = _parse(ref, fh)
    for warning in caught:
        if "End of file reached before delimiter" in str(warning.message):
            raise TruncatedFileError("the file ends inside its pixel data", path=ref.display,
                                     hint="the file was cut short; copy it again from its source")
    return ds


def _garbage_guard():
    """Return a ``stop_when`` for pydicom that stops at the first sign of garbage.

    A stored dataset's top-level tags are never in group 0 (the command group) and rise;
    real files break the order now and then, garbage all the time.  Zeros parse as an
    endless run of (0000,0000); stopping there bounds the work (a 4 GiB file of zeros
    would otherwise be walked element by element at a few MB/s).
    """
    state = {"last": -1, "disorder": 0}

    def stop_when(tag, _vr, _length) -> bool:
        value = int(tag)
        if value >> 16 == 0:
            return True
        # (pydicom may offer one tag twice while it settles explicit vs implicit VR.)
        if value < state["last"]:
            state["disorder"] += 1
            if state["disorder"] > MAX_TAG_DISORDER:
                return True
        state["last"] = value
        return False

    return stop_when


def _read(fh, force: bool):
    from pydicom.filereader import read_partial

    return read_partial(fh, _garbage_guard(), defer_size=DEFER_SIZE, force=force)


def _dataset_starts_in_group_0(fh) -> bool:
    """Tell whether the dataset (after any preamble and file meta) starts in group 0000.

    pydicom reads a leading command group (a network message's header) to its end before
    anything else, so a file of zeros would be read whole; a stored file never has one.
    """
    head = fh.read(132)
    peek = head[:4]
    if head[128:132] == b"DICM":
        element = fh.read(12)  # (0002,0000) group length, explicit VR little endian
        peek = b""
        if element[:6] == b"\x02\x00\x00\x00UL":
            fh.seek(132 + 12 + int.from_bytes(element[8:12], "little"))
            peek = fh.read(4)
    fh.seek(0)
    return len(peek) == 4 and peek[:2] == b"\x00\x00"


def _parse(ref: FileRef, fh):
    from pydicom.errors import InvalidDicomError

    if _dataset_starts_in_group_0(fh):
        raise NotDicomError("not a DICOM file (its data starts with zeros or a network "
                            "command, not an image header)", path=ref.display)
    try:
        return _read(fh, force=False)
    except InvalidDicomError:
        pass
    except Exception as exc:
        raise _header_error(ref, exc, fh) from exc
    # No 128-byte preamble + "DICM": older files are raw datasets. Accept one
    # only if what parses looks like an image header, not random bytes.
    fh.seek(0)
    try:
        ds = _read(fh, force=True)
        plausible = ds.get("SOPClassUID") or (ds.get("Rows") and ds.get("Columns"))
    except Exception as exc:
        raise NotDicomError("not a DICOM file (no DICM prefix and no readable header)",
                            path=ref.display) from exc
    if not plausible:
        raise NotDicomError("not a DICOM file (no DICM prefix and no image header)",
                            path=ref.display)
    return ds


def _header_error(ref: FileRef, exc: Exception, fh=None) -> ImageReadError:
    at_end = False
    if fh is not None:
        here = fh.tell()
        at_end = here >= fh.seek(0, 2)
    if at_end or isinstance(exc, EOFError) or "end of file" in str(exc).lower():
        return TruncatedFileError("the header ends early", path=ref.display,
                                  hint="the file was cut short; copy it again from its source")
    return ImageReadError(f"the header cannot be parsed ({exc})", path=ref.display)


def _pixel_element(ds):
    for tag in PIXEL_TAGS:
        if tag in ds:
            # keep_deferred: learn the value's position and length without reading it.
            return ds.get_item(tag, keep_deferred=True)
    return None


def _check_transfer_syntax(ref: FileRef, ts) -> None:
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(ts)
    except NotImplementedError as exc:
        name = TRANSFER_SYNTAX_NAMES.get(str(ts)) or getattr(ts, "name", str(ts))
        raise UnsupportedTransferSyntaxError(
            f"no installed pixel decoder handles transfer syntax {name} ({ts})", path=ref.display,
            hint="convert the file to an uncompressed transfer syntax (e.g. dcmdjpeg, gdcmconv)",
        ) from exc
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "a decoder plugin"
        raise UnsupportedTransferSyntaxError(
            f"transfer syntax {ts.name} needs a decoder that is not installed",
            path=ref.display, hint=f"install {missing}",
        )


def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _floats(value, count: int):
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if len(out) == count else None


def _scan_dicom(ref: FileRef) -> InstanceHeader:
    # Everything is read while the file is open: deferred values may need it.
    # pydicom warns about every odd value; the scan keeps what it can and stays quiet.
    with ref.open() as fh, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = _read_dataset(ref, fh)
        try:
            return _header_from_dataset(ref, ds)
        except ImageReadError:
            raise
        except (NotImplementedError, ValueError, TypeError, KeyError, AttributeError,
                OverflowError, IndexError, EOFError, OSError) as exc:
            # A value pydicom cannot convert (an unknown VR, a bad length) is damage.
            raise ImageReadError(f"the header is damaged ({_words(exc)})", path=ref.display,
                                 hint="copy the file again from its source") from exc


def _words(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else "no detail given"


def _header_from_dataset(ref: FileRef, ds) -> InstanceHeader:
    v = HeaderValues(ds)  # each value read once, the simple forms without Dataset.get
    sop_class = str(v.get("SOPClassUID", "") or getattr(ds.file_meta, "MediaStorageSOPClassUID", ""))
    pixel = _pixel_element(ds)
    if sop_class in NON_IMAGE_SOP_CLASSES and pixel is None:
        # A DICOMDIR that also carries an image is imported; a plain one is an index.
        raise NoPixelDataError(NON_IMAGE_SOP_CLASSES[sop_class], path=ref.display)
    if pixel is None and _ends_early(ds, ref):
        raise TruncatedFileError("the file ends inside its header", path=ref.display,
                                 hint="the file was cut short; copy it again from its source")
    if pixel is None and v.get("Rows") and v.get("Columns"):
        # An image header without its pixels: the file was cut at an element boundary.
        raise TruncatedFileError("the file ends before its pixel data", path=ref.display,
                                 hint="the file was cut short; copy it again from its source")
    if pixel is None:
        kind = str(v.get("Modality", "") or "").strip()
        what = f"a {kind} object without an image" if kind else "not an image object"
        raise NoPixelDataError(f"no pixel data ({what})", path=ref.display)
    rows, columns = _int(v.get("Rows"), 0), _int(v.get("Columns"), 0)
    if not rows or not columns:
        raise ImageReadError("(0028,0010) Rows or (0028,0011) Columns is missing",
                             path=ref.display, hint="the header is incomplete; the image "
                             "cannot be interpreted")
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if ts is None:
        from pydicom.uid import ImplicitVRLittleEndian

        ts = ImplicitVRLittleEndian
    _check_transfer_syntax(ref, ts)
    frames = _int(v.get("NumberOfFrames"), 1) or 1
    samples = _int(v.get("SamplesPerPixel"), 1) or 1
    bits = _int(v.get("BitsAllocated"), 0) or 0
    if bits not in (1, 8, 16, 32, 64):
        raise ImageReadError(f"(0028,0100) Bits Allocated is {bits}, not 1, 8, 16, 32 or 64",
                             path=ref.display, hint="the header is damaged; the pixels cannot "
                             "be interpreted")
    check_pixel_size(rows, columns, frames, samples, bits, ref.display)
    length = getattr(pixel, "length", None)
    tell = getattr(pixel, "value_tell", None)
    if not ts.is_encapsulated and bits:
        stored = 2 if str(v.get("PhotometricInterpretation", "")).strip() == "YBR_FULL_422" \
            else samples
        expected = (rows * columns * frames * stored * bits + 7) // 8
        if length == 0xFFFFFFFF:
            raise ImageReadError("native pixel data has an undefined length (only compressed "
                                 "pixel data may)", path=ref.display,
                                 hint="the header is damaged or its transfer syntax is wrong")
        if length is not None and length < expected:
            raise TruncatedFileError(
                f"pixel data holds {length} bytes, {expected} expected", path=ref.display,
                hint="the file was cut short or its header is wrong")
    deflated = ts == "1.2.840.10008.1.2.1.99"  # positions are in the inflated stream
    if (tell is not None and length not in (None, 0xFFFFFFFF) and ref.size and not deflated
            and tell + length > ref.size):
        raise TruncatedFileError(
            f"the file ends {tell + length - ref.size} bytes before its pixel data does",
            path=ref.display, hint="the file was cut short; copy it again from its source")

    def text(keyword: str) -> str:
        value = v.get(keyword, "")
        return "" if value is None else str(value).strip()

    spacing = _floats(v.get("PixelSpacing") or v.get("ImagerPixelSpacing"), 2)
    thickness = v.get("SliceThickness")
    return InstanceHeader(
        ref=ref,
        kind="dicom",
        sop_instance_uid=text("SOPInstanceUID") or raster_uid("sop:" + ref.display),
        sop_class_uid=sop_class,
        transfer_syntax=str(ts),
        patient_id=text("PatientID"),
        patient_name=text("PatientName"),
        patient_birth_date=text("PatientBirthDate"),
        patient_sex=text("PatientSex"),
        study_uid=text("StudyInstanceUID") or raster_uid("study:" + ref.display),
        study_date=text("StudyDate"),
        study_time=text("StudyTime"),
        study_description=text("StudyDescription"),
        accession_number=text("AccessionNumber"),
        series_uid=text("SeriesInstanceUID") or raster_uid("series:" + ref.display),
        series_number=_int(v.get("SeriesNumber")),
        series_description=text("SeriesDescription"),
        modality=text("Modality"),
        body_part=text("BodyPartExamined"),
        instance_number=_int(v.get("InstanceNumber")),
        rows=rows,
        columns=columns,
        frames=frames,
        samples_per_pixel=samples,
        photometric=text("PhotometricInterpretation"),
        bits_allocated=bits,
        pixel_spacing=spacing,
        slice_thickness=_float_or_none(thickness),
        image_position=_floats(v.get("ImagePositionPatient"), 3),
        image_orientation=_floats(v.get("ImageOrientationPatient"), 6),
        burned_in_annotation=text("BurnedInAnnotation"),
    )


def max_pixel_bytes() -> int:
    """Return the largest decoded image accepted, in bytes (``MEDVIEWER_MAX_PIXEL_MB``, 1024)."""
    try:
        megabytes = float(os.environ.get("MEDVIEWER_MAX_PIXEL_MB", DEFAULT_MAX_PIXEL_MB))
    except ValueError:
        megabytes = DEFAULT_MAX_PIXEL_MB
    return int(max(1.0, megabytes) * (1 << 20))


def check_pixel_size(rows: int, columns: int, frames: int, samples: int, bits: int,
                     display: str) -> None:
    """Refuse an image whose decoded pixels would exceed :func:`max_pixel_bytes`.

    Raises
    ------
    PixelDataTooLargeError
    """
    size = rows * columns * max(1, frames) * max(1, samples) * max(8, bits) // 8
    limit = max_pixel_bytes()
    if size > limit:
        raise PixelDataTooLargeError(
            f"its pixel data would need {size / (1 << 20):,.0f} MB decoded, over the limit of "
            f"{limit / (1 << 20):,.0f} MB ({rows} x {columns} x {frames} frames x {samples} "
            f"samples x {bits} bits)", path=display,
            hint="raise MEDVIEWER_MAX_PIXEL_MB if this image is real and memory allows")


def _ends_early(ds, ref: FileRef) -> bool:
    """Tell whether the last element read runs past, or stops short of, the end of the file."""
    meta = getattr(ds, "file_meta", None)
    if not len(ds) or not ref.size or str(meta.get("TransferSyntaxUID", "") if meta else "") \
            == "1.2.840.10008.1.2.1.99":
        return False
    last = ds.get_item(max(ds.keys()), keep_deferred=True)
    tell, length = getattr(last, "value_tell", None), getattr(last, "length", None)
    if tell is None or length in (None, 0xFFFFFFFF):
        return False
    return tell + length != ref.size


def _float_or_none(value) -> float | None:
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None

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
import warnings
from dataclasses import dataclass, field

from medviewer.dicom.content import sample_hash
from medviewer.dicom.header_values import HeaderValues
from medviewer.dicom.sources import RASTER_SUFFIXES, FileRef
from medviewer.errors import (
    ImageReadError,
    NoPixelDataError,
    NotDicomError,
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


def _parse(ref: FileRef, fh):
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        return dcmread(fh, defer_size=DEFER_SIZE)
    except InvalidDicomError:
        pass
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on damaged headers
        raise _header_error(ref, exc, fh) from exc
    # No 128-byte preamble + "DICM": older files are raw datasets. Accept one
    # only if what parses looks like an image header, not random bytes.
    fh.seek(0)
    try:
        ds = dcmread(fh, defer_size=DEFER_SIZE, force=True)
        plausible = ds.get("SOPClassUID") or (ds.get("Rows") and ds.get("Columns"))
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not DICOM"
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
        return _header_from_dataset(ref, _read_dataset(ref, fh))


def _header_from_dataset(ref: FileRef, ds) -> InstanceHeader:
    v = HeaderValues(ds)  # each value read once, the simple forms without Dataset.get
    sop_class = str(v.get("SOPClassUID", "") or getattr(ds.file_meta, "MediaStorageSOPClassUID", ""))
    if sop_class in NON_IMAGE_SOP_CLASSES:
        raise NoPixelDataError(NON_IMAGE_SOP_CLASSES[sop_class], path=ref.display)
    pixel = _pixel_element(ds)
    if pixel is None and _ends_early(ds, ref):
        raise TruncatedFileError("the file ends inside its header", path=ref.display,
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
    length = getattr(pixel, "length", None)
    tell = getattr(pixel, "value_tell", None)
    if not ts.is_encapsulated and bits:
        stored = 2 if str(v.get("PhotometricInterpretation", "")).strip() == "YBR_FULL_422" \
            else samples
        expected = (rows * columns * frames * stored * bits + 7) // 8
        if length is not None and length != 0xFFFFFFFF and length < expected:
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

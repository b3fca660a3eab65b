"""Text hidden in compressed pixel data: JPEG comment and application segments.

A JPEG stream may carry free text besides the image: COM segments, APPn segments (EXIF
holds names, dates and device serials) and bytes after the end-of-image marker.
PS3.15 E.1.1 asks that no identifying information survive anywhere in the instance, so
:func:`clean_pixel_text` rebuilds each encapsulated frame without them (the image itself,
the entropy-coded data, is copied byte for byte), and refuses pixel data it cannot check.

References
----------
ITU-T T.81 (JPEG) B.1.1.2-B.1.1.5 (markers, marker segments, fill bytes, stuffing),
B.2.4.5 (COM), Annex B.2.4.6 (APPn); ITU-T T.87 (JPEG-LS) 9.1 (bit stuffing after 0xFF);
ITU-T T.800 (JPEG 2000) A.3 (SOC, SOT with Psot, SOD, EOC), A.9.2 (COM);
DICOM PS3.5 A.4 (encapsulation), 8.2 (the JPEG family of transfer syntaxes).
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from medviewer.deid.errors import DeidError

JPEG_SYNTAXES = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
                           "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"})
JPEG_LS_SYNTAXES = frozenset({"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"})
J2K_SYNTAXES = frozenset({"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
                          "1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93",
                          "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
                          "1.2.840.10008.1.2.4.203"})
# Run-length segments are pixel values only: nothing in them is shown as text.
NO_TEXT_SYNTAXES = frozenset({"1.2.840.10008.1.2.5"})
_PIXEL_DATA = 0x7FE00010
_EXTENDED_OFFSETS = (0x7FE00001, 0x7FE00002)


class PixelTextError(DeidError):
    """Compressed pixel data carries segments that cannot be checked for text."""


def clean_pixel_text(ds: Dataset) -> int:
    """Remove text segments from the encapsulated pixel data of ``ds``, in place.

    Returns
    -------
    int
        How many segments (COM, APPn other than JFIF/Adobe, trailing bytes) were removed;
        0 leaves the pixel data untouched.

    Raises
    ------
    PixelTextError
        The transfer syntax may carry text MedViewer cannot check (MPEG, HEVC, JPEG XL),
        or a frame is not a well-formed stream of its syntax.
    """
    if _PIXEL_DATA not in ds or "file_meta" not in ds.__dict__:
        return 0
    syntax = str(getattr(ds.file_meta, "TransferSyntaxUID", "") or "")
    elem = ds[_PIXEL_DATA]
    if not syntax or not getattr(elem, "is_undefined_length", False):
        return 0  # native pixel data: values only
    if syntax in NO_TEXT_SYNTAXES:
        return 0
    if syntax in JPEG_SYNTAXES or syntax in JPEG_LS_SYNTAXES:
        strip = _strip_jpeg if syntax in JPEG_SYNTAXES else _strip_jpeg_ls
    elif syntax in J2K_SYNTAXES:
        strip = _strip_j2k
    else:
        raise PixelTextError(
            f"its pixel data ({syntax}) may carry text that MedViewer cannot check",
            hint="decompress it (e.g. dcmdjpeg, gdcmconv --raw) before export")
    from pydicom.encaps import encapsulate, generate_frames

    frames = int(ds.get("NumberOfFrames", 1) or 1)
    try:
        original = list(generate_frames(elem.value, number_of_frames=frames))
    except (ValueError, KeyError, EOFError, TypeError) as exc:
        raise PixelTextError(f"its compressed pixel data is damaged ({_words(exc)})",
                             hint="export it decompressed, or leave it out") from exc
    cleaned, removed = [], 0
    for index, frame in enumerate(original):
        try:
            data, count = strip(bytes(frame))
        except _StreamError as exc:
            raise PixelTextError(f"frame {index + 1} is not a well-formed stream ({exc})",
                                 hint="export it decompressed, or leave it out") from exc
        cleaned.append(data)
        removed += count
    if removed:
        for tag in _EXTENDED_OFFSETS:
            if tag in ds:
                del ds[tag]
        ds[_PIXEL_DATA].value = encapsulate(cleaned, has_bot=len(cleaned) > 1)
    return removed


class _StreamError(ValueError):
    pass


def _words(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


def _segment_length(data: bytes, pos: int) -> int:
    if pos + 2 > len(data):
        raise _StreamError("truncated marker segment")
    length = int.from_bytes(data[pos:pos + 2], "big")
    if length < 2 or pos + length > len(data):
        raise _StreamError("a marker segment runs past the end")
    return length


def _keep_app(marker: int, segment: bytes) -> bool:
    """Keep only the APP segments that say how to decode (JFIF, Adobe colour transform)."""
    body = segment[2:]
    return (marker == 0xE0 and body.startswith(b"JFIF\x00")) or (
        marker == 0xEE and body.startswith(b"Adobe"))


def _strip_jpeg(data: bytes, *, jpeg_ls: bool = False) -> tuple[bytes, int]:
    """Return a JPEG (or JPEG-LS) stream without COM/APPn text, and how many were removed."""
    if data[:2] != b"\xff\xd8":
        raise _StreamError("no start-of-image marker")
    out, pos, removed, n = bytearray(b"\xff\xd8"), 2, 0, len(data)
    while True:
        if pos >= n or data[pos] != 0xFF:
            raise _StreamError("no end-of-image marker")
        while pos < n and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= n:
            raise _StreamError("no end-of-image marker")
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI: anything after it is dropped
            out += b"\xff\xd9"
            if data[pos:].strip(b"\x00"):
                removed += 1
            return bytes(out), removed
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            out += bytes((0xFF, marker))
            continue
        length = _segment_length(data, pos)
        segment = data[pos:pos + length]
        pos += length
        if marker == 0xFE or (0xE0 <= marker <= 0xEF and not _keep_app(marker, segment)):
            removed += 1
            continue
        out += bytes((0xFF, marker)) + segment
        if marker == 0xDA:  # SOS: copy the entropy-coded data up to the next marker
            start = pos
            while True:
                i = data.find(b"\xff", pos)
                if i < 0 or i + 1 >= n:
                    raise _StreamError("scan data without an end")
                following = data[i + 1]
                in_data = (following < 0x80 if jpeg_ls else following == 0x00) or (
                    0xD0 <= following <= 0xD7)
                if in_data:
                    pos = i + 2
                    continue
                out += data[start:i]
                pos = i
                break


def _strip_jpeg_ls(data: bytes) -> tuple[bytes, int]:
    return _strip_jpeg(data, jpeg_ls=True)


def _strip_j2k(data: bytes) -> tuple[bytes, int]:
    """Return a JPEG 2000 codestream without COM segments, and how many were removed."""
    if data[:2] != b"\xff\x4f":
        raise _StreamError("not a JPEG 2000 codestream (no SOC marker)")
    out, pos, removed, n = bytearray(b"\xff\x4f"), 2, 0, len(data)
    # Main header: marker segments up to the first tile-part.
    while True:
        if pos + 2 > n or data[pos] != 0xFF:
            raise _StreamError("main header without a tile-part")
        marker = data[pos + 1]
        if marker == 0x90:
            break
        length = _segment_length(data, pos + 2)
        if marker != 0x64:
            out += data[pos:pos + 2 + length]
        else:
            removed += 1
        pos += 2 + length
    # Tile-parts: SOT (Psot = its whole length), header segments, SOD, data.
    while pos + 2 <= n and data[pos:pos + 2] == b"\xff\x90":
        if pos + 12 > n:
            raise _StreamError("truncated tile-part")
        psot = int.from_bytes(data[pos + 6:pos + 10], "big")
        end = (n - 2 if data[-2:] == b"\xff\xd9" else n) if psot == 0 else pos + psot
        if end > n or end < pos + 14:
            raise _StreamError("a tile-part runs past the end")
        header, cursor, dropped = bytearray(data[pos:pos + 12]), pos + 12, 0
        while True:
            if cursor + 2 > end or data[cursor] != 0xFF:
                raise _StreamError("tile-part header without SOD")
            marker = data[cursor + 1]
            if marker == 0x93:
                break
            length = _segment_length(data, cursor + 2)
            if marker == 0x64:
                removed += 1
                dropped += 2 + length
            else:
                header += data[cursor:cursor + 2 + length]
            cursor += 2 + length
        if psot and dropped:
            header[6:10] = (psot - dropped).to_bytes(4, "big")
        out += header + data[cursor:end]
        pos = end
    if data[pos:pos + 2] != b"\xff\xd9":
        raise _StreamError("no end-of-codestream marker")
    out += b"\xff\xd9"
    if data[pos + 2:].strip(b"\x00"):
        removed += 1
    return bytes(out), removed

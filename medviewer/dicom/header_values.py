"""The header values an import stores, read once each from the parsed elements.

``Dataset.get(keyword)`` costs far more than the parse that found the element
(keyword lookup, ``__getitem__``, hooks, value validation, ``MultiValue`` and
``DSfloat`` objects): profiled, the ~30 values of a scan took longer than
reading the header itself.  :class:`HeaderValues` decodes the common simple
forms straight from pydicom's raw elements and hands everything else to
pydicom, so the values are the ones ``Dataset.get`` gives, as the scan uses
them (``str``, ``int``, ``float``, a tuple of floats):

- single string values of VR AE, AS, CS, DA, DT, TM, UI, IS, DS (decoded
  as pydicom does, ISO 8859-1) and of the text VRs SH, LO, ST, LT, UC, UT,
  PN in the default, ISO_IR 100 or ISO_IR 192 character set;
- ``US`` single values; ``IS`` / ``DS`` numbers in plain decimal form, and
  ``DS`` lists of them.

Anything else (a value with several parts that is not a DS list, another
character set, a person name with ideographic groups, an empty or deferred
value, an unexpected VR, anything that fails to decode) is read through
``Dataset.get``.  ``tests/test_scan.py`` checks that the headers built from
these values equal those built from ``Dataset.get`` on every sample file.
"""

from __future__ import annotations

import re
import struct
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement

_STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "TM", "UI"})
_TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT", "PN"})
# pydicom's Python codecs for the character sets decoded here (pydicom.charset.python_encoding).
_CHARSETS = {"": "latin_1", "ISO_IR 6": "latin_1", "ISO_IR 100": "latin_1", "ISO_IR 192": "utf_8"}
_IS = re.compile(rb"\s*[+-]?\d{1,12}\s*")
_DS = re.compile(rb"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*")
_CHARSET_TAG = 0x00080005
_MISSING = object()


class HeaderValues:
    """Read header values of one parsed dataset, each element once (see the module docstring).

    Parameters
    ----------
    ds : pydicom.Dataset
        Read with ``dcmread`` (raw elements not yet converted).
    """

    def __init__(self, ds: Any) -> None:
        self._ds = ds
        self._cache: dict[str, Any] = {}
        self._text_codec = self._codec()

    def _codec(self) -> str | None:
        raw = self._ds.get_item(_CHARSET_TAG)
        if raw is None:
            return "latin_1"
        if not isinstance(raw, RawDataElement) or raw.value is None:
            return None
        name = raw.value.decode("latin_1").strip(" \x00")
        return _CHARSETS.get(name)  # None: several or another character set, left to pydicom

    def get(self, keyword: str, default: Any = None) -> Any:
        """Return the value ``Dataset.get(keyword, default)`` gives, in the form the scan uses."""
        value = self._cache.get(keyword, _MISSING)
        if value is _MISSING:
            value = self._cache[keyword] = self._read(keyword)
        return default if value is None else value

    def _read(self, keyword: str) -> Any:
        tag, vr = _tag_and_vr(keyword)
        raw = self._ds.get_item(tag, keep_deferred=True)
        if raw is None:
            return None
        if isinstance(raw, RawDataElement) and raw.value and (raw.VR is None or raw.VR == vr):
            value = _decode(raw.value, vr, raw.is_little_endian, self._text_codec)
            if value is not _MISSING:
                return value
        return self._ds.get(keyword)


def _decode(data: bytes, vr: str, little_endian: bool, text_codec: str | None) -> Any:
    """Return the simple value of ``data``, or ``_MISSING`` when pydicom must read it."""
    try:
        if vr == "US":
            return struct.unpack("<H" if little_endian else ">H", data)[0] if len(data) == 2 else _MISSING
        if vr == "DS":
            parts = data.rstrip(b" \x00").split(b"\\")
            if not all(_DS.fullmatch(p) for p in parts):
                return _MISSING
            floats = tuple(float(p) for p in parts)
            return floats[0] if len(floats) == 1 else floats
        if b"\\" in data:
            return _MISSING
        if vr == "IS":
            return int(data) if _IS.fullmatch(data.rstrip(b"\x00")) else _MISSING
        if vr in _STRING_VRS:
            return data.decode("latin_1").rstrip(" \x00")
        if vr in _TEXT_VRS and text_codec is not None:
            text = data.decode(text_codec).rstrip(" \x00")
            return _MISSING if vr == "PN" and "=" in text else text
    except (UnicodeDecodeError, ValueError, struct.error):
        pass
    return _MISSING


_TAGS: dict[str, tuple[int, str]] = {}


def _tag_and_vr(keyword: str) -> tuple[int, str]:
    found = _TAGS.get(keyword)
    if found is None:
        tag = tag_for_keyword(keyword)
        if tag is None:
            raise KeyError(f"{keyword!r} is not a DICOM keyword")
        found = _TAGS[keyword] = (tag, dictionary_VR(tag))
    return found

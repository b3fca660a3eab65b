"""Shift DICOM dates by whole days (Retain Longitudinal Temporal Information, Modified Dates).

References
----------
DICOM PS3.15 2024b E.3.6: dates are "modified" so that the intervals between them
survive; PS3.5 6.2 gives the DA (``YYYYMMDD``, ranges ``A-B``) and DT
(``YYYYMMDDHHMMSS.FFFFFF&ZZXX``, any trailing part optional) formats.

Only the calendar date moves; the time of day (TM, and the time part of DT) stays,
because a shift of whole days keeps both intervals and circadian context.
"""

from __future__ import annotations

import datetime as dt
import re


def shift_da(value: str, days: int) -> str:
    """Shift a DA value (a date or a ``start-end`` range) by ``days``.

    Unparseable parts come back empty rather than unchanged, so a malformed date
    can never pass through unshifted.
    """
    text = str(value).strip()
    if not text:
        return text
    if "-" in text:
        start, _, end = text.partition("-")
        return f"{shift_da(start, days) if start else ''}-{shift_da(end, days) if end else ''}"
    try:
        day = dt.datetime.strptime(text[:8], "%Y%m%d").date()
    except ValueError:
        return ""
    return (day + dt.timedelta(days=days)).strftime("%Y%m%d")


def shift_dt(value: str, days: int) -> str:
    """Shift a DT value by ``days``, keeping its precision, time and UTC offset."""
    text = str(value).strip()
    if not text:
        return text
    # "-" separates a range, but also starts a negative UTC offset ("...-0500"): a range
    # separator is followed by another date (at least 4 digits, then no more "&ZZXX").
    match = _RANGE.match(text)
    # "YYYYMMDD-0500" is a date with a UTC offset; "2020-2021" is a range of years.
    if match and not (len(match.group(2)) == 4 and len(match.group(1)) > 4):
        return f"{shift_dt(match.group(1), days)}-{shift_dt(match.group(2), days)}"
    parts = _DT.match(text)
    if not parts:
        return ""
    year, month, day, rest = parts.groups()
    try:
        # Partial dates shift from the middle of their month or year, then keep their
        # precision: "202103" stays a month, "2021" a year.
        when = dt.date(int(year), int(month or 7), int(day or 15 if month else 1))
        shifted = when + dt.timedelta(days=days)
    except ValueError:
        return ""
    out = f"{shifted.year:04d}"
    if month:
        out += f"{shifted.month:02d}"
    if day:
        out += f"{shifted.day:02d}"
    return out + rest


_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(.*)$")
_RANGE = re.compile(r"^(\d{4}[^-]*)-(\d{4}\d*(?:\.\d+)?(?:[+-]\d{4})?)$")

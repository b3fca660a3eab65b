"""The identity cleaner for a library's teaching text (quiz, export).

It knows every patient of the library (names, IDs), can read the names and
identifiers of the cases' own headers, and never removes the library's label
names (the teaching content).  See :mod:`medviewer.deid.free_text`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from medviewer.deid.free_text import FreeTextCleaner

_log = logging.getLogger(__name__)


def library_cleaner(library) -> FreeTextCleaner:
    """Return a cleaner that knows every patient of a library and keeps its label names.

    ``library`` is an open :class:`~medviewer.store.library.Library`.
    """
    cleaner = FreeTextCleaner(keep=library.label_names(include_model=True))
    patients = library.patients()
    cleaner.add_names(p.name for p in patients)
    cleaner.add_identifiers(p.patient_id for p in patients)
    return cleaner


def collect_headers(cleaner: FreeTextCleaner, locations: Iterable[str]) -> None:
    """Add the names and identifiers in the DICOM headers of ``locations`` to ``cleaner``."""
    from pydicom import dcmread

    from medviewer.dicom.sources import RASTER_SUFFIXES, FileRef

    for location in locations:
        ref = FileRef.from_display(location)
        if ref.suffix in RASTER_SUFFIXES:
            continue
        try:
            with ref.open() as fh:
                cleaner.collect(dcmread(fh, stop_before_pixels=True, force=True))
        except Exception as exc:  # noqa: BLE001 - an unreadable file has no header to read
            _log.debug("no identity collected from %s: %s", location, exc)


def case_cleaner(store, case_id: int) -> FreeTextCleaner:
    """Return the cleaner for one case: the library's patients and the case's own headers."""
    cleaner = library_cleaner(store.library)
    found = store.library.case_location(int(case_id))
    if found:
        collect_headers(cleaner, [found[0]])
    return cleaner

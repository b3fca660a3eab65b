"""Find cases in the library by label, tag, note text, modality and study date.

Every criterion given must match (AND); text matches are case-insensitive
substrings.  Dates are DICOM ``YYYYMMDD`` strings and compare as text, which is
their chronological order.
"""

from __future__ import annotations

from medviewer.store.library import Library
from medviewer.teaching.models import CaseHit


def search_cases(library: Library, *, label: str | None = None, tag: str | None = None,
                 text: str | None = None, modality: str | None = None,
                 date_from: str | None = None, date_to: str | None = None,
                 collection: int | None = None, limit: int = 500) -> list[CaseHit]:
    """Return the cases matching every given criterion.

    Parameters
    ----------
    library : Library
    label : str, optional
        A dataset or user label name (exact, case-insensitive); model labels are ignored.
    tag : str, optional
        A case tag (exact, case-insensitive).
    text : str, optional
        Substring of any note field (history, findings, diagnosis, discussion,
        references, free text).
    modality : str, optional
        (0008,0060) Modality, e.g. ``CT``.
    date_from, date_to : str, optional
        Study date range, inclusive, ``YYYYMMDD``.
    collection : int, optional
        Only cases of this collection (as teaching case or exemplar).
    limit : int
        At most this many hits, by case id.

    Returns
    -------
    list of CaseHit
    """
    from medviewer.teaching.store import TeachingStore, find_case_rows

    store = TeachingStore(library)
    rows, matched = find_case_rows(library.conn, label=label, tag=tag, text=text,
                                   modality=modality, date_from=date_from, date_to=date_to,
                                   collection=collection, limit=limit)
    return [CaseHit(r[0], r[1], r[2], r[3], r[4], tuple(store.label_names(r[0])),
                    tuple(store.tags(r[0])), tuple(matched)) for r in rows]

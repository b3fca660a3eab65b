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
    where, params, matched = [], [], []
    if label:
        where.append("c.id IN (SELECT case_ref FROM labels WHERE name = ? COLLATE NOCASE AND "
                     "source != 'model')")
        params.append(label.strip())
        matched.append("label")
    if tag:
        where.append("c.id IN (SELECT case_ref FROM case_tags WHERE tag = ? COLLATE NOCASE)")
        params.append(tag.strip())
        matched.append("tag")
    if text:
        like = f"%{text.strip()}%"
        where.append("c.id IN (SELECT case_ref FROM case_notes WHERE history LIKE ? OR "
                     "findings LIKE ? OR diagnosis LIKE ? OR discussion LIKE ? OR citations "
                     "LIKE ? OR free_text LIKE ?)")
        params.extend([like] * 6)
        matched.append("note")
    if modality:
        where.append("se.modality = ? COLLATE NOCASE")
        params.append(modality.strip())
        matched.append("modality")
    if date_from:
        where.append("st.study_date >= ? AND st.study_date != ''")
        params.append(date_from.strip())
        matched.append("date")
    if date_to:
        where.append("st.study_date <= ? AND st.study_date != ''")
        params.append(date_to.strip())
        if "date" not in matched:
            matched.append("date")
    if collection is not None:
        where.append("c.id IN (SELECT case_ref FROM collection_items WHERE collection_ref = ?)")
        params.append(int(collection))
        matched.append("collection")
    sql = ("SELECT c.id, i.location, se.modality, st.study_date, p.patient_id FROM cases c "
           "JOIN instances i ON i.id = c.instance_ref JOIN series se ON se.id = i.series_ref "
           "JOIN studies st ON st.id = se.study_ref JOIN patients p ON p.id = st.patient_ref")
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY c.id LIMIT ?"
    params.append(int(limit))
    hits = []
    for r in library.conn.execute(sql, params).fetchall():
        labels = [x[0] for x in library.conn.execute(
            "SELECT DISTINCT name FROM labels WHERE case_ref = ? AND source != 'model' "
            "ORDER BY name", (r[0],))]
        tags = [x[0] for x in library.conn.execute(
            "SELECT tag FROM case_tags WHERE case_ref = ? ORDER BY tag COLLATE NOCASE", (r[0],))]
        hits.append(CaseHit(r[0], r[1], r[2], r[3], r[4], tuple(labels), tuple(tags),
                            tuple(matched)))
    return hits

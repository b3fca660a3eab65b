"""Search filters, turned into the set of candidates *before* ranking.

Filtering after ranking (search k, then drop what does not match) returns
fewer than k results, or none, whenever the nearest cases are filtered out:
the query's own patient's other films are usually its nearest neighbours.
So a filter becomes a boolean mask over the index rows, and the search only
ranks rows the mask allows (see :mod:`medviewer.retrieval.ann`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medviewer.retrieval.catalog import CaseInfo


@dataclass(frozen=True)
class SearchFilter:
    """Which cases a search may return.

    Attributes
    ----------
    labels : tuple of str
        Keep cases with at least one of these labels (empty: any).
    modalities : tuple of str
        Keep cases of these (0008,0060) modalities (empty: any).
    body_parts : tuple of str
        Keep cases with these (0018,0015) body parts, case-insensitive (empty: any).
    date_from, date_to : str
        Keep studies dated within this range, inclusive, ``YYYYMMDD`` or
        ``YYYY-MM-DD``; a case without a study date is dropped when either is set.
    exclude_same_patient : bool
        Drop the query's patient's cases (default: on, as the protocol asks).
    exclude_same_study : bool
        Drop the cases of the query's study.
    case_ids : tuple of int, optional
        Only these cases (e.g. a collection, or the test split).
    exclude_case_ids : tuple of int
        Never these cases.
    """

    labels: tuple[str, ...] = ()
    modalities: tuple[str, ...] = ()
    body_parts: tuple[str, ...] = ()
    date_from: str = ""
    date_to: str = ""
    exclude_same_patient: bool = True
    exclude_same_study: bool = False
    case_ids: tuple[int, ...] | None = None
    exclude_case_ids: tuple[int, ...] = ()

    def describe(self) -> list[str]:
        """Return the active filters in words (for the results panel and the CLI)."""
        out = []
        if self.labels:
            out.append("label: " + " or ".join(self.labels))
        if self.modalities:
            out.append("modality: " + ", ".join(self.modalities))
        if self.body_parts:
            out.append("body part: " + ", ".join(self.body_parts))
        if self.date_from or self.date_to:
            out.append(f"study date {self.date_from or '...'} to {self.date_to or '...'}")
        if self.exclude_same_patient:
            out.append("other patients only")
        if self.exclude_same_study:
            out.append("other studies only")
        if self.case_ids is not None:
            out.append(f"{len(self.case_ids)} chosen cases")
        return out


@dataclass(frozen=True)
class QueryContext:
    """Where the query comes from, for the patient and study exclusions.

    Attributes
    ----------
    case_id : int, optional
        The library case searched with (never returned as its own neighbour).
    patient_ref : int, optional
        Its library patient row.
    patient_id : str
        Its Patient ID (also matches cases of other patient rows with that ID).
    study_uid : str
        Its Study Instance UID.
    """

    case_id: int | None = None
    patient_ref: int | None = None
    patient_id: str = ""
    study_uid: str = ""

    @classmethod
    def of_case(cls, case: CaseInfo) -> QueryContext:
        """Return the context of a library case."""
        return cls(case.id, case.patient_ref, case.patient_id, case.study_uid)


def normalise_date(text: str) -> str:
    """Return a date as ``YYYYMMDD`` (accepts ``YYYY-MM-DD``); empty stays empty.

    Raises
    ------
    ValueError
        Not a date in either form.
    """
    text = (text or "").strip()
    if not text:
        return ""
    digits = text.replace("-", "")
    if len(digits) != 8 or not digits.isdigit():
        raise ValueError(f"dates are YYYYMMDD or YYYY-MM-DD, not {text!r}")
    return digits


class CandidateTable:
    """Per-row arrays of the filterable fields, so a filter becomes a mask in a few numpy operations.

    Built once per catalog snapshot (a Python pass over the cases); each
    search then costs O(rows) vectorised work, not a Python loop.
    """

    def __init__(self, cases: Sequence[CaseInfo | None]) -> None:
        present = [c is not None for c in cases]
        self.present = np.array(present, dtype=bool)
        self.ids = np.array([c.id if c is not None else -1 for c in cases], dtype=np.int64)
        self.patient_ref = np.array([c.patient_ref if c is not None else -1 for c in cases], dtype=np.int64)
        self.patient_id = np.array([c.patient_id if c is not None else "" for c in cases], dtype=object)
        self.study_uid = np.array([c.study_uid if c is not None else "" for c in cases], dtype=object)
        self.modality = np.array([c.modality.upper() if c is not None else "" for c in cases], dtype=object)
        self.body_part = np.array([c.body_part.upper() if c is not None else "" for c in cases], dtype=object)
        self.study_date = np.array([c.study_date if c is not None else "" for c in cases], dtype=object)
        self._labels: dict[str, list[int]] = {}
        for row, case in enumerate(cases):
            for label in case.labels if case is not None else ():
                self._labels.setdefault(label, []).append(row)

    def __len__(self) -> int:
        return len(self.ids)

    def has_label(self, labels: Sequence[str]) -> np.ndarray:
        """Return rows holding any of ``labels``."""
        out = np.zeros(len(self), dtype=bool)
        for label in labels:
            out[self._labels.get(label, [])] = True
        return out

    def mask(self, flt: SearchFilter, context: QueryContext | None = None) -> np.ndarray:
        """Return a boolean mask over the rows: True where the case may be returned."""
        context = context or QueryContext()
        mask = self.present.copy()
        if flt.case_ids is not None:
            mask &= np.isin(self.ids, np.asarray(list(flt.case_ids), dtype=np.int64))
        excluded = list(flt.exclude_case_ids) + ([context.case_id] if context.case_id is not None else [])
        if excluded:
            mask &= ~np.isin(self.ids, np.asarray(excluded, dtype=np.int64))
        if flt.labels:
            mask &= self.has_label(flt.labels)
        if flt.modalities:
            mask &= np.isin(self.modality, [m.upper() for m in flt.modalities])
        if flt.body_parts:
            mask &= np.isin(self.body_part, [b.upper() for b in flt.body_parts])
        date_from, date_to = normalise_date(flt.date_from), normalise_date(flt.date_to)
        if date_from or date_to:
            dated = self.study_date != ""
            if date_from:
                dated &= self.study_date >= date_from
            if date_to:
                dated &= self.study_date <= date_to
            mask &= dated.astype(bool)
        if flt.exclude_same_patient:
            if context.patient_ref is not None:
                mask &= self.patient_ref != context.patient_ref
            if context.patient_id:
                mask &= self.patient_id != context.patient_id
        if flt.exclude_same_study and context.study_uid:
            mask &= self.study_uid != context.study_uid
        return mask


def candidate_mask(cases: Sequence[CaseInfo | None], flt: SearchFilter,
                   context: QueryContext | None = None) -> np.ndarray:
    """Return a boolean mask over ``cases``: True where the case may be returned.

    Parameters
    ----------
    cases : sequence of CaseInfo or None
        One per index row; None for a row whose case left the library.
    flt : SearchFilter
    context : QueryContext, optional
        The query's origin; the query case itself is always excluded.
    """
    return CandidateTable(cases).mask(flt, context)

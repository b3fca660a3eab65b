"""Which library cases a model applies to: reader-study queries outside its domain are refused.

A reader study asks readers to judge the model's neighbours of a query; for a
query the model was not trained on (a head CT for a chest radiograph model)
those neighbours mean nothing, so the design refuses it, in words.  The
check is the header one of :mod:`medviewer.inference.applicability` (no model
run): issue 17's design code and the CLI call :func:`screen_cases`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from medviewer.inference.applicability import Applicability, Domain, check_applicability, image_facts
from medviewer.store.library import CaseRow


def case_applicability(case: CaseRow, meta: dict[str, Any]) -> Applicability:
    """Return whether the model of bundle metadata ``meta`` applies to a library case (header check).

    An unreadable file is not applicable (its reason says why).
    """
    from medviewer.dicom.sources import FileRef
    from medviewer.errors import ImageReadError

    try:
        facts = image_facts(FileRef.from_display(case.location))
    except (ImageReadError, OSError) as exc:
        return Applicability(False, [f"the image cannot be read ({exc})"])
    return check_applicability(Domain.from_metadata(meta), facts)


def screen_cases(cases: Sequence[CaseRow], meta: dict[str, Any] | None
                 ) -> tuple[list[CaseRow], dict[int, Applicability]]:
    """Split cases into those the model applies to and the refused ones (case id -> why).

    ``meta`` None (no bundle, e.g. the raw-pixel baseline) accepts every case.
    """
    if meta is None:
        return list(cases), {}
    eligible, refused = [], {}
    for case in cases:
        verdict = case_applicability(case, meta)
        if verdict.applicable:
            eligible.append(case)
        else:
            refused[case.id] = verdict
    return eligible, refused


def refusal_message(refused: dict[int, Applicability], limit: int = 3) -> str:
    """Return the refused queries in one sentence (the first ``limit`` with their reasons)."""
    parts = [f"case {cid}: {' '.join(v.reasons)}" for cid, v in list(refused.items())[:limit]]
    more = f" (and {len(refused) - limit} more)" if len(refused) > limit else ""
    return "; ".join(parts) + more

"""Relevance marks: a reader's "relevant / not relevant" on a retrieval result, kept in the library.

Marks are user answers, so they are written with ``synchronous=FULL`` (a
power cut after "saved" cannot lose them) and never deleted with a case
(see ``store/migrations/v002_retrieval.py``).  Call on the thread that owns
the :class:`~medviewer.store.Library`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from medviewer.store.library import Library
from medviewer.store.relevance import select_marks, upsert_mark


@dataclass(frozen=True)
class RelevanceMark:
    """One stored mark."""

    query_case: int | None
    query_location: str
    query_region: str
    result_case: int
    result_location: str
    relevant: bool
    model_sha256: str
    reader: str
    rank: int | None
    distance: float | None
    created_at: str
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        """Return the mark as JSON-friendly data."""
        return dict(self.__dict__)


def region_text(region: Any) -> str:
    """Return a region (with x, y, width, height) as ``"x,y,width,height"``; None gives ""."""
    if region is None:
        return ""
    return f"{int(region.x)},{int(region.y)},{int(region.width)},{int(region.height)}"


def set_mark(library: Library, *, query_location: str, result_case: int, result_location: str,
             relevant: bool, model_sha256: str, query_case: int | None = None, query_region: str = "",
             reader: str = "", rank: int | None = None, distance: float | None = None) -> RelevanceMark:
    """Store (or replace) a mark; return it as stored."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with library.durable_transaction() as conn:
        upsert_mark(conn, query_case=query_case, query_location=query_location,
                    query_region=query_region, result_case=result_case,
                    result_location=result_location, relevant=relevant,
                    model_sha256=model_sha256, reader=reader, rank=rank, distance=distance,
                    now=now)
    return marks(library, query_location=query_location, model_sha256=model_sha256, reader=reader,
                 result_location=result_location, query_region=query_region)[0]


def marks(library: Library, *, query_location: str | None = None, model_sha256: str | None = None,
          reader: str | None = None, result_location: str | None = None,
          query_region: str | None = None) -> list[RelevanceMark]:
    """Return the stored marks matching every given criterion, oldest first."""
    rows = select_marks(library.conn, query_location=query_location,
                        model_sha256=model_sha256 and model_sha256.lower(), reader=reader,
                        result_location=result_location, query_region=query_region)
    return [RelevanceMark(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7], r[8], r[9], r[10], r[11])
            for r in rows]

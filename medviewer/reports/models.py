"""Plain records of the report package."""

from __future__ import annotations

from dataclasses import dataclass, field

SOURCES = ("sr", "csv", "txt", "typed", "synthetic")


@dataclass(frozen=True)
class Report:
    """Report text attached to a study or to one case.

    Attributes
    ----------
    id : int
    study_ref, case_ref : int or None
        Exactly one is set: a study's report applies to every case of the study.
    source : str
        Where it came from, one of :data:`SOURCES`.
    source_detail : str
        The file (or CSV row) it was read from.
    text : str
        The report as written.
    sections : dict
        ``{section: text}`` (see :mod:`medviewer.reports.sections`).
    """

    id: int
    study_ref: int | None
    case_ref: int | None
    source: str
    source_detail: str
    text: str
    sections: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True)
class TextHit:
    """One case found by a text search.

    Attributes
    ----------
    rank : int
        1-based.
    case_id : int
    report_id : int
    score : float
        Higher is better (BM25, learned cosine, or the fused score).
    location : str
    labels : tuple of str
        The case's dataset/user labels.
    snippet : str
        The report sentence that matched best.
    scores : dict
        The parts of a fused score (``bm25``, ``learned``), when fused.
    """

    rank: int
    case_id: int
    report_id: int
    score: float
    location: str = ""
    labels: tuple[str, ...] = ()
    snippet: str = ""
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Return a JSON-friendly dict."""
        return {"rank": self.rank, "case_id": self.case_id, "report_id": self.report_id,
                "score": round(float(self.score), 6), "location": self.location,
                "labels": list(self.labels), "snippet": self.snippet,
                "scores": {k: round(float(v), 6) for k, v in self.scores.items()}}


@dataclass
class ImportSummary:
    """What a report import attached and what it skipped, with reasons."""

    attached: int = 0
    replaced: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Return a JSON-friendly dict."""
        return {"attached": self.attached, "replaced": self.replaced,
                "skipped": [{"item": i, "reason": r} for i, r in self.skipped]}

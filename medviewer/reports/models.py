"""Plain records of the report package."""

from __future__ import annotations

from dataclasses import dataclass, field

SOURCES = ("sr", "csv", "txt", "typed", "synthetic")
RANKER_TITLES = {"bm25": "report words", "learned": "image-text model"}


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
        What the list is sorted by, higher is better: BM25 (partial matches shifted
        below every full match), the learned cosine, or the fused RRF score.
    location : str
    labels : tuple of str
        The case's dataset/user labels.
    snippet : str
        The report sentence that matched best.
    scores : dict
        The parts of a fused score (``bm25``, ``learned``: each ranking's weighted
        reciprocal rank), when fused; the cosine under ``learned`` when ranked by the
        model alone.
    rankers : dict
        ``{ranker: {"rank": int or None, "score": float or None, ...}}`` for each
        ranker that was asked: its own rank of the case (None: not in its list) and
        its raw score (BM25 unshifted, the cosine in the joint space), so a fused
        result says which ranker found it and how strongly.
    """

    rank: int
    case_id: int
    report_id: int
    score: float
    location: str = ""
    labels: tuple[str, ...] = ()
    snippet: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    rankers: dict[str, dict] = field(default_factory=dict)

    @property
    def found_by(self) -> tuple[str, ...]:
        """Return the rankers whose own list holds the case (``bm25``, ``learned``)."""
        return tuple(name for name, r in self.rankers.items() if r.get("rank") is not None)

    def ranker_text(self) -> str:
        """Return which rankers found the case, with their own ranks and raw scores, in words."""
        parts = []
        for name, r in self.rankers.items():
            title = RANKER_TITLES.get(name, name)
            score = r.get("score")
            if name == "bm25":
                raw = "" if score is None else f"BM25 {score:.2f}"
                raw += {"all": ", every word", "some": ", some words"}.get(r.get("words"), "")
            else:
                raw = "" if score is None else f"cosine {score:+.2f}"
            if r.get("rank") is None:
                parts.append(f"{title}: not in its list" + (f" ({raw})" if raw else ""))
            else:
                parts.append(f"{title} #{r['rank']}" + (f" ({raw})" if raw else ""))
        return "; ".join(parts)

    def to_dict(self) -> dict:
        """Return a JSON-friendly dict."""
        def clean(value):
            return round(float(value), 6) if isinstance(value, float) else value

        return {"rank": self.rank, "case_id": self.case_id, "report_id": self.report_id,
                "score": round(float(self.score), 6), "location": self.location,
                "labels": list(self.labels), "snippet": self.snippet,
                "scores": {k: round(float(v), 6) for k, v in self.scores.items()},
                "found_by": list(self.found_by),
                "rankers": {name: {k: clean(v) for k, v in r.items()}
                            for name, r in self.rankers.items()}}


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

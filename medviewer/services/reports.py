"""Reports of the open library: import, show, type, and search by phrase.

Plain functions over a :class:`~medviewer.store.library.Library` that the CLI
and the GUI's Session both call; no Qt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from medviewer.reports import ReportStore, TextHit, search_reports
from medviewer.reports.importers import import_reports as _import_reports
from medviewer.reports.models import ImportSummary, Report
from medviewer.store.library import Library

BM25, LEARNED, FUSED = "bm25", "learned", "fused"


@dataclass
class TextSearchResult:
    """Cases found for a phrase, how they were ranked, and what the ranking cannot say."""

    phrase: str
    mode: str
    hits: list[TextHit] = field(default_factory=list)
    reports: int = 0
    warnings: list[str] = field(default_factory=list)
    fusion: str = ""  # how a fused list was made, in words

    @property
    def summary(self) -> str:
        """Return one line that says what was searched and how."""
        how = {BM25: "BM25 over report words (negations respected)",
               LEARNED: "learned phrase-to-image similarity",
               FUSED: "BM25 fused with learned phrase-to-image similarity"}[self.mode]
        found = f"{len(self.hits)} case{'s' if len(self.hits) != 1 else ''}"
        return f"{found} for \u201c{self.phrase}\u201d by {how} ({self.reports} reports in the library)"

    def to_dict(self) -> dict:
        """Return a JSON-friendly dict."""
        return {"phrase": self.phrase, "mode": self.mode, "reports": self.reports,
                "fusion": self.fusion or None,
                "hits": [h.to_dict() for h in self.hits], "warnings": list(self.warnings)}


def import_reports(library: Library, paths) -> ImportSummary:
    """Read reports from CSV tables, folders of .txt or SR files, and attach them."""
    return _import_reports(ReportStore(library), list(paths))


def set_typed_report(library: Library, case_id: int, text: str) -> Report:
    """Store a typed or pasted report for one case (replacing its earlier typed one)."""
    store = ReportStore(library)
    return store.report(store.attach("case", int(case_id), text, "typed", "typed in MedViewer"))


def case_report(library: Library, case_id: int) -> Report | None:
    """Return the report to show for a case: its own, else its study's; None when it has none."""
    reports = ReportStore(library).reports_for_case(int(case_id))
    return reports[0] if reports else None


def text_search(library: Library, phrase: str, k: int = 10, *, model: str | None = None,
                rank: str | None = None, provider: str = "auto",
                allow_stale: bool = False) -> TextSearchResult:
    """Rank the library's cases for ``phrase``: BM25, the learned model, or both fused.

    Parameters
    ----------
    model : str, optional
        An image-text bundle (needed for ``learned`` and ``fused``), whose index of the
        library must exist (``medviewer index build``).
    rank : {"bm25", "learned", "fused"}, optional
        Default: ``fused`` with a model, ``bm25`` without.
    """
    from medviewer.reports.errors import ReportError

    mode = rank or (FUSED if model else BM25)
    store = ReportStore(library)
    result = TextSearchResult(phrase=phrase.strip(), mode=mode, reports=store.count())
    if mode == BM25:
        result.hits = search_reports(store, phrase, k=k)
    else:
        if not model:
            raise ReportError(f"ranking by {mode} needs an image-text model",
                              hint="pass --model BUNDLE (trained with models.prior_train)")
        from medviewer.services.learned_search import fusion_note, learned_text_search

        hits, warnings = learned_text_search(library, store, phrase, k=k, model=model, mode=mode,
                                             provider=provider, allow_stale=allow_stale)
        result.hits, result.warnings = hits, warnings
        result.fusion = fusion_note(k) if mode == FUSED else ""
    if result.reports == 0 and mode != LEARNED:
        result.warnings.append("the library has no reports: import them with 'medviewer report import'")
    return result

"""Reports of studies and cases: import, sections, negation-aware text search, learned search.

Domain package (no Qt, no torch).  SQL lives in :mod:`medviewer.reports.store`.
"""

from medviewer.reports.errors import ReportError, ReportTargetError, TextQueryError
from medviewer.reports.models import ImportSummary, Report, TextHit
from medviewer.reports.search import TextQuery, parse_query, search_reports
from medviewer.reports.sections import split_sections
from medviewer.reports.store import CASE, STUDY, ReportStore

__all__ = [
    "CASE", "STUDY", "ImportSummary", "Report", "ReportError", "ReportStore", "ReportTargetError",
    "TextHit", "TextQuery", "TextQueryError", "parse_query", "search_reports", "split_sections",
]

"""Write a reader-study report as a tidy CSV: one row per statistic, reader and group."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from pathlib import Path

from medviewer.stats.results import Estimate, ReaderStudyReport

RESULT_COLUMNS = (
    "group_column",
    "group_value",
    "reader",
    "statistic",
    "estimate",
    "ci_low",
    "ci_high",
    "n_items",
    "n_queries",
)


def result_rows(report: ReaderStudyReport) -> Iterator[dict[str, str]]:
    """Yield the tidy rows of a report, overall first, then each group.

    Overall rows have empty ``group_column`` and ``group_value``; coefficients
    across readers have an empty ``reader``.  Undefined values are empty cells.
    """
    yield from _rows(report, "", "")
    for group in report.groups:
        yield from _rows(group.report, group.column, group.value)


def write_results_csv(report: ReaderStudyReport, path: str | Path) -> Path:
    """Write :func:`result_rows` to ``path`` and return it."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=RESULT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(result_rows(report))
    return path


def _rows(report: ReaderStudyReport, column: str, value: str) -> Iterator[dict[str, str]]:
    """Yield the rows of one (sub-)report."""
    for name, est in report.coefficients.items():
        yield _row(column, value, "", name, est)
    for reader in report.readers:
        for est in (reader.agreement, reader.cohen_kappa_model, reader.kappa_vs_others):
            yield _row(column, value, reader.reader, est.name, est)


def _row(column: str, value: str, reader: str, statistic: str, est: Estimate) -> dict[str, str]:
    """Return one tidy row."""
    return {
        "group_column": column,
        "group_value": value,
        "reader": reader,
        "statistic": statistic,
        "estimate": _cell(est.estimate),
        "ci_low": _cell(est.ci[0]),
        "ci_high": _cell(est.ci[1]),
        "n_items": str(est.n),
        "n_queries": str(est.n_queries),
    }


def _cell(value: float) -> str:
    """Format a number for CSV; empty when undefined."""
    return repr(float(value)) if math.isfinite(value) else ""

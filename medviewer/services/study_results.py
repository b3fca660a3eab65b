"""Agreement statistics of a study stored in a library (tidy rows -> medviewer.stats)."""

from __future__ import annotations

from pathlib import Path

from medviewer.stats import analyse_reader_study
from medviewer.stats.picks import PicksTable
from medviewer.study.session import open_study_db
from medviewer.study.tidy import tidy_rows


def study_report(library_path: str | Path, study_id: int, *, n_bootstrap: int = 2000,
                 seed: int = 0, by: tuple[str, ...] = ("modality",)):
    """Return the :class:`~medviewer.stats.ReaderStudyReport` of a library's study.

    Raises
    ------
    ValueError
        When no reader has finished a query yet.
    """
    conn = open_study_db(library_path)
    try:
        rows = tidy_rows(conn, study_id)
    finally:
        conn.close()
    if not rows:
        raise ValueError("no reader has answered a query of this study yet")
    table = PicksTable.from_rows(rows, group_columns=by, source=f"study {study_id}")
    return analyse_reader_study(table, n_bootstrap=n_bootstrap, seed=seed, by=by)

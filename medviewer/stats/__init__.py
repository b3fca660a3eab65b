"""Reader-study statistics: agreement of readers with each other and with the model.

Load the tidy picks table, analyse it, and write the results::

    from medviewer.stats import load_picks, analyse_reader_study, write_html
    table = load_picks("picks.csv", group_columns=["modality"])
    report = analyse_reader_study(table, n_bootstrap=2000, seed=0, by=["modality"])
    report.fleiss_kappa.estimate, report.fleiss_kappa.ci
    write_html(report, "agreement.html")

Definitions (item, agreement, consensus, kappas) are those of DESIGN.md,
"Reader study".  No Qt, no torch; scipy is not needed.  Every function is pure
(no shared state), so any thread may call it; the GUI runs the analysis on a worker.
"""

from medviewer.stats.coefficients import (
    Coefficient,
    cohen_kappa,
    counts_from_ratings,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
)
from medviewer.stats.errors import PicksTableError
from medviewer.stats.picks import PicksTable, load_picks, write_picks_csv
from medviewer.stats.reader_study import analyse_reader_study
from medviewer.stats.report_csv import write_results_csv
from medviewer.stats.report_html import render_html, write_html
from medviewer.stats.results import (
    Estimate,
    HumanVariability,
    MissingRatings,
    ReaderResult,
    ReaderStudyReport,
)

__all__ = [
    "Coefficient",
    "Estimate",
    "HumanVariability",
    "MissingRatings",
    "PicksTable",
    "PicksTableError",
    "ReaderResult",
    "ReaderStudyReport",
    "analyse_reader_study",
    "cohen_kappa",
    "counts_from_ratings",
    "fleiss_kappa",
    "gwet_ac1",
    "krippendorff_alpha",
    "load_picks",
    "render_html",
    "write_html",
    "write_picks_csv",
    "write_results_csv",
]

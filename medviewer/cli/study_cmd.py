"""``medviewer study``: reader-study commands.

This module creates the ``study`` group and adds ``study stats``.  Other
subcommands (``create``, ``export``, ...) join the same group by appending
their ``add_<name>_parser(study_subparsers)`` function to
:data:`STUDY_SUBCOMMANDS`, so one ``register`` builds the whole group.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from medviewer.cli import study_reading_cmd
from medviewer.cli.output import emit
from medviewer.errors import MedViewerError

def register(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add the ``study`` command group and its subcommands; return the group's subparsers."""
    parser = subparsers.add_parser(
        "study",
        help="reader studies: design, read, packages, picks and statistics",
        description="Reader studies: each reader picks the most similar candidates of each "
        "query; these commands work on the studies and their picks.",
    )
    parser.set_defaults(func=lambda _args: _print_help(parser))
    study_subparsers = parser.add_subparsers(dest="study_command", metavar="SUBCOMMAND")
    for add in STUDY_SUBCOMMANDS:
        add(study_subparsers)
    return study_subparsers


def add_stats_parser(study_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``study stats``: agreement statistics from a tidy picks CSV."""
    parser = study_subparsers.add_parser(
        "stats",
        help="agreement statistics (kappas, AC1, alpha) with bootstrap intervals",
        description="Compute Fleiss' kappa across readers, Cohen's kappa of the reader "
        "consensus vs the model, per-reader agreement, Gwet's AC1 and Krippendorff's alpha, "
        "with percentile intervals from a bootstrap over queries. FILE.csv is the tidy picks "
        "format: at least reader,query,candidate,model_closest,picked (0/1; picked blank for "
        "a skipped query); other columns are ignored unless given to --by.",
    )
    parser.add_argument("--picks", required=True, type=Path, metavar="FILE.csv",
                        help="tidy picks table")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--bootstrap", type=_replicates, default=None, metavar="N",
                        help="bootstrap replicates over queries (default 2000; 0: no intervals)")
    parser.add_argument("--seed", type=int, default=None, metavar="S",
                        help="seed of the resampling (default 0)")
    parser.add_argument("--confidence", type=_confidence, default=0.95, metavar="LEVEL",
                        help="interval coverage (default 0.95)")
    parser.add_argument("--by", action="append", default=[], metavar="COLUMN",
                        help="break down by this column, e.g. modality (repeatable)")
    parser.add_argument("--html", type=Path, metavar="OUT.html",
                        help="also write a standalone HTML report")
    parser.add_argument("--csv", type=Path, metavar="OUT.csv",
                        help="also write the results as a tidy CSV")
    parser.set_defaults(func=run_stats)
    return parser


# Functions that each add one subcommand to the ``study`` group, in --help order.
STUDY_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], argparse.ArgumentParser]] = [
    add_stats_parser,
    study_reading_cmd.add_create_parser,
    study_reading_cmd.add_export_parser,
    study_reading_cmd.add_import_parser,
    study_reading_cmd.add_picks_parser,
    study_reading_cmd.add_read_parser,
]


def run_stats(args: argparse.Namespace) -> int:
    """Run ``study stats`` and return the exit code."""
    # Imported here so that building the parser (every ``medviewer`` call) stays cheap.
    from medviewer.stats import analyse_reader_study, load_picks, write_html, write_results_csv
    from medviewer.stats.bootstrap import DEFAULT_REPLICATES
    from medviewer.stats.reader_study import DEFAULT_SEED

    table = load_picks(args.picks, group_columns=args.by)
    report = analyse_reader_study(
        table,
        n_bootstrap=DEFAULT_REPLICATES if args.bootstrap is None else args.bootstrap,
        seed=DEFAULT_SEED if args.seed is None else args.seed,
        confidence=args.confidence,
        by=args.by,
    )
    written = {}
    outputs = (("html", args.html, write_html), ("csv", args.csv, write_results_csv))
    for kind, path, write in outputs:
        if path is None:
            continue
        try:
            written[kind] = str(write(report, path))
        except OSError as exc:
            raise MedViewerError(
                f"cannot write the {kind.upper()} report ({exc.strerror or exc})",
                path=path,
                hint="check that the folder exists and is writable",
            ) from exc
    payload = report.to_dict()
    if written:
        payload["outputs"] = written
    emit(args.json, payload, format_text(report, written))
    return 0


def format_text(report, written: dict[str, str] | None = None) -> str:
    """Return a plain-text summary of a :class:`~medviewer.stats.ReaderStudyReport`."""
    from medviewer.stats.results import COEFFICIENT_NAMES

    boot = report.bootstrap
    lines = [
        f"Reader study: {report.source}" if report.source else "Reader study",
        f"  {report.n_readers} readers, {report.n_queries} queries, {report.n_items} items; "
        + (
            f"{boot.confidence:.0%} intervals from {boot.replicates} bootstrap replicates "
            f"over queries (seed {boot.seed})"
            if boot.replicates
            else "no bootstrap"
        ),
        "",
    ]
    width = max(len(v) for v in COEFFICIENT_NAMES.values())
    for name, est in report.coefficients.items():
        lines.append(f"  {COEFFICIENT_NAMES[name]:<{width}}  {_fmt(est)}")
    lines += ["", "  Per reader (agreement with model | Cohen's kappa vs model | kappa vs others)"]
    rwidth = max([len(r.reader) for r in report.readers] + [6])
    for r in report.readers:
        lines.append(
            f"  {r.reader:<{rwidth}}  {_fmt(r.agreement)} | {_fmt(r.cohen_kappa_model)} | "
            f"{_fmt(r.kappa_vs_others)}  ({r.queries_rated} queries rated)"
        )
    hv = report.human_variability
    lines += [
        "",
        f"  Model within human variability: {hv.position} (model kappa {_num(hv.model_kappa)}, "
        f"readers {_num(hv.low)} to {_num(hv.high)})",
    ]
    for group in report.groups:
        sub = group.report
        lines.append(
            f"  {group.column} = {group.value or '(blank)'}: {sub.n_queries} queries; "
            f"Fleiss {_fmt(sub.fleiss_kappa)}; "
            f"consensus vs model {_fmt(sub.cohen_kappa_consensus_model)}"
        )
    lines += ["", "  Missing ratings: " + report.missing.summary]
    lines += [f"  Note: {w}" for w in report.warnings]
    for kind, path in (written or {}).items():
        lines.append(f"  Wrote {kind.upper()} report: {path}")
    return "\n".join(lines)


def _fmt(est) -> str:
    """Format an estimate and its interval for the terminal."""
    low, high = est.ci
    ci = f" [{low:.3f}, {high:.3f}]" if math.isfinite(low) and math.isfinite(high) else ""
    return _num(est.estimate) + ci


def _num(value: float) -> str:
    """Format a number with three decimals, ``n/a`` when undefined."""
    return f"{value:.3f}" if math.isfinite(value) else "n/a"


def _replicates(text: str) -> int:
    """Parse a non-negative number of bootstrap replicates."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _confidence(text: str) -> float:
    """Parse a confidence level strictly between 0 and 1."""
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError("must lie strictly between 0 and 1, e.g. 0.95")
    return value


def _print_help(parser: argparse.ArgumentParser) -> int:
    """Print the group's help (``medviewer study`` without a subcommand) and fail."""
    parser.print_help()
    return 2

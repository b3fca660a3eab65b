"""Analyse a reader study: agreement coefficients, per-reader results, intervals, breakdowns.

Definitions are those of DESIGN.md ("Reader study"): an item is a (query,
candidate) pair rated 1 (picked) or 0; the model rates 1 its closest
candidates; the consensus is the majority of readers (a tie counts as not
picked); intervals come from a bootstrap over queries.  The formulas and their
references are in :mod:`medviewer.stats.coefficients` (item-level),
:mod:`medviewer.stats.suffstats` (the same formulas as sums, used here) and
:mod:`medviewer.stats.bootstrap` (resampling and percentile intervals).

The model-within-human-variability check follows the retrieval paper's
validation: the consensus-vs-model kappa is set beside the kappas of each
reader against the consensus of the other readers (leave one reader out).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from medviewer.stats.bootstrap import DEFAULT_REPLICATES, bootstrap_sums, percentile_interval
from medviewer.stats.errors import PicksTableError
from medviewer.stats.picks import NO_ROW, NOT_RATED, PicksTable
from medviewer.stats.results import (
    COEFFICIENT_NAMES,
    BootstrapSettings,
    Estimate,
    GroupBreakdown,
    HumanVariability,
    MissingRatings,
    ReaderResult,
    ReaderStudyReport,
)
from medviewer.stats import registry
from medviewer.stats.suffstats import Layout, query_sums, statistics

DEFAULT_SEED = 0

#: How each statistic treats missing ratings (in :mod:`medviewer.stats.registry`).
MISSING_POLICY = registry.MISSING_POLICY
_METHODS = registry.METHODS
_ITEM_COUNT = registry.ITEM_COUNT


def analyse_reader_study(
    table: PicksTable,
    *,
    n_bootstrap: int = DEFAULT_REPLICATES,
    seed: int | None = DEFAULT_SEED,
    confidence: float = 0.95,
    by: Sequence[str] = (),
) -> ReaderStudyReport:
    """Compute every agreement statistic of a reader study with bootstrap intervals.

    Parameters
    ----------
    table : PicksTable
        The picks, e.g. from :func:`medviewer.stats.load_picks`.
    n_bootstrap : int
        Bootstrap replicates over queries; 0 gives point estimates only.
    seed : int or None
        Seed of the resampling; the same seed gives the same intervals.
    confidence : float
        Coverage of the percentile intervals.
    by : sequence of str
        Grouping columns (loaded with the table) to break the analysis down by.

    Returns
    -------
    ReaderStudyReport

    Raises
    ------
    PicksTableError
        When a grouping column was not loaded with the table.
    """
    if n_bootstrap < 0:
        raise ValueError("n_bootstrap must be >= 0")
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie strictly between 0 and 1")
    for column in by:
        if column not in table.groups:
            raise PicksTableError(
                f"no grouping column {column!r} was loaded",
                path=table.source or None,
                hint=f"load the picks with group_columns=[{column!r}] (CLI: --by {column})",
            )
    report = _analyse(table, n_bootstrap, seed, confidence)
    groups = []
    for column in by:
        values = np.asarray(table.groups[column], dtype=object)
        for value in sorted(set(values.tolist())):
            subset = table.subset(values == value)
            groups.append(
                GroupBreakdown(column, value, _analyse(subset, n_bootstrap, seed, confidence))
            )
    return dataclasses.replace(report, groups=tuple(groups))


def _analyse(
    table: PicksTable, n_bootstrap: int, seed: int | None, confidence: float
) -> ReaderStudyReport:
    """Analyse one table (no breakdowns)."""
    layout = Layout(table.n_readers)
    per_query = query_sums(table)
    point = statistics(per_query.sum(axis=0), layout)
    if n_bootstrap:
        replicates = statistics(bootstrap_sums(per_query, n_bootstrap, seed), layout)
        intervals = {k: percentile_interval(v, confidence) for k, v in replicates.items()}
    else:
        intervals = {
            k: (np.full(v.shape, np.nan), np.full(v.shape, np.nan), np.zeros(v.shape, int))
            for k, v in point.items()
        }

    def estimate(key: str, name: str, n: float, n_queries: int, idx=()) -> Estimate:
        low, high, undefined = intervals[key]
        return Estimate(
            name=name,
            estimate=float(point[key][idx]),
            ci=(float(low[idx]), float(high[idx])),
            n=int(n),
            n_queries=int(n_queries),
            method=_METHODS.get(key, ""),
            n_undefined=int(undefined[idx]),
        )

    coefficients = {}
    for key in COEFFICIENT_NAMES:
        column = per_query[:, layout.col(_ITEM_COUNT[key])]
        coefficients[key] = estimate(key, key, column.sum(), np.count_nonzero(column))

    def block_total(prefix: str) -> np.ndarray:
        return sum(per_query[:, layout.block(prefix + cell)] for cell in ("11", "10", "01", "00"))

    with_model, with_others = block_total("m"), block_total("o")
    coverage = _query_coverage(table)
    readers = []
    for r, name in enumerate(table.readers):
        n_model, q_model = with_model[:, r].sum(), np.count_nonzero(with_model[:, r])
        n_others, q_others = with_others[:, r].sum(), np.count_nonzero(with_others[:, r])
        readers.append(
            ReaderResult(
                reader=name,
                agreement=estimate("reader_agreement", "agreement", n_model, q_model, r),
                cohen_kappa_model=estimate(
                    "reader_cohen_kappa_model", "cohen_kappa_model", n_model, q_model, r
                ),
                kappa_vs_others=estimate(
                    "reader_kappa_vs_others", "kappa_vs_other_readers", n_others, q_others, r
                ),
                **{key: int(values[r]) for key, values in coverage.items()},
            )
        )
    ties = int(per_query[:, layout.col("ties")].sum())
    report = ReaderStudyReport(
        source=table.source,
        n_readers=table.n_readers,
        n_queries=table.n_queries,
        n_items=table.n_items,
        coefficients=coefficients,
        readers=tuple(readers),
        human_variability=_human_variability(coefficients, readers),
        ties=ties,
        missing=_missing_ratings(table, coverage),
        bootstrap=BootstrapSettings(n_bootstrap, seed, confidence),
    )
    return dataclasses.replace(report, warnings=tuple(_warnings(table, report)))


def _human_variability(coefficients: dict, readers: list[ReaderResult]) -> HumanVariability:
    """Set the consensus-vs-model kappa beside the leave-one-reader-out kappas."""
    model = coefficients["cohen_kappa_consensus_model"].estimate
    kappas = {r.reader: r.kappa_vs_others.estimate for r in readers}
    finite = [k for k in kappas.values() if np.isfinite(k)]
    if len(finite) >= 2:
        low, high = min(finite), max(finite)
    else:
        low = high = float("nan")
    if not (np.isfinite(model) and np.isfinite(low)):
        position = "undetermined"
    elif model < low:
        position = "below"
    elif model > high:
        position = "above"
    else:
        position = "within"
    return HumanVariability(
        model_kappa=model,
        reader_kappas=kappas,
        low=low,
        high=high,
        position=position,
        method=(
            "Cohen's kappa of the consensus of all readers vs the model, compared with the "
            "range of each reader's kappa vs the consensus of the other readers (leave one "
            "reader out); point estimates, readers with an undefined kappa left out."
        ),
    )


def _query_coverage(table: PicksTable) -> dict[str, np.ndarray]:
    """Count per reader the queries rated fully, partly, skipped, and not read."""
    starts = table.query_starts
    per_query = np.add.reduceat(
        np.stack(
            [table.rated, table.ratings == NOT_RATED, table.ratings == NO_ROW], axis=0
        ).astype(np.int64),
        starts,
        axis=1,
    )  # (3, n_queries, n_readers)
    size = np.add.reduceat(np.ones(table.n_items, np.int64), starts)[:, None]
    rated = (per_query[0] == size).sum(axis=0)
    skipped = (per_query[1] == size).sum(axis=0)
    not_read = (per_query[2] == size).sum(axis=0)
    return {
        "queries_rated": rated,
        "queries_partial": table.n_queries - rated - skipped - not_read,
        "queries_skipped": skipped,
        "queries_not_read": not_read,
    }


def _missing_ratings(table: PicksTable, coverage: dict[str, np.ndarray]) -> MissingRatings:
    """Account for the missing ratings and say how each statistic handles them."""
    rated = table.rated
    per_item = rated.sum(axis=1)
    expected = table.n_items * table.n_readers
    present = int(rated.sum())
    skipped = int((table.ratings == NOT_RATED).sum())
    not_read = int((table.ratings == NO_ROW).sum())
    complete = int((per_item == table.n_readers).sum())
    unrated = int((per_item == 0).sum())
    complete_queries = int(
        np.count_nonzero(np.minimum.reduceat(per_item == table.n_readers, table.query_starts))
    )
    histogram = dict(sorted(zip(*(v.tolist() for v in np.unique(per_item, return_counts=True)))))
    if present == expected:
        summary = (
            f"Every reader rated every item ({table.n_items:,} items x {table.n_readers} "
            "readers); no rating is missing."
        )
    else:
        summary = (
            f"Of {expected:,} possible ratings ({table.n_items:,} items x {table.n_readers} "
            f"readers), {present:,} were given, {skipped:,} skipped (blank picked) and "
            f"{not_read:,} not read (no row: unfinished readers or unread queries). "
            f"{complete:,} items ({complete_queries:,} queries) were rated by every reader"
            + (f"; {unrated:,} items by nobody and are left out" if unrated else "")
            + ". Inter-reader coefficients use every item with at least two ratings "
            "(Fleiss' kappa and Gwet's AC1 in Gwet's form for unequal numbers of raters, "
            "Krippendorff's alpha on all pairable ratings); Fleiss' kappa on the complete "
            "items alone is given as a sensitivity check. The consensus is the majority of the "
            "readers who rated each item, and each reader's statistics use that reader's rated "
            "items only. This assumes ratings are missing independently of what the reader "
            "would have picked; intervals resample whole queries with their missing pattern."
        )
    policy = {key: MISSING_POLICY[source] for key, _heading, source in registry.POLICY_SECTIONS}
    return MissingRatings(
        ratings_expected=expected,
        ratings_present=present,
        ratings_skipped=skipped,
        ratings_not_read=not_read,
        items_complete=complete,
        items_unrated=unrated,
        queries_complete=complete_queries,
        raters_per_item=histogram,
        policy=policy,
        summary=summary,
    )


def _warnings(table: PicksTable, report: ReaderStudyReport) -> list[str]:
    """List what a reader of the report should know about the data."""
    out = []
    if table.n_readers < 2:
        out.append("fewer than two readers: inter-reader statistics are undefined")
    starts = table.query_starts
    size = np.add.reduceat(np.ones(table.n_items, np.int64), starts)
    model_picks = np.add.reduceat(table.model.astype(np.int64), starts)
    rated = np.add.reduceat(table.rated.astype(np.int64), starts, axis=0)
    picks = np.add.reduceat(table.picked.astype(np.int64), starts, axis=0)
    full = rated == size[:, None]
    off = full & (picks != model_picks[:, None])
    for r in np.flatnonzero(off.any(axis=0)):
        queries = np.flatnonzero(off[:, r])
        examples = ", ".join(repr(table.queries[q]) for q in queries[:3])
        out.append(
            f"reader {table.readers[r]!r} picked a different number of candidates than the "
            f"model marks as closest in {queries.size} "
            f"quer{'y' if queries.size == 1 else 'ies'} (e.g. {examples}); per-reader agreement "
            "then differs from the share of picks that are model-closest"
        )
    for result in report.readers:
        if result.agreement.n == 0:
            out.append(f"reader {result.reader!r} rated no item")
    if report.ties:
        out.append(
            f"{report.ties} item{'s' if report.ties != 1 else ''} had tied readers; the "
            "consensus counts a tie as not picked"
        )
    replicates = report.bootstrap.replicates
    if replicates:
        for name, est in report.coefficients.items():
            if est.n_undefined > 0.05 * replicates:
                out.append(
                    f"{name} was undefined in {est.n_undefined} of {replicates} bootstrap "
                    "replicates; its interval uses the others"
                )
    return out

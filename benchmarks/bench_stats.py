"""Benchmark the reader-study statistics against per-replicate bootstrap loops.

Times the full analysis (every coefficient, per-reader results, leave-one-out
kappas, 2,000 bootstrap replicates over queries) for a synthetic study of 10
readers x 1,000 queries x 10 candidates, and compares it with two baselines
that recompute the statistics replicate by replicate:

- a naive numpy loop (resample the items, recompute every statistic), and
- reference libraries per replicate (statsmodels ``fleiss_kappa`` on
  ``aggregate_raters`` and ``cohens_kappa``; scikit-learn ``cohen_kappa_score``).

Baselines run on a few replicates and are extrapolated linearly to the full
count.  The first replicates of the naive loop are checked against the
vectorised ones (same resampled queries), so the speed-up compares equal work.

Run: ``.venv/bin/python benchmarks/bench_stats.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from medviewer.stats.bootstrap import resample_counts
from medviewer.stats.coefficients import (
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
)
from medviewer.stats.picks import PicksTable, load_picks, write_picks_csv
from medviewer.stats.reader_study import analyse_reader_study
from medviewer.stats.simulate import simulate_picks
from medviewer.stats.suffstats import Layout, query_sums
from medviewer.stats.suffstats import statistics as vector_statistics

TARGET_S = 5.0


def naive_replicate(table: PicksTable, items: np.ndarray) -> dict[str, np.ndarray]:
    """Compute every statistic on the resampled items directly (one replicate)."""
    rated = table.rated[items]
    picked = table.picked[items]
    model = table.model[items].astype(int)
    m, s = rated.sum(1), picked.sum(1)
    counts = np.column_stack([m - s, s]).astype(float)
    complete = m == table.n_readers
    keep = m >= 1
    consensus = (2 * s > m).astype(int)
    out = {
        "fleiss_kappa": fleiss_kappa(counts).estimate,
        "gwet_ac1": gwet_ac1(counts).estimate,
        "krippendorff_alpha": krippendorff_alpha(counts).estimate,
        "fleiss_kappa_complete": fleiss_kappa(counts[complete]).estimate,
        "cohen_kappa_consensus_model": cohen_kappa(_table(consensus[keep], model[keep])).estimate,
        "percent_agreement_consensus_model": float(np.mean(consensus[keep] == model[keep])),
    }
    agreement, kappa, others = [], [], []
    for r in range(table.n_readers):
        mine = rated[:, r]
        x = picked[mine, r].astype(int)
        agreement.append(np.mean(x == model[mine]) if mine.any() else np.nan)
        kappa.append(cohen_kappa(_table(x, model[mine])).estimate)
        m_o, s_o = m - rated[:, r], s - picked[:, r]
        both = mine & (m_o >= 1)
        others.append(
            cohen_kappa(_table(picked[both, r].astype(int), (2 * s_o > m_o)[both])).estimate
        )
    out["reader_agreement"] = np.array(agreement)
    out["reader_cohen_kappa_model"] = np.array(kappa)
    out["reader_kappa_vs_others"] = np.array(others)
    return out


def library_replicate(table: PicksTable, items: np.ndarray) -> None:
    """Compute the headline statistics with statsmodels and scikit-learn (complete items)."""
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    ratings = table.ratings[items]
    complete = (ratings >= 0).all(axis=1)
    x = ratings[complete].astype(int)
    model = table.model[items][complete].astype(int)
    sm_fleiss(aggregate_raters(x)[0])
    consensus = (2 * x.sum(1) > x.shape[1]).astype(int)
    cohens_kappa(_table(consensus, model))
    for r in range(x.shape[1]):
        cohen_kappa_score(x[:, r], model)
        others = x.sum(1) - x[:, r]
        cohen_kappa_score(x[:, r], (2 * others > x.shape[1] - 1).astype(int))


def _table(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the 2 x 2 contingency table of two 0/1 vectors."""
    return np.bincount(2 * np.asarray(a, int) + np.asarray(b, int), minlength=4).reshape(2, 2)


def _items_of(table: PicksTable, row: np.ndarray, query_items: list[np.ndarray]) -> np.ndarray:
    """Return the item indices of one bootstrap replicate (queries drawn ``row`` times)."""
    drawn = np.repeat(np.arange(table.n_queries), row.astype(int))
    return np.concatenate([query_items[q] for q in drawn])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the timings."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readers", type=int, default=10)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--replicates", type=int, default=2000)
    parser.add_argument("--naive-replicates", type=int, default=40,
                        help="replicates actually run by each baseline (then extrapolated)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of the fast path")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    table = simulate_picks(
        args.readers, args.queries, args.candidates, args.candidates // 2,
        skill=np.linspace(0.5, 2.0, args.readers), skip_rate=0.02, unfinished=[0.8],
        seed=args.seed,
    )
    print(f"study: {args.readers} readers x {args.queries} queries x {args.candidates} "
          f"candidates = {table.n_items * table.n_readers:,} reader-item pairs "
          f"({int(table.rated.sum()):,} rated: 2% of queries skipped, reader R1 stopped at 80%)")

    with tempfile.TemporaryDirectory() as folder:
        path = write_picks_csv(table, Path(folder) / "picks.csv")
        start = time.perf_counter()
        load_picks(path, group_columns=["modality"])
        load_s = time.perf_counter() - start
    print(f"load + validate CSV:            {load_s:8.3f} s")

    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        report = analyse_reader_study(table, n_bootstrap=args.replicates, seed=args.seed)
        times.append(time.perf_counter() - start)
    fast_s = statistics.median(times)
    print(f"vectorised, {args.replicates} replicates:    {fast_s:8.3f} s  "
          f"(median of {args.repeat}; Fleiss {report.fleiss_kappa.estimate:.3f} "
          f"[{report.fleiss_kappa.ci[0]:.3f}, {report.fleiss_kappa.ci[1]:.3f}])")
    start = time.perf_counter()
    analyse_reader_study(table, n_bootstrap=args.replicates, seed=args.seed, by=["modality"])
    by_s = time.perf_counter() - start
    print(f"  with breakdown by modality:   {by_s:8.3f} s")

    # Baselines on the same resampled queries as the vectorised path's first replicates.
    counts = resample_counts(table.n_queries, args.naive_replicates,
                             np.random.default_rng(args.seed))
    query_items = np.split(np.arange(table.n_items), table.query_starts[1:])
    start = time.perf_counter()
    naive = [naive_replicate(table, _items_of(table, row, query_items)) for row in counts]
    naive_per = (time.perf_counter() - start) / args.naive_replicates
    fast = vector_statistics(counts @ query_sums(table), Layout(table.n_readers))
    for b, values in enumerate(naive):
        for name, value in values.items():
            np.testing.assert_allclose(fast[name][b], value, atol=1e-9, err_msg=name)
    naive_s = naive_per * args.replicates
    print(f"naive numpy loop:               {naive_s:8.3f} s  (extrapolated from "
          f"{args.naive_replicates} replicates, {naive_per * 1e3:.1f} ms each; same values)")

    lib_n = max(1, args.naive_replicates // 2)
    library_replicate(table, _items_of(table, counts[0], query_items))  # imports, warm-up
    start = time.perf_counter()
    for row in counts[:lib_n]:
        library_replicate(table, _items_of(table, row, query_items))
    lib_per = (time.perf_counter() - start) / lib_n
    lib_s = lib_per * args.replicates
    print(f"statsmodels + sklearn loop:     {lib_s:8.3f} s  (extrapolated from {lib_n} "
          f"replicates, {lib_per * 1e3:.1f} ms each; headline statistics only)")
    print(f"speed-up: {naive_s / fast_s:.0f}x over the naive loop, "
          f"{lib_s / fast_s:.0f}x over the library loop")
    verdict = "PASS" if fast_s <= TARGET_S else "FAIL"
    print(f"target <= {TARGET_S:.0f} s for {args.replicates} replicates: {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())

"""Property tests of the reader-study statistics (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from medviewer.stats.picks import NO_ROW, PicksTable
from medviewer.stats.reader_study import analyse_reader_study
from medviewer.stats.simulate import simulate_picks

FAST = settings(max_examples=25, deadline=None)


@st.composite
def studies(draw, min_readers=2, max_readers=6, missing=True):
    """Random studies of readers picking 5 of 10 candidates, with gaps when ``missing``."""
    return simulate_picks(
        draw(st.integers(min_readers, max_readers)),
        draw(st.integers(3, 25)),
        skill=draw(st.floats(0.0, 3.0)),
        shared=draw(st.floats(0.0, 2.0)),
        skip_rate=draw(st.floats(0.0, 0.3)) if missing else 0.0,
        unfinished=draw(st.lists(st.floats(0.2, 1.0), max_size=1)) if missing else (),
        seed=draw(st.integers(0, 2**16)),
    )


def flipped(table: PicksTable) -> PicksTable:
    """Swap the labels picked / not picked for readers and model alike."""
    ratings = np.where(table.rated, 1 - table.ratings, table.ratings).astype(np.int8)
    return PicksTable(
        readers=table.readers,
        queries=table.queries,
        item_query=table.item_query,
        item_candidate=table.item_candidate,
        model=(1 - table.model).astype(np.int8),
        ratings=ratings,
        groups=table.groups,
    )


@FAST
@given(n_readers=st.integers(2, 7), n_queries=st.integers(2, 30), seed=st.integers(0, 2**16))
def test_perfect_agreement_gives_one(n_readers, n_queries, seed):
    # Readers who follow the model exactly: every coefficient is 1.
    table = simulate_picks(n_readers, n_queries, skill=1e6, seed=seed)
    report = analyse_reader_study(table, n_bootstrap=0)
    for est in report.coefficients.values():
        assert np.isclose(est.estimate, 1.0)
    for result in report.readers:
        assert np.isclose(result.agreement.estimate, 1.0)
        assert np.isclose(result.cohen_kappa_model.estimate, 1.0)
        assert np.isclose(result.kappa_vs_others.estimate, 1.0)


@FAST
@given(studies())
def test_relabelling_picked_and_not_picked_changes_nothing(table):
    # Kappas, AC1 and alpha treat the two categories alike.  The consensus does not when
    # readers tie (a tie counts as not picked), so consensus statistics are compared only
    # where no item is tied.
    before = analyse_reader_study(table, n_bootstrap=0)
    after = analyse_reader_study(flipped(table), n_bootstrap=0)
    names = ["fleiss_kappa", "gwet_ac1", "krippendorff_alpha", "fleiss_kappa_complete"]
    if before.ties == 0:
        names += ["cohen_kappa_consensus_model", "percent_agreement_consensus_model",
                  "gwet_ac1_consensus_model", "krippendorff_alpha_consensus_model"]
    for name in names:
        np.testing.assert_allclose(
            before.coefficients[name].estimate, after.coefficients[name].estimate, atol=1e-12
        )
    for a, b in zip(before.readers, after.readers):
        np.testing.assert_allclose(a.agreement.estimate, b.agreement.estimate, atol=1e-12)
        np.testing.assert_allclose(
            a.cohen_kappa_model.estimate, b.cohen_kappa_model.estimate, atol=1e-12
        )


@settings(max_examples=15, deadline=None)
@given(
    n_readers=st.integers(3, 6),
    n_queries=st.integers(30, 60),
    skill=st.floats(0.5, 2.5),
    seed=st.integers(0, 2**16),
)
def test_bootstrap_interval_contains_the_estimate(n_readers, n_queries, skill, seed):
    table = simulate_picks(n_readers, n_queries, skill=skill, skip_rate=0.05, seed=seed)
    report = analyse_reader_study(table, n_bootstrap=300, seed=seed)
    estimates = [*report.coefficients.values()]
    estimates += [r.agreement for r in report.readers]
    estimates += [r.cohen_kappa_model for r in report.readers]
    for est in estimates:
        assert est.ci[0] <= est.estimate <= est.ci[1], est.name


@FAST
@given(studies(missing=True))
def test_agreement_is_share_of_picks_that_are_model_closest(table):
    # With exactly 5 of 10 picked and 5 model-closest: agree = (TP + TN) / 10 = TP / 5.
    report = analyse_reader_study(table, n_bootstrap=0)
    for r, result in enumerate(report.readers):
        rated = table.rated[:, r]
        picks = table.picked[:, r]
        if not rated.any():
            continue
        precision = np.sum(picks & (table.model == 1)) / np.sum(picks)
        np.testing.assert_allclose(result.agreement.estimate, precision, atol=1e-12)
    assert not any("different number" in w for w in report.warnings)


@FAST
@given(studies(), st.integers(0, 5))
def test_reader_without_ratings_is_reported_not_fatal(table, which):
    which %= table.n_readers
    ratings = table.ratings.copy()
    ratings[:, which] = NO_ROW
    gone = PicksTable(table.readers, table.queries, table.item_query, table.item_candidate,
                      table.model, ratings, table.groups)
    report = analyse_reader_study(gone, n_bootstrap=50)
    result = report.readers[which]
    assert result.agreement.n == 0 and np.isnan(result.agreement.estimate)
    assert result.queries_not_read == table.n_queries
    assert any(f"reader {table.readers[which]!r} rated no item" in w for w in report.warnings)

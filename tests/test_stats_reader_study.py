"""Reader-study analysis: reference libraries, missing ratings, bootstrap, breakdowns."""

from __future__ import annotations

import numpy as np
import pytest

from medviewer.stats.bootstrap import resample_counts
from medviewer.stats.coefficients import (
    cohen_kappa,
    counts_from_ratings,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
)
from medviewer.stats.errors import PicksTableError
from medviewer.stats.picks import NO_ROW, NOT_RATED, PicksTable
from medviewer.stats.reader_study import analyse_reader_study
from medviewer.stats.simulate import simulate_picks
from medviewer.stats.suffstats import Layout, query_sums, statistics


def table_from(ratings, model, item_query, groups=None):
    ratings = np.asarray(ratings, dtype=np.int8)
    return PicksTable(
        readers=tuple(f"R{r}" for r in range(ratings.shape[1])),
        queries=tuple(f"q{q}" for q in range(int(np.max(item_query)) + 1)),
        item_query=np.asarray(item_query),
        item_candidate=tuple(f"c{i}" for i in range(ratings.shape[0])),
        model=np.asarray(model, dtype=np.int8),
        ratings=ratings,
        groups=groups or {},
    )


def naive_statistics(table: PicksTable) -> dict:
    """Item-level reference: the definitions applied directly, reader by reader."""
    rated, picked = table.rated, table.picked
    as_float = np.where(rated, picked.astype(float), np.nan).astype(object)
    as_float[~rated] = None
    counts = counts_from_ratings(as_float, categories=[0.0, 1.0])[0]
    m, s = rated.sum(1), picked.sum(1)
    keep = m >= 1
    consensus = (2 * s > m).astype(int)
    model = table.model.astype(int)
    complete = m == table.n_readers
    out = {
        "fleiss_kappa": fleiss_kappa(counts).estimate,
        "gwet_ac1": gwet_ac1(counts).estimate,
        "krippendorff_alpha": krippendorff_alpha(counts).estimate,
        "fleiss_kappa_complete": fleiss_kappa(counts[complete]).estimate,
        "percent_agreement_consensus_model": np.mean(consensus[keep] == model[keep]),
        "cohen_kappa_consensus_model": cohen_kappa(_table(consensus[keep], model[keep])).estimate,
    }
    pair = np.column_stack([consensus[keep], model[keep]]).astype(object)
    pair_counts = counts_from_ratings(pair, categories=[0, 1])[0]
    out["gwet_ac1_consensus_model"] = gwet_ac1(pair_counts).estimate
    out["krippendorff_alpha_consensus_model"] = krippendorff_alpha(pair_counts).estimate
    for r in range(table.n_readers):
        mine = rated[:, r]
        out[("agreement", r)] = np.mean(picked[mine, r] == model[mine])
        out[("kappa", r)] = cohen_kappa(_table(picked[mine, r].astype(int), model[mine])).estimate
        m_o = m - rated[:, r]
        s_o = s - picked[:, r]
        both = mine & (m_o >= 1)
        others = (2 * s_o > m_o).astype(int)
        out[("others", r)] = cohen_kappa(
            _table(picked[both, r].astype(int), others[both])
        ).estimate
    return out


def _table(a, b):
    table = np.zeros((2, 2))
    np.add.at(table, (np.asarray(a, int), np.asarray(b, int)), 1)
    return table


def assert_matches_naive(report, table):
    expected = naive_statistics(table)
    for name, est in report.coefficients.items():
        np.testing.assert_allclose(est.estimate, expected[name], atol=1e-9, err_msg=name)
    for r, result in enumerate(report.readers):
        np.testing.assert_allclose(result.agreement.estimate, expected[("agreement", r)],
                                   atol=1e-9)
        np.testing.assert_allclose(result.cohen_kappa_model.estimate, expected[("kappa", r)],
                                   atol=1e-9)
        np.testing.assert_allclose(result.kappa_vs_others.estimate, expected[("others", r)],
                                   atol=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_complete_study_matches_statsmodels_and_sklearn(seed):
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    table = simulate_picks(5 + seed, 40, skill=[0.5, 1, 1.5, 2, 0, 1, 1][: 5 + seed], seed=seed)
    report = analyse_reader_study(table, n_bootstrap=0)
    x = table.ratings.astype(int)
    # statsmodels: fleiss_kappa(aggregate_raters(items x readers)[0])
    assert report.fleiss_kappa.estimate == pytest.approx(
        sm_fleiss(aggregate_raters(x)[0]), abs=1e-9
    )
    consensus = (2 * x.sum(1) > x.shape[1]).astype(int)
    model = table.model.astype(int)
    # statsmodels: cohens_kappa(2 x 2 contingency table of consensus vs model).kappa
    assert report.cohen_kappa_consensus_model.estimate == pytest.approx(
        cohens_kappa(_table(consensus, model)).kappa, abs=1e-9
    )
    # scikit-learn: cohen_kappa_score(consensus, model)
    assert report.cohen_kappa_consensus_model.estimate == pytest.approx(
        cohen_kappa_score(consensus, model), abs=1e-9
    )
    assert report.percent_agreement_consensus_model.estimate == pytest.approx(
        np.mean(consensus == model)
    )
    for r, result in enumerate(report.readers):
        # scikit-learn: cohen_kappa_score(reader, model)
        assert result.cohen_kappa_model.estimate == pytest.approx(
            cohen_kappa_score(x[:, r], model), abs=1e-9
        )
        assert result.agreement.estimate == pytest.approx(np.mean(x[:, r] == model))
    assert report.fleiss_kappa_complete.estimate == pytest.approx(report.fleiss_kappa.estimate)
    assert report.missing.ratings_present == report.missing.ratings_expected
    assert_matches_naive(report, table)


@pytest.mark.parametrize("seed", range(3))
def test_missing_ratings_follow_the_documented_policy(seed):
    table = simulate_picks(6, 50, skip_rate=0.15, unfinished=[0.3, 0.7], seed=10 + seed)
    report = analyse_reader_study(table, n_bootstrap=0)
    assert_matches_naive(report, table)
    # Fleiss on complete items only equals statsmodels on those items.
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    complete = table.rated.all(axis=1)
    assert report.fleiss_kappa_complete.n == complete.sum()
    assert report.fleiss_kappa_complete.estimate == pytest.approx(
        sm_fleiss(aggregate_raters(table.ratings[complete])[0]), abs=1e-9
    )
    # Per-reader statistics use that reader's rated items only.
    for r, result in enumerate(report.readers):
        assert result.agreement.n == table.rated[:, r].sum()
        assert result.queries_rated + result.queries_skipped + result.queries_not_read == 50
    assert report.readers[0].queries_not_read == 35
    assert report.missing.ratings_present + report.missing.ratings_skipped + (
        report.missing.ratings_not_read
    ) == report.missing.ratings_expected
    assert sum(report.missing.raters_per_item.values()) == table.n_items
    assert "missing" in report.missing.summary or "not read" in report.missing.summary
    assert set(report.missing.policy) >= {"fleiss_kappa", "krippendorff_alpha", "per_reader"}


def test_consensus_over_available_readers_with_ties_as_not_picked():
    # One query, four items, three readers; reader R2 skipped item 3, nobody rated item 4.
    ratings = [
        [1, 1, 0],  # majority picked
        [1, 0, NOT_RATED],  # 1 of 2: a tie -> not picked
        [0, 0, 1],  # not picked
        [NO_ROW, NO_ROW, NO_ROW],  # left out
    ]
    table = table_from(ratings, [1, 1, 0, 0], [0, 0, 0, 0])
    report = analyse_reader_study(table, n_bootstrap=0)
    assert report.ties == 1
    assert report.missing.items_unrated == 1
    assert report.percent_agreement_consensus_model.n == 3
    # consensus (1, 0, 0) vs model (1, 1, 0): 2 of 3 agree
    assert report.percent_agreement_consensus_model.estimate == pytest.approx(2 / 3)
    assert any("tied" in w for w in report.warnings)


def test_bootstrap_replicates_equal_explicit_resampling():
    table = simulate_picks(4, 15, skip_rate=0.1, unfinished=[0.6], seed=3)
    layout = Layout(table.n_readers)
    per_query = query_sums(table)
    counts = resample_counts(table.n_queries, 5, np.random.default_rng(7))
    fast = statistics(counts @ per_query, layout)
    for b, row in enumerate(counts):
        # Build the resampled study item by item, as a per-replicate loop would.
        drawn = np.repeat(np.arange(table.n_queries), row.astype(int))
        items = np.concatenate([np.flatnonzero(table.item_query == q) for q in drawn])
        sizes = [np.sum(table.item_query == q) for q in drawn]
        copy_query = np.repeat(np.arange(drawn.size), sizes)
        resampled = table_from(table.ratings[items], table.model[items], copy_query)
        expected = naive_statistics(resampled)
        for name in ("fleiss_kappa", "krippendorff_alpha", "cohen_kappa_consensus_model",
                     "gwet_ac1"):
            np.testing.assert_allclose(fast[name][b], expected[name], atol=1e-9)
        np.testing.assert_allclose(
            fast["reader_cohen_kappa_model"][b],
            [expected[("kappa", r)] for r in range(table.n_readers)], atol=1e-9,
        )


def test_bootstrap_is_seeded_and_intervals_bracket_estimates():
    table = simulate_picks(5, 80, skip_rate=0.05, seed=4)
    first = analyse_reader_study(table, n_bootstrap=400, seed=11)
    again = analyse_reader_study(table, n_bootstrap=400, seed=11)
    other = analyse_reader_study(table, n_bootstrap=400, seed=12)
    assert first.fleiss_kappa.ci == again.fleiss_kappa.ci
    assert first.fleiss_kappa.ci != other.fleiss_kappa.ci
    for est in first.coefficients.values():
        assert est.ci[0] <= est.estimate <= est.ci[1]
    assert first.bootstrap.replicates == 400 and first.bootstrap.unit == "query"
    none = analyse_reader_study(table, n_bootstrap=0)
    assert np.isnan(none.fleiss_kappa.ci[0]) and none.fleiss_kappa.estimate == pytest.approx(
        first.fleiss_kappa.estimate
    )


def test_human_variability_range_and_position():
    table = simulate_picks(5, 60, skill=3.0, shared=0.2, seed=2)
    report = analyse_reader_study(table, n_bootstrap=0)
    hv = report.human_variability
    kappas = [r.kappa_vs_others.estimate for r in report.readers]
    assert (hv.low, hv.high) == (min(kappas), max(kappas))
    assert hv.model_kappa == report.cohen_kappa_consensus_model.estimate
    expected = "within" if hv.low <= hv.model_kappa <= hv.high else (
        "above" if hv.model_kappa > hv.high else "below")
    assert hv.position == expected
    assert hv.model_within == (expected == "within")
    single = analyse_reader_study(simulate_picks(1, 10, seed=1), n_bootstrap=0)
    assert single.human_variability.position == "undetermined"
    assert single.human_variability.model_within is None
    assert np.isnan(single.fleiss_kappa.estimate)
    assert any("fewer than two readers" in w for w in single.warnings)


def test_breakdown_by_group_equals_analysis_of_the_subset():
    table = simulate_picks(4, 40, skip_rate=0.1, seed=6)
    report = analyse_reader_study(table, n_bootstrap=200, seed=1, by=["modality"])
    assert [(g.column, g.value) for g in report.groups] == [("modality", "CT"),
                                                           ("modality", "CXR")]
    for group in report.groups:
        mask = np.asarray(table.groups["modality"]) == group.value
        alone = analyse_reader_study(table.subset(mask), n_bootstrap=200, seed=1)
        assert group.report.fleiss_kappa == alone.fleiss_kappa
        assert group.report.readers == alone.readers
        assert group.report.n_queries == 20
    with pytest.raises(PicksTableError, match="no grouping column 'site'"):
        analyse_reader_study(table, by=["site"])


def test_warns_when_picks_do_not_match_the_model_count():
    ratings = np.array([[1, 1], [1, 0], [0, 0], [0, 1]])
    table = table_from(ratings, [1, 1, 0, 0], [0, 0, 0, 0])
    report = analyse_reader_study(table, n_bootstrap=0)
    assert not any("different number" in w for w in report.warnings)
    ratings[2, 0] = 1
    report = analyse_reader_study(table_from(ratings, [1, 1, 0, 0], [0, 0, 0, 0]), n_bootstrap=0)
    assert any("reader 'R0' picked a different number" in w for w in report.warnings)


def test_large_study_runs_fast_enough():
    import time

    table = simulate_picks(10, 1000, seed=0)
    start = time.perf_counter()
    report = analyse_reader_study(table, n_bootstrap=2000, seed=0)
    elapsed = time.perf_counter() - start
    assert report.fleiss_kappa.n == 10_000
    assert elapsed < 5.0

"""Agreement coefficients against reference libraries and published worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from medviewer.stats.coefficients import (
    cohen_kappa,
    counts_from_ratings,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
)
from medviewer.stats.suffstats import kappa_2x2

N = None

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: 4 observers
# (rows) x 12 units (columns), values 1-5, "." missing.  Published: nominal alpha = 0.743.
# The same data are Gwet (2014), Handbook of Inter-Rater Reliability, 4th ed., p. 120
# (irrCAC's cac.raw4raters).  Unit 12 has a single value, so it is not pairable.
KRIPPENDORFF_4X12 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
        [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
    ],
    dtype=object,
).T

# Krippendorff (2011), section A: binary data, two observers, 10 units, no missing values.
# Published: alpha = 0.095.
KRIPPENDORFF_BINARY = np.array(
    [[0, 1, 0, 0, 0, 0, 0, 0, 1, 0], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]]
).T

# Gwet (2014), Handbook, 4th ed. (larger version p. 125): 5 observers x 15 units scored 0-3,
# with missing scores (irrCAC's raw_5observers).
GWET_5_OBSERVERS = np.array(
    [
        [1, 1, 2, N, 0, 0, 1, 1, 2, 2, N, 0, 1, 3, 1],
        [1, 1, 3, 0, 0, 0, 0, N, 2, 1, 1, 0, 2, 3, 1],
        [2, 0, 3, 0, 0, 0, 2, 2, 2, 1, 0, 0, 2, 2, 1],
        [N, 1, 3, N, N, N, N, 0, N, 1, 0, 0, 2, 2, N],
        [2, N, N, 0, 0, 0, 1, N, 2, N, N, N, N, 3, 1],
    ],
    dtype=object,
).T


def test_krippendorff_alpha_published_example_with_missing_values():
    counts, categories = counts_from_ratings(KRIPPENDORFF_4X12)
    assert categories.tolist() == [1, 2, 3, 4, 5]
    alpha = krippendorff_alpha(counts)
    assert round(alpha.estimate, 3) == 0.743
    # 40 pairable values in 11 units; 1 - D_o = 32/40 from the coincidence matrix.
    assert alpha.n == 11
    assert alpha.observed == pytest.approx(32 / 40)


def test_krippendorff_alpha_published_binary_example():
    alpha = krippendorff_alpha(counts_from_ratings(KRIPPENDORFF_BINARY)[0])
    # alpha = 1 - (n - 1) o_01 / (n_0 n_1) = 1 - 19 * 4 / (14 * 6)
    assert alpha.estimate == pytest.approx(1 - 19 * 4 / (14 * 6))
    assert round(alpha.estimate, 3) == 0.095


def test_gwet_ac1_handbook_example_4_raters():
    # Gwet's irrCAC: gwet.ac1.raw(cac.raw4raters) -> pa 0.818, pe 0.190, AC1 0.775
    ac1 = gwet_ac1(counts_from_ratings(KRIPPENDORFF_4X12)[0])
    assert ac1.observed == pytest.approx(9 / 11)  # 11 units with two or more ratings
    assert round(ac1.chance, 3) == 0.190
    assert round(ac1.estimate, 3) == 0.775


def test_fleiss_kappa_with_missing_ratings_handbook_example():
    # Gwet's irrCAC: fleiss.kappa.raw(cac.raw4raters) -> pa 0.818, pe 0.239, kappa 0.761
    kappa = fleiss_kappa(counts_from_ratings(KRIPPENDORFF_4X12)[0])
    assert round(kappa.observed, 3) == 0.818
    assert round(kappa.chance, 3) == 0.239
    assert round(kappa.estimate, 3) == 0.761


def test_coefficients_handbook_example_5_observers():
    # Gwet's irrCAC on raw_5observers: AC1 0.497 (pa 0.616, pe 0.236), Fleiss 0.458
    # (pe 0.291), Krippendorff's alpha 0.481.
    counts = counts_from_ratings(GWET_5_OBSERVERS)[0]
    ac1 = gwet_ac1(counts)
    assert (round(ac1.observed, 3), round(ac1.chance, 3)) == (0.616, 0.236)
    assert round(ac1.estimate, 3) == 0.497
    fleiss = fleiss_kappa(counts)
    assert (round(fleiss.chance, 3), round(fleiss.estimate, 3)) == (0.291, 0.458)
    assert round(krippendorff_alpha(counts).estimate, 3) == 0.481


@pytest.mark.parametrize("seed", range(5))
def test_fleiss_kappa_matches_statsmodels(seed):
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    rng = np.random.default_rng(seed)
    ratings = rng.integers(0, 2 + seed % 3, size=(200, 3 + seed))
    counts, _ = counts_from_ratings(ratings)
    # statsmodels: fleiss_kappa(aggregate_raters(data)[0], method="fleiss")
    expected = sm_fleiss(aggregate_raters(ratings)[0], method="fleiss")
    assert fleiss_kappa(counts).estimate == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_cohen_kappa_matches_statsmodels_and_sklearn(seed):
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import cohens_kappa, to_table

    rng = np.random.default_rng(100 + seed)
    a = rng.integers(0, 2, 300)
    b = np.where(rng.random(300) < 0.6, a, rng.integers(0, 2, 300))
    table = to_table(np.column_stack([a, b]), bins=2)[0]
    ours = cohen_kappa(table).estimate
    # statsmodels: cohens_kappa(table).kappa on the 2 x 2 contingency table
    assert ours == pytest.approx(cohens_kappa(table).kappa, abs=1e-9)
    # scikit-learn: cohen_kappa_score(y1, y2) on the raw labels
    assert ours == pytest.approx(cohen_kappa_score(a, b), abs=1e-9)
    (t11, t10), (t01, t00) = table[::-1, ::-1]
    assert float(kappa_2x2(t11, t10, t01, t00)) == pytest.approx(ours, abs=1e-12)


def test_undefined_coefficients_are_nan():
    constant = np.array([[3.0, 0.0], [3.0, 0.0]])
    assert np.isnan(fleiss_kappa(constant).estimate)
    assert np.isnan(krippendorff_alpha(constant).estimate)
    assert np.isnan(cohen_kappa(np.zeros((2, 2))).estimate)
    single = np.array([[1.0, 0.0], [0.0, 1.0]])  # one rating per unit: nothing pairable
    assert np.isnan(fleiss_kappa(single).estimate)
    assert krippendorff_alpha(single).n == 0


def test_counts_from_ratings_rejects_unknown_category():
    with pytest.raises(ValueError, match="not among"):
        counts_from_ratings(np.array([[1, 2]]), categories=[1])

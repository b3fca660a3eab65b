"""Per-query sufficient statistics of a reader study, and each statistic from their sums.

Every statistic of the report is a function of sums over items.  Summing the
items of each query first gives a (queries x columns) matrix S; a bootstrap
replicate that draws queries with replacement is then the weighted sum w @ S
(w = how often each query was drawn), so thousands of replicates cost one
matrix product instead of a Python loop.

References
----------
.. [1] Gwet, K. L. (2014). Handbook of Inter-Rater Reliability, 4th ed., ch. 2 and 4:
   Fleiss' kappa and AC1 with missing ratings (see :mod:`medviewer.stats.coefficients`),
   here with categories {0, 1}: pi = mean over rated items of picks / raters,
   Fleiss p_e = pi^2 + (1 - pi)^2, AC1 p_e = 2 pi (1 - pi).
.. [2] Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability, section C.
   For two categories the denominator n (n - 1) - sum_c n_c (n_c - 1) equals 2 n_0 n_1.
.. [3] Cohen, J. (1960).  For a 2 x 2 table [[a, b], [c, d]],
   kappa = 2 (a d - b c) / ((a + b)(b + d) + (a + c)(c + d)), which is exact in
   integer counts and zero-denominator exactly when kappa is undefined.
.. [4] Gwet, K. L. (2008). Br. J. Math. Stat. Psychol. 61, 29-48: AC1 for two raters,
   p_e = 2 pi (1 - pi) with pi the mean of the two raters' shares of category 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medviewer.stats.picks import PicksTable

# Item-level columns summed per query (one per name), then per-reader blocks.
SCALAR_COLUMNS = (
    "pair_agree",  # sum_k r_ik (r_ik - 1) / (r_i (r_i - 1)) over items with >= 2 ratings
    "n_pairable",  # items with >= 2 ratings
    "share",  # picks / ratings over items with >= 1 rating
    "n_rated",  # items with >= 1 rating
    "values",  # ratings on pairable items (Krippendorff's n)
    "coincide",  # sum_c o_cc: pairs that agree / (m - 1), pairable items
    "values_picked",  # picks on pairable items (Krippendorff's n_1)
    "c_pair_agree",  # the same three for items every reader rated
    "c_share",
    "c_n",
    "k11",  # consensus x model table: consensus first, model second
    "k10",
    "k01",
    "k00",
    "ties",  # items whose readers split evenly
)
READER_BLOCKS = (
    "m11", "m10", "m01", "m00",  # reader x model table
    "o11", "o10", "o01", "o00",  # reader x consensus-of-the-other-readers table
)


@dataclass(frozen=True)
class Layout:
    """Column positions in the per-query matrix for a given number of readers."""

    n_readers: int

    @property
    def width(self) -> int:
        """Total number of columns."""
        return len(SCALAR_COLUMNS) + len(READER_BLOCKS) * self.n_readers

    def col(self, name: str) -> int:
        """Return the position of a scalar column."""
        return SCALAR_COLUMNS.index(name)

    def block(self, name: str) -> slice:
        """Return the positions of a per-reader block (one column per reader)."""
        start = len(SCALAR_COLUMNS) + READER_BLOCKS.index(name) * self.n_readers
        return slice(start, start + self.n_readers)


def item_features(table: PicksTable) -> np.ndarray:
    """Return the (n_items x width) matrix whose per-query sums are the sufficient statistics."""
    layout = Layout(table.n_readers)
    rated = table.rated
    picked = table.picked
    m = rated.sum(axis=1).astype(float)
    s = picked.sum(axis=1).astype(float)
    y = table.model.astype(bool)
    features = np.zeros((table.n_items, layout.width))

    def put(name: str, values: np.ndarray) -> None:
        features[:, layout.col(name)] = values

    two = m >= 2
    one = m >= 1
    with np.errstate(divide="ignore", invalid="ignore"):
        # Pairs of ratings that agree on the item, over all pairs of its ratings.
        agree_pairs = s * (s - 1) + (m - s) * (m - s - 1)
        pair_agree = np.where(two, agree_pairs / (m * (m - 1)), 0.0)
        share = np.where(one, s / m, 0.0)
        coincide = np.where(two, agree_pairs / (m - 1), 0.0)
    put("pair_agree", pair_agree)
    put("n_pairable", two)
    put("share", share)
    put("n_rated", one)
    put("values", np.where(two, m, 0.0))
    put("coincide", coincide)
    put("values_picked", np.where(two, s, 0.0))
    complete = (m == table.n_readers) & two
    put("c_pair_agree", np.where(complete, pair_agree, 0.0))
    put("c_share", np.where(complete, share, 0.0))
    put("c_n", complete)
    # Majority of the available readers; an even split is a tie, counted as not picked.
    consensus = 2 * s > m
    put("ties", one & (2 * s == m))
    for name, value in _table_cells(consensus, y, one).items():
        put("k" + name, value)

    reader_model = _table_cells(picked, y[:, None], rated)
    others_m = m[:, None] - rated
    others_s = s[:, None] - picked
    with_others = rated & (others_m >= 1)
    reader_others = _table_cells(picked, 2 * others_s > others_m, with_others)
    for name in ("11", "10", "01", "00"):
        features[:, layout.block("m" + name)] = reader_model[name]
        features[:, layout.block("o" + name)] = reader_others[name]
    return features


def query_sums(table: PicksTable) -> np.ndarray:
    """Return the (n_queries x width) matrix of per-query sums of :func:`item_features`."""
    features = item_features(table)
    return np.add.reduceat(features, table.query_starts, axis=0)


def statistics(sums: np.ndarray, layout: Layout) -> dict[str, np.ndarray]:
    """Compute every statistic from summed sufficient statistics.

    Parameters
    ----------
    sums : ndarray, shape (..., width)
        Sums over (possibly resampled) queries; leading axes are kept, so a
        (replicates x width) matrix gives one value per replicate.
    layout : Layout

    Returns
    -------
    dict of str to ndarray
        Scalar statistics have shape ``sums.shape[:-1]``; per-reader ones
        (``reader_*``) have an extra last axis of length n_readers.  Undefined
        values are NaN.
    """
    sums = np.asarray(sums, dtype=float)

    def c(name: str) -> np.ndarray:
        return sums[..., layout.col(name)]

    def b(name: str) -> np.ndarray:
        return sums[..., layout.block(name)]

    out: dict[str, np.ndarray] = {}
    out["fleiss_kappa"], out["gwet_ac1"] = _fleiss_ac1(
        c("pair_agree"), c("n_pairable"), c("share"), c("n_rated")
    )
    out["fleiss_kappa_complete"], _ = _fleiss_ac1(
        c("c_pair_agree"), c("c_n"), c("c_share"), c("c_n")
    )
    out["krippendorff_alpha"] = _alpha(c("values"), c("values_picked"), c("coincide"))
    k11, k10, k01, k00 = c("k11"), c("k10"), c("k01"), c("k00")
    out["cohen_kappa_consensus_model"] = kappa_2x2(k11, k10, k01, k00)
    out["percent_agreement_consensus_model"] = _divide(k11 + k00, k11 + k10 + k01 + k00)
    out["gwet_ac1_consensus_model"] = _ac1_2x2(k11, k10, k01, k00)
    out["krippendorff_alpha_consensus_model"] = _alpha_2x2(k11, k10, k01, k00)
    m11, m10, m01, m00 = b("m11"), b("m10"), b("m01"), b("m00")
    out["reader_agreement"] = _divide(m11 + m00, m11 + m10 + m01 + m00)
    out["reader_cohen_kappa_model"] = kappa_2x2(m11, m10, m01, m00)
    out["reader_kappa_vs_others"] = kappa_2x2(b("o11"), b("o10"), b("o01"), b("o00"))
    return out


def kappa_2x2(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Return Cohen's kappa of 2 x 2 tables [[a, b], [c, d]] (element-wise) [3]_."""
    return _divide(2 * (a * d - b * c), (a + b) * (b + d) + (a + c) * (c + d))


def _fleiss_ac1(pair_agree, n_pairable, share, n_rated):
    """Return Fleiss' kappa and Gwet's AC1 from their summed parts [1]_."""
    pa = _divide(pair_agree, n_pairable)
    pi = _divide(share, n_rated)
    disagree = 2 * pi * (1 - pi)  # 1 - p_e for Fleiss, p_e for AC1
    fleiss = _divide(pa - (1 - disagree), disagree)
    ac1 = _divide(pa - disagree, 1 - disagree)
    return fleiss, ac1


def _alpha(n, n_picked, coincide):
    """Return Krippendorff's nominal alpha for two categories [2]_."""
    n_other = n - n_picked
    expected = n_picked * (n_picked - 1) + n_other * (n_other - 1)
    return _divide((n - 1) * coincide - expected, 2 * n_picked * n_other)


def _ac1_2x2(a, b, c, d):
    """Return Gwet's AC1 of two raters from 2 x 2 tables [4]_."""
    total = a + b + c + d
    pa = _divide(a + d, total)
    pi = _divide(2 * a + b + c, 2 * total)
    pe = 2 * pi * (1 - pi)
    return _divide(pa - pe, 1 - pe)


def _alpha_2x2(a, b, c, d):
    """Return Krippendorff's alpha of two complete raters from 2 x 2 tables [2]_."""
    return _alpha(2 * (a + b + c + d), 2 * a + b + c, 2 * (a + d))


def _table_cells(first: np.ndarray, second: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Return the four cells of the 2 x 2 table of two 0/1 ratings where ``mask`` holds."""
    first, second = np.broadcast_arrays(first.astype(bool), second.astype(bool))
    return {
        "11": mask & first & second,
        "10": mask & first & ~second,
        "01": mask & ~first & second,
        "00": mask & ~first & ~second,
    }


def _divide(numerator, denominator):
    """Divide element-wise, with NaN where the denominator is zero."""
    numerator, denominator = np.broadcast_arrays(
        np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    )
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out

"""Chance-corrected agreement coefficients for nominal ratings, with missing ratings.

References
----------
.. [1] Cohen, J. (1960). A coefficient of agreement for nominal scales.
   Educational and Psychological Measurement 20, 37-46.  kappa = (p_o - p_e) / (1 - p_e)
   with p_e = sum_k p_k. p_.k from the two raters' margins.
.. [2] Fleiss, J. L. (1971). Measuring nominal scale agreement among many raters.
   Psychological Bulletin 76, 378-382, eqs. 2-9.
.. [3] Gwet, K. L. (2014). Handbook of Inter-Rater Reliability, 4th ed., Advanced
   Analytics; ch. 2 (Fleiss' kappa with missing ratings) and ch. 4 (AC1):
   p_a = mean over units with r_i >= 2 of sum_k r_ik (r_ik - 1) / (r_i (r_i - 1)),
   pi_k = mean over rated units of r_ik / r_i.  Fleiss: p_e = sum_k pi_k^2;
   AC1: p_e = sum_k pi_k (1 - pi_k) / (q - 1).
.. [4] Gwet, K. L. (2008). Computing inter-rater reliability and its variance in the
   presence of high agreement. Br. J. Math. Stat. Psychol. 61, 29-48 (AC1, eq. 14-15).
.. [5] Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability.
   Annenberg School for Communication, departmental paper 43, section C (nominal data,
   any number of observers, missing values): coincidences o_ck over pairable units,
   alpha = [(n - 1) sum_c o_cc - sum_c n_c (n_c - 1)] / [n (n - 1) - sum_c n_c (n_c - 1)].

With one rating per rater and unit and no missing ratings, [3] reduces to
Fleiss' formula [2], which is what ``statsmodels.stats.inter_rater.fleiss_kappa``
computes.  Undefined coefficients (no pairable unit, chance agreement of 1)
are NaN rather than errors: a sub-group of a study may legitimately have none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Coefficient:
    """An agreement coefficient with its parts.

    Attributes
    ----------
    name : str
        Which coefficient.
    estimate : float
        (observed - chance) / (1 - chance); NaN when undefined.
    observed : float
        Observed agreement p_a (for alpha, 1 - D_o).
    chance : float
        Chance agreement p_e (for alpha, 1 - D_e).
    n : int
        Units the coefficient used (for alpha and the p_a part of kappa/AC1,
        units with at least two ratings).
    """

    name: str
    estimate: float
    observed: float
    chance: float
    n: int


def counts_from_ratings(
    ratings: np.ndarray, categories: np.ndarray | list | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Turn a units x raters ratings matrix into a units x categories count matrix.

    Parameters
    ----------
    ratings : array_like, shape (n_units, n_raters)
        Category labels; ``None`` or NaN marks a missing rating.
    categories : array_like, optional
        All categories, in order; by default the sorted categories that occur.

    Returns
    -------
    counts : ndarray of float, shape (n_units, n_categories)
        How many raters put each unit in each category.
    categories : ndarray
        The category of each column.
    """
    ratings = np.asarray(ratings, dtype=object)
    if ratings.ndim != 2:
        raise ValueError("ratings must be a 2-D units x raters matrix")
    present = np.array(
        [[not _is_missing(v) for v in row] for row in ratings], dtype=bool
    ).reshape(ratings.shape)
    values = ratings[present]
    if categories is None:
        categories = np.array(sorted(set(values.tolist())), dtype=object)
    else:
        categories = np.asarray(categories, dtype=object)
    code = {c: k for k, c in enumerate(categories.tolist())}
    try:
        codes = np.fromiter((code[v] for v in values.tolist()), np.intp, values.size)
    except KeyError as exc:
        raise ValueError(f"rating {exc.args[0]!r} is not among the categories") from exc
    unit = np.nonzero(present)[0]
    q = len(categories)
    counts = np.bincount(unit * q + codes, minlength=ratings.shape[0] * q)
    return counts.reshape(ratings.shape[0], q).astype(float), categories


def fleiss_kappa(counts: np.ndarray) -> Coefficient:
    """Compute Fleiss' kappa from a units x categories count matrix [2]_, [3]_.

    Rows may have different totals (missing ratings); units with fewer than two
    ratings do not enter the observed agreement, and units with none are ignored.
    """
    pa, pi, n2 = _pairwise_parts(counts)
    pe = float(np.sum(pi**2))
    # 1 - p_e written as sum pi_k (1 - pi_k) so that it is exactly 0 when one category has it all.
    return Coefficient("fleiss_kappa", _ratio(pa - pe, float(np.sum(pi * (1 - pi)))), pa, pe, n2)


def gwet_ac1(counts: np.ndarray) -> Coefficient:
    """Compute Gwet's AC1 for any number of raters from a count matrix [3]_, [4]_.

    The number of categories q is the number of columns of ``counts``; pass
    columns for categories nobody used when they were available to the raters.
    """
    counts = np.asarray(counts, dtype=float)
    q = counts.shape[1]
    pa, pi, n2 = _pairwise_parts(counts)
    pe = float(np.sum(pi * (1 - pi)) / (q - 1)) if q > 1 else 1.0
    return Coefficient("gwet_ac1", _ratio(pa - pe, 1 - pe), pa, pe, n2)


def krippendorff_alpha(counts: np.ndarray) -> Coefficient:
    """Compute Krippendorff's alpha for nominal data from a count matrix [5]_.

    Every pairable value (a unit with at least two ratings) counts, whoever the
    raters are; units with one rating are not pairable and are left out.
    """
    counts = np.asarray(counts, dtype=float)
    m = counts.sum(axis=1)
    pairable = counts[m >= 2]
    m = m[m >= 2]
    n = float(m.sum())
    if n < 2:
        return Coefficient("krippendorff_alpha", float("nan"), float("nan"), float("nan"), 0)
    agree = float(np.sum((pairable * (pairable - 1)).sum(axis=1) / (m - 1)))  # sum_c o_cc
    n_c = pairable.sum(axis=0)
    expected = float(np.sum(n_c * (n_c - 1)))
    estimate = _ratio((n - 1) * agree - expected, n * (n - 1) - expected)
    return Coefficient(
        "krippendorff_alpha", estimate, agree / n, expected / (n * (n - 1)), int(m.size)
    )


def cohen_kappa(table: np.ndarray) -> Coefficient:
    """Compute Cohen's kappa from a square contingency table of two raters [1]_."""
    table = np.asarray(table, dtype=float)
    if table.ndim != 2 or table.shape[0] != table.shape[1]:
        raise ValueError("the contingency table must be square")
    total = float(table.sum())
    if total == 0:
        return Coefficient("cohen_kappa", float("nan"), float("nan"), float("nan"), 0)
    po = float(np.trace(table)) / total
    rows, cols = table.sum(axis=1) / total, table.sum(axis=0) / total
    pe = float(rows @ cols)
    return Coefficient("cohen_kappa", _ratio(po - pe, 1 - pe), po, pe, int(total))


def _pairwise_parts(counts: np.ndarray) -> tuple[float, np.ndarray, int]:
    """Return Gwet's p_a, the category shares pi_k, and the units with two ratings [3]_."""
    counts = np.asarray(counts, dtype=float)
    r = counts.sum(axis=1)
    two = r >= 2
    if not two.any():
        return float("nan"), np.full(counts.shape[1], np.nan), 0
    per_unit = (counts[two] * (counts[two] - 1)).sum(axis=1) / (r[two] * (r[two] - 1))
    one = r >= 1
    pi = (counts[one] / r[one, None]).mean(axis=0)
    return float(per_unit.mean()), pi, int(two.sum())


def _ratio(numerator: float, denominator: float) -> float:
    """Return numerator / denominator, NaN when the denominator is zero."""
    return float(numerator / denominator) if denominator != 0 else float("nan")


def _is_missing(value: object) -> bool:
    """Tell whether a rating is missing (None or a float NaN)."""
    return value is None or (isinstance(value, float) and value != value)

"""Cluster bootstrap over queries: resampled sums and percentile intervals.

The picks inside one query are not independent (a reader picks exactly 5 of its
10 candidates), so the resampling unit is the query: each replicate draws the
queries with replacement and keeps all their items and readers.

References
----------
.. [1] Efron, B. and Tibshirani, R. J. (1993). An Introduction to the Bootstrap.
   Chapman & Hall; ch. 13 (percentile interval: the alpha/2 and 1 - alpha/2
   quantiles of the replicates).
.. [2] Davison, A. C. and Hinkley, D. V. (1997). Bootstrap Methods and their
   Application. Cambridge University Press; sec. 3.8 (hierarchical data:
   resample the top-level clusters, here queries, with replacement).
"""

from __future__ import annotations

import numpy as np

#: Default number of bootstrap replicates (the study protocol asks for at least 2,000).
DEFAULT_REPLICATES = 2000
# Cap on replicates x queries held at once; keeps memory flat for large studies.
_CHUNK_CELLS = 4_000_000


def resample_counts(n_queries: int, n_replicates: int, rng: np.random.Generator) -> np.ndarray:
    """Return how often each query is drawn in each replicate, shape (n_replicates, n_queries).

    Each row is one bootstrap sample of ``n_queries`` queries drawn with
    replacement, stored as counts so a replicate's sums are ``counts @ S``.
    """
    draws = rng.integers(0, n_queries, size=(n_replicates, n_queries))
    offsets = (np.arange(n_replicates) * n_queries)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=n_replicates * n_queries)
    return counts.reshape(n_replicates, n_queries).astype(float)


def bootstrap_sums(per_query: np.ndarray, n_replicates: int, seed: int | None) -> np.ndarray:
    """Return the column sums of ``per_query`` for each bootstrap replicate of the queries.

    Parameters
    ----------
    per_query : ndarray, shape (n_queries, width)
        Per-query sufficient statistics.
    n_replicates : int
        Number of replicates.
    seed : int or None
        Seed of :func:`numpy.random.default_rng`; the same seed and data give
        the same replicates.

    Returns
    -------
    ndarray, shape (n_replicates, width)
    """
    per_query = np.asarray(per_query, dtype=float)
    n_queries = per_query.shape[0]
    rng = np.random.default_rng(seed)
    out = np.empty((n_replicates, per_query.shape[1]))
    step = max(1, _CHUNK_CELLS // max(n_queries, 1))
    for start in range(0, n_replicates, step):
        stop = min(n_replicates, start + step)
        out[start:stop] = resample_counts(n_queries, stop - start, rng) @ per_query
    return out


def percentile_interval(
    replicates: np.ndarray, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the percentile interval of replicates along the first axis [1]_.

    Replicates where the statistic is undefined (NaN, e.g. a resample with no
    rated item for a reader) are left out and counted.

    Returns
    -------
    low, high : ndarray
        Interval bounds, shape ``replicates.shape[1:]``; NaN where every
        replicate is undefined.
    n_undefined : ndarray of int
        Replicates left out.
    """
    replicates = np.asarray(replicates, dtype=float)
    tail = (1 - confidence) / 2
    undefined = np.isnan(replicates).sum(axis=0)
    low = np.full(replicates.shape[1:], np.nan)
    high = np.full(replicates.shape[1:], np.nan)
    defined = undefined < replicates.shape[0]
    if np.any(defined):
        columns = replicates[:, defined] if replicates.ndim > 1 else replicates
        quantiles = np.nanquantile(columns, [tail, 1 - tail], axis=0)
        if replicates.ndim > 1:
            low[defined], high[defined] = quantiles[0], quantiles[1]
        else:
            low, high = quantiles[0], quantiles[1]
    return low, high, undefined

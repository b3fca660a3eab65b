"""Ranking metrics of retrieval with binary relevance: precision, AP and nDCG at k.

Definitions (also in ``docs/retrieval.md``), for one query whose ranked
results have relevance ``rel_1, rel_2, ...`` in {0, 1}:

- ``P@k = (1/k) * sum_{i<=k} rel_i``;
- ``AP@k = (1/R_k) * sum_{i<=k} rel_i * P@i``, with ``R_k = sum_{i<=k} rel_i``
  the number of relevant results in the top k; ``AP@k = 0`` when ``R_k = 0``.
  This is the mean of the precision at each relevant rank within the top k,
  the retrieval paper's mAP@k once averaged over queries;
- ``DCG@k = sum_{i<=k} rel_i / log2(i + 1)``; ``nDCG@k = DCG@k / IDCG@k``,
  where IDCG@k is the DCG of the ideal ranking of the whole candidate pool
  (its ``min(k, R)`` relevant candidates first, R = relevant candidates in
  the pool); ``nDCG@k = 0`` when the pool holds no relevant candidate.
  This is scikit-learn's ``ndcg_score`` with binary gains.

References
----------
.. [1] Manning, C. D., Raghavan, P. and Schuetze, H. (2008). Introduction to
   Information Retrieval, ch. 8.4 (precision at k, average precision).
.. [2] Jaervelin, K. and Kekaelaeinen, J. (2002). Cumulated gain-based
   evaluation of IR techniques. ACM TOIS 20(4), 422-446 (DCG, nDCG).
.. [3] Thakrar, P. et al. Vision Transformer embeddings as global descriptors
   for chest X-ray retrieval (the protocol: mAP@5, nDCG@5, t-test against
   random retrieval).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _top(relevance: Sequence[int] | np.ndarray, k: int) -> np.ndarray:
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    rel = np.asarray(relevance, dtype=float).ravel()[:k]
    if rel.size and not np.all((rel == 0) | (rel == 1)):
        raise ValueError("relevance must be binary (0 or 1)")
    return rel


def precision_at_k(relevance: Sequence[int] | np.ndarray, k: int) -> float:
    """Return the share of relevant results among the top ``k`` (missing results count as 0).

    Parameters
    ----------
    relevance : sequence of {0, 1}
        Relevance of the ranked results, best first.
    k : int
        Cut-off.
    """
    return float(_top(relevance, k).sum() / k)


def average_precision_at_k(relevance: Sequence[int] | np.ndarray, k: int) -> float:
    """Return AP@k: the mean of the precision at each relevant rank within the top ``k``.

    Zero when none of the top ``k`` is relevant (see the module docstring).
    """
    rel = _top(relevance, k)
    hits = rel.sum()
    if hits == 0:
        return 0.0
    ranks = np.arange(1, rel.size + 1)
    precision_at_rank = np.cumsum(rel) / ranks
    return float((precision_at_rank * rel).sum() / hits)


def ndcg_at_k(relevance: Sequence[int] | np.ndarray, k: int, n_relevant: int) -> float:
    """Return nDCG@k with binary gains.

    Parameters
    ----------
    relevance : sequence of {0, 1}
        Relevance of the ranked results, best first.
    k : int
        Cut-off.
    n_relevant : int
        Relevant candidates in the whole pool searched (sets the ideal DCG);
        must be at least the relevant results in ``relevance``.
    """
    rel = _top(relevance, k)
    if n_relevant < rel.sum():
        raise ValueError(f"n_relevant ({n_relevant}) is below the relevant results given ({int(rel.sum())})")
    if n_relevant == 0:
        return 0.0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = float((rel * discounts[: rel.size]).sum())
    idcg = float(discounts[: min(k, n_relevant)].sum())
    return dcg / idcg


@dataclass(frozen=True)
class QueryScores:
    """The three metrics of one query at one cut-off."""

    precision: float
    average_precision: float
    ndcg: float


def score_query(relevance: Sequence[int] | np.ndarray, k: int, n_relevant: int) -> QueryScores:
    """Return P@k, AP@k and nDCG@k of one ranked result list."""
    return QueryScores(precision_at_k(relevance, k), average_precision_at_k(relevance, k),
                       ndcg_at_k(relevance, k, n_relevant))


def score_rankings(relevance: np.ndarray, k: int, n_relevant: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return P@k, AP@k and nDCG@k of many ranked lists at once (one per row).

    The same formulas as :func:`score_query`, vectorised over queries.

    Parameters
    ----------
    relevance : ndarray, shape (Q, k)
        Relevance of each query's results, best first; a list shorter than
        ``k`` is padded with 0 (a missing result is not relevant).
    k : int
    n_relevant : ndarray, shape (Q,)
        Relevant candidates in each query's pool.
    """
    rel = np.asarray(relevance, dtype=float).reshape(len(relevance), -1)[:, :k]
    if rel.size and not np.all((rel == 0) | (rel == 1)):
        raise ValueError("relevance must be binary (0 or 1)")
    n_relevant = np.asarray(n_relevant, dtype=np.int64)
    hits = rel.sum(axis=1)
    ranks = np.arange(1, rel.shape[1] + 1)
    ap = (np.cumsum(rel, axis=1) / ranks * rel).sum(axis=1) / np.maximum(hits, 1)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[np.minimum(k, n_relevant)]
    ndcg = np.where(n_relevant > 0, (rel @ discounts[: rel.shape[1]]) / np.where(ideal > 0, ideal, 1.0), 0.0)
    return hits / k, ap, ndcg


def expected_random_scores(n_candidates: int | np.ndarray, n_relevant: int | np.ndarray, k: int
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the exact expectation of P@k, AP@k and nDCG@k under a random ordering.

    Random retrieval is the reference of the paper's t-test: every ordering
    of a query's pool (``n_candidates`` N, of which ``n_relevant`` R are
    relevant) equally likely.  Closed forms, vectorised over queries (arrays
    broadcast; scalars give 0-d arrays).  With ``m = min(k, N)`` results and
    ``H`` the relevant ones among them, H is hypergeometric (m draws from N
    with R successes), so ``E[H] = m R / N`` and
    ``P(H = 0) = prod_{j<m} (N - R - j) / (N - j)``.  Each rank ``i <= m``
    holds a relevant result with probability ``R / N``, two ranks both with
    ``R (R - 1) / (N (N - 1))``; hence

    - ``E[P@k] = E[H] / k``;
    - ``E[nDCG@k] = (R / N) * sum_{i<=m} d_i / IDCG``, ``d_i = 1 / log2(i + 1)``;
    - AP@k divides by H, so condition on it: given ``H = h >= 1`` the hits
      are a uniform h-subset of the m ranks, ``E[rel_i C_i | h] = h/m +
      (i - 1) h (h - 1) / (m (m - 1))`` (``C_i`` the hits up to rank i), and
      ``E[AP@k | h] = a + b (h - 1)`` with ``a = H_m / m`` and
      ``b = (m - H_m) / (m (m - 1))`` (``H_m`` the m-th harmonic number;
      ``b = 0`` for ``m = 1``).  Linear in h, so
      ``E[AP@k] = a P(H >= 1) + b (E[H] - P(H >= 1))``.

    The conditioning on the number of hits follows Bestgen's exact expected
    AP of a random ranking [4]_; here for the top-k variant of this module.
    ``tests/test_retrieval_metrics.py`` checks it against a large Monte Carlo.

    References
    ----------
    .. [4] Bestgen, Y. (2015). Exact expected average precision of the random
       baseline for system evaluation. The Prague Bulletin of Mathematical
       Linguistics 103, 131-138.
    """
    n = np.asarray(n_candidates, dtype=np.int64)
    r = np.asarray(n_relevant, dtype=np.int64)
    if np.any(r < 0) or np.any(r > n):
        raise ValueError("n_relevant must lie between 0 and n_candidates")
    n, r = np.broadcast_arrays(n, r)
    m = np.minimum(k, n)
    share = np.divide(r, n, out=np.zeros(n.shape), where=n > 0)
    expected_hits = m * share
    j = np.arange(k).reshape((1,) * n.ndim + (k,))
    nn, rr, mm = n[..., None], r[..., None], m[..., None]
    factors = np.where(j < mm, np.clip(nn - rr - j, 0, None) / np.maximum(nn - j, 1), 1.0)
    p_any = np.where(r > 0, 1.0 - factors.prod(axis=-1), 0.0)
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, k + 1))])[m]
    a = np.divide(harmonic, m, out=np.zeros(n.shape), where=m > 0)
    b = np.divide(m - harmonic, m * (m - 1), out=np.zeros(n.shape), where=m > 1)
    ap = a * p_any + b * (expected_hits - p_any)
    discounts = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    ideal = discounts[np.minimum(k, r)]
    ndcg = np.divide(share * discounts[m], ideal, out=np.zeros(n.shape), where=ideal > 0)
    return expected_hits / k, ap, ndcg

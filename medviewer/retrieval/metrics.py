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


def expected_random_scores(n_candidates: int, n_relevant: int, k: int, draws: int,
                           rng: np.random.Generator) -> QueryScores:
    """Return the mean metrics of ``draws`` random rankings of a candidate pool.

    Random retrieval is the reference of the paper's t-test: every ordering of
    the pool equally likely.  The mean over draws estimates its expectation
    for this query's pool (``n_candidates`` with ``n_relevant`` relevant).
    The same formulas as :func:`score_query`, vectorised over the draws.
    """
    if n_candidates == 0:
        return QueryScores(0.0, 0.0, 0.0)
    pool = np.zeros(n_candidates)
    pool[:n_relevant] = 1.0
    rel = rng.permuted(np.tile(pool, (draws, 1)), axis=1)[:, :k]
    ranks = np.arange(1, rel.shape[1] + 1)
    hits = rel.sum(axis=1)
    precision = hits / k
    ap = np.where(hits > 0, (np.cumsum(rel, axis=1) / ranks * rel).sum(axis=1) / np.maximum(hits, 1), 0.0)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    idcg = discounts[: min(k, n_relevant)].sum()
    ndcg = (rel @ discounts[: rel.shape[1]]) / idcg if n_relevant else np.zeros(draws)
    return QueryScores(float(precision.mean()), float(ap.mean()), float(ndcg.mean()))

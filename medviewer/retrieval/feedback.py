"""Relevance feedback: re-rank a search's candidates after the reader marks results relevant or not.

References
----------
Rocchio JJ. "Relevance feedback in information retrieval", in The SMART
Retrieval System, 1971; Manning, Raghavan, Schuetze, "Introduction to
Information Retrieval", 2008, section 9.1.1, eq. 9.3:
``q' = alpha q + beta mean(relevant) - gamma mean(non-relevant)`` with
alpha = 1, beta = 0.75, gamma = 0.15 (their suggested weights), on unit
embeddings (cosine metric).

Marked results keep the reader's verdict: relevant ones stay first, in their
original order, non-relevant ones go last; the unmarked candidates are
ordered by cosine similarity to the moved query.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

ALPHA, BETA, GAMMA = 1.0, 0.75, 0.15


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float64)
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norm, 1e-12)


def rocchio_query(query: np.ndarray, relevant: np.ndarray, non_relevant: np.ndarray, *,
                  alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA) -> np.ndarray:
    """Return the moved query (unit length) from the query and the marked results' embeddings."""
    moved = alpha * _unit(query)
    if len(relevant):
        moved = moved + beta * _unit(relevant).mean(axis=0)
    if len(non_relevant):
        moved = moved - gamma * _unit(non_relevant).mean(axis=0)
    return _unit(moved)


@dataclass(frozen=True)
class Reranked:
    """A re-ranked candidate list.

    Attributes
    ----------
    order : np.ndarray
        Indices into the candidates, best first.
    similarity : np.ndarray
        Cosine similarity of each candidate (in ``order``) to the moved query.
    marks : int
        Marks used.
    """

    order: np.ndarray
    similarity: np.ndarray
    marks: int


def rerank(query: np.ndarray, candidates: np.ndarray, marks: Mapping[int, bool], **weights: float) -> Reranked:
    """Re-rank candidates (N, d) for a query (d,) given marks {candidate index: relevant}.

    Without marks the order is plain cosine similarity to the query.
    """
    candidates = _unit(candidates)
    relevant = [i for i, r in marks.items() if r]
    non_relevant = [i for i, r in marks.items() if not r]
    moved = rocchio_query(query, candidates[relevant], candidates[non_relevant], **weights)
    sims = candidates @ moved
    unmarked = [i for i in np.argsort(-sims, kind="stable") if i not in marks]
    order = np.array([*sorted(relevant), *unmarked, *sorted(non_relevant)], dtype=int)
    return Reranked(order, sims[order], len(marks))

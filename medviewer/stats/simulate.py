"""Seeded synthetic reader studies for tests, benchmarks and demos.

Each query has ``n_candidates`` candidates of which the first ``n_closest``
are the model's closest.  A reader scores every candidate as
``skill * model_closest + shared + noise`` (``shared`` is an item effect all
readers see, which makes readers agree with each other beyond the model) and
picks the ``n_closest`` best, as the reading screen enforces.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medviewer.stats.picks import NO_ROW, NOT_RATED, PicksTable


def simulate_picks(
    n_readers: int = 5,
    n_queries: int = 100,
    n_candidates: int = 10,
    n_closest: int = 5,
    *,
    skill: float | Sequence[float] = 1.0,
    shared: float = 1.0,
    skip_rate: float = 0.0,
    unfinished: Sequence[float] = (),
    groups: Sequence[str] = ("CXR", "CT"),
    seed: int = 0,
) -> PicksTable:
    """Return a synthetic picks table.

    Parameters
    ----------
    n_readers, n_queries, n_candidates, n_closest : int
        Study size; each reader picks ``n_closest`` of ``n_candidates``.
    skill : float or sequence of float
        How strongly each reader follows the model (0: not at all).
    shared : float
        Spread of the item effect common to all readers.
    skip_rate : float
        Probability that a reader skips a query (rows kept, ``picked`` blank).
    unfinished : sequence of float
        Fraction of the queries read by the first ``len(unfinished)`` readers;
        the rest have no rows (readers who stopped early).
    groups : sequence of str
        Values of a ``modality`` column, assigned to queries in turn.
    seed : int
        Seed of the generator.
    """
    rng = np.random.default_rng(seed)
    skill = np.broadcast_to(np.asarray(skill, dtype=float), (n_readers,))
    n_items = n_queries * n_candidates
    model = np.tile(np.arange(n_candidates) < n_closest, n_queries).astype(np.int8)
    item_effect = rng.normal(0.0, shared, size=(n_queries, n_candidates))
    noise = rng.normal(size=(n_readers, n_queries, n_candidates))
    score = skill[:, None, None] * model.reshape(n_queries, n_candidates) + item_effect + noise
    # Rank within each query: the n_closest highest scores are picked.
    order = np.argsort(-score, axis=2)
    picked = np.zeros_like(score, dtype=np.int8)
    np.put_along_axis(picked, order[:, :, :n_closest], 1, axis=2)
    ratings = picked.reshape(n_readers, n_items).T.copy()

    skipped = rng.random((n_queries, n_readers)) < skip_rate
    ratings[np.repeat(skipped, n_candidates, axis=0)] = NOT_RATED
    for r, fraction in enumerate(unfinished):
        stop = int(round(fraction * n_queries)) * n_candidates
        ratings[stop:, r] = NO_ROW
    modality = tuple(groups[q % len(groups)] for q in range(n_queries)) if groups else ()
    return PicksTable(
        readers=tuple(f"R{r + 1}" for r in range(n_readers)),
        queries=tuple(f"q{q + 1:04d}" for q in range(n_queries)),
        item_query=np.repeat(np.arange(n_queries), n_candidates),
        item_candidate=tuple(f"c{c + 1:02d}" for c in range(n_candidates)) * n_queries,
        model=model,
        ratings=ratings,
        groups={"modality": tuple(np.repeat(modality, n_candidates).tolist())} if groups else {},
        source="simulated",
    )

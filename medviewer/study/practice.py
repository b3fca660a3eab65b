"""The practice query a reader sees before the first scored one.

It is built from the study's own candidate images (never a query image), in a
seeded order of the reader's, so a reader learns the screen on images of the
same kind without reading a scored query early.  Its picks are never stored.
"""

from __future__ import annotations

import numpy as np

from medviewer.study import store
from medviewer.study.session import QueryView

PRACTICE_QUERY_ID = -1


def practice_view(conn, study_id: int, seed: int, candidates: int = 10) -> QueryView | None:
    """Return a practice query (query id ``-1``, candidate ids ``-1..-10``), or None.

    ``None`` when the study has too few candidate images that are not queries.
    """
    queries = {int(case) for case, _m, _g in store.study_queries(conn, study_id).values()}
    pool = sorted({int(row[1]) for row in store.study_candidates(conn, study_id)} - queries)
    if len(pool) < candidates + 1:
        return None
    rng = np.random.default_rng(seed ^ 0x5EED)
    chosen = [pool[i] for i in rng.permutation(len(pool))[:candidates + 1]]
    return QueryView(PRACTICE_QUERY_ID, chosen[0],
                     tuple((-(i + 1), case) for i, case in enumerate(chosen[1:])))

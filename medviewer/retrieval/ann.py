"""Nearest-neighbour structures over embeddings: exact (flat), HNSW and IVF, with FAISS.

Rows of the structure are *positions* 0..N-1 into the index's embedding
matrix; the index maps positions to case ids.  Two metrics:

- ``cosine``: inner product on L2-normalised vectors; distance ``1 - cos``;
- ``l2``: Euclidean; FAISS works with squared distances, reported as
  ``sqrt``.

``exact`` is a flat index (every vector compared); ``hnsw`` and ``ivf`` are
approximate and their recall@10 against exact is measured at build time
(:func:`tune_and_measure`), which also picks the smallest search effort
(HNSW ``efSearch``, IVF ``nprobe``) reaching :data:`TARGET_RECALL`.

References
----------
.. [1] Johnson, J., Douze, M. and Jegou, H. (2019). Billion-scale similarity
   search with GPUs. IEEE Trans. Big Data 7(3) (the FAISS library).
.. [2] Malkov, Y. A. and Yashunin, D. A. (2018). Efficient and robust
   approximate nearest neighbor search using Hierarchical Navigable Small
   World graphs. IEEE TPAMI 42(4) (HNSW; ``M``, ``efConstruction``, ``efSearch``).
.. [3] Jegou, H., Douze, M. and Schmid, C. (2011). Product quantization for
   nearest neighbor search. IEEE TPAMI 33(1) (the inverted file, IVF, with
   ``nlist`` cells and ``nprobe`` visited).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from medviewer.tasks import TaskState, ensure_state

KINDS = ("exact", "hnsw", "ivf")
METRICS = ("cosine", "l2")
#: Above this many cases ``kind="auto"`` builds an HNSW index instead of an exact one.
AUTO_APPROXIMATE_ABOVE = 50_000
#: Recall@10 an approximate index is tuned to reach (and reported against).
TARGET_RECALL = 0.95
#: Filtered searches keeping at most this many candidates are answered exactly.
EXACT_SUBSET_MAX = 20_000
_ADD_CHUNK = 20_000


@dataclass
class AnnParams:
    """Construction and search parameters of an approximate structure.

    Attributes
    ----------
    hnsw_m : int
        HNSW neighbours per node (memory ~ ``2 * M * 4`` bytes per vector).
    ef_construction : int
        HNSW candidate list size while building.
    ef_search : int
        HNSW candidate list size while searching (tuned at build).
    nlist : int
        IVF cells; 0 = ``4 * sqrt(N)``.
    nprobe : int
        IVF cells visited per query (tuned at build).
    """

    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 64
    nlist: int = 0
    nprobe: int = 16

    def to_dict(self) -> dict[str, int]:
        """Return the parameters as a JSON-friendly dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> AnnParams:
        """Build parameters from :meth:`to_dict` output (unknown keys ignored)."""
        data = data or {}
        return cls(**{k: int(v) for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class RecallReport:
    """Recall@k of an approximate structure against exact search.

    Attributes
    ----------
    k : int
    queries : int
        Library vectors used as queries (each query's own vector is left out).
    recall : float
        Mean share of the exact k nearest that the structure returned.
    setting : dict
        The search effort measured (``ef_search`` or ``nprobe``).
    sweep : list of dict
        Every effort tried, with its recall.
    """

    k: int
    queries: int
    recall: float
    setting: dict[str, int] = field(default_factory=dict)
    sweep: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-friendly dict."""
        return asdict(self)


def choose_kind(count: int, requested: str = "auto") -> str:
    """Return the structure to build: ``requested``, or by size for ``"auto"``."""
    if requested == "auto":
        return "hnsw" if count > AUTO_APPROXIMATE_ABOVE else "exact"
    if requested not in KINDS:
        raise ValueError(f"index kind must be auto or one of {KINDS}, not {requested!r}")
    return requested


def check_metric(metric: str) -> str:
    """Return ``metric`` if supported, else raise ValueError."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
    return metric


def prepare_vectors(vectors: np.ndarray, metric: str) -> np.ndarray:
    """Return C-contiguous float32 rows, L2-normalised for the cosine metric.

    One copy at most: the cosine metric normalises a new array (never the
    caller's) in place; for l2, float32 C-contiguous input comes back as is.
    """
    if check_metric(metric) == "cosine":
        x = np.array(np.atleast_2d(vectors), dtype=np.float32, order="C", copy=True)
        normalise_rows(x)
        return x
    return np.ascontiguousarray(np.atleast_2d(np.asarray(vectors, dtype=np.float32)))


def prepare_into(vectors: np.ndarray, out: np.ndarray, metric: str) -> None:
    """Write the prepared form of ``vectors`` (see :func:`prepare_vectors`) into ``out``, rows for rows."""
    out[...] = vectors
    if check_metric(metric) == "cosine":
        normalise_rows(out)


def normalise_rows(x: np.ndarray) -> None:
    """L2-normalise the float32 rows of ``x`` in place (a zero row stays zero).

    Two passes and one value per row of temporary memory (no copy of ``x``).
    """
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    # A zero vector has no direction; leave it zero rather than dividing by 0.
    norms[norms == 0] = 1.0
    x /= norms[:, None]


def scores_to_distances(scores: np.ndarray, metric: str) -> np.ndarray:
    """Turn FAISS scores (inner products, or squared L2) into distances (``1 - cos`` or L2)."""
    scores = np.asarray(scores, dtype=np.float64)
    if metric == "cosine":
        return 1.0 - scores
    return np.sqrt(np.maximum(scores, 0.0))


def _faiss_metric(faiss: Any, metric: str) -> int:
    return faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2


def build_structure(vectors: np.ndarray, kind: str, metric: str, params: AnnParams | None = None,
                    state: TaskState | None = None, seed: int = 0) -> Any:
    """Build a FAISS index over prepared ``vectors`` (rows = positions).

    Parameters
    ----------
    vectors : ndarray, shape (N, D)
        Output of :func:`prepare_vectors`.
    kind : {"exact", "hnsw", "ivf"}
    metric : {"cosine", "l2"}
    params : AnnParams, optional
    state : TaskState, optional
        Progress; cancellation is checked between chunks of added vectors.
    seed : int
        Seeds the IVF training sample (HNSW levels use FAISS's fixed seed).
    """
    import faiss

    state = ensure_state(state)
    params = params or AnnParams()
    n, d = vectors.shape
    fm = _faiss_metric(faiss, metric)
    if kind == "exact":
        index = faiss.IndexFlat(d, fm)
    elif kind == "hnsw":
        index = new_structure(kind, d, metric, params)
    elif kind == "ivf":
        nlist = params.nlist or max(1, min(int(4 * np.sqrt(max(n, 1))), max(1, n // 39)))
        params.nlist = nlist
        quantizer = faiss.IndexFlat(d, fm)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, fm)
        # FAISS wants >= 39 training points per cell; more buys little.
        sample = min(n, 256 * nlist)
        rows = np.sort(np.random.default_rng(seed).choice(n, sample, replace=False)) if sample < n else slice(None)
        state.set_progress(0.0, f"training {nlist} IVF cells")
        index.train(np.ascontiguousarray(vectors[rows]))
        index.nprobe = min(params.nprobe, nlist)
    else:
        raise ValueError(f"index kind must be one of {KINDS}, not {kind!r}")
    add_rows(index, vectors, state)
    return index


def add_rows(index: Any, vectors: np.ndarray, state: TaskState | None = None) -> None:
    """Append ``vectors`` to ``index`` in chunks (their positions continue from ``index.ntotal``)."""
    state = ensure_state(state)
    n = len(vectors)
    for start in range(0, n, _ADD_CHUNK):
        state.check()
        index.add(np.ascontiguousarray(vectors[start:start + _ADD_CHUNK]))
        done = min(n, start + _ADD_CHUNK)
        state.set_progress(done / max(n, 1), f"adding vectors {done}/{n}")


def stored_vectors(index: Any) -> np.ndarray:
    """Return the vectors an HNSW index stores, as an (N, D) float32 view of its memory (no copy).

    The view keeps ``index`` alive; it is valid until rows are added to the index.
    """
    import faiss

    storage = faiss.downcast_index(index.storage)
    n, d = index.ntotal, index.d
    if n == 0:
        return np.zeros((0, d), np.float32)
    rows = faiss.rev_swig_ptr(storage.codes.data(), n * d * 4).view(np.float32).reshape(n, d).view(_Pinned)
    rows.owner = index  # numpy views of ``rows`` reach it through .base
    return rows


class _Pinned(np.ndarray):
    """An array over memory another object owns, holding that object (``owner``)."""

    owner: Any = None


def new_structure(kind: str, dim: int, metric: str, params: AnnParams) -> Any:
    """Return an empty HNSW index (the kind that takes rows as they come, untrained)."""
    import faiss

    if kind != "hnsw":
        raise ValueError(f"only an hnsw structure is built as rows arrive, not {kind!r}")
    index = faiss.IndexHNSWFlat(dim, params.hnsw_m, _faiss_metric(faiss, metric))
    index.hnsw.efConstruction = params.ef_construction
    index.hnsw.efSearch = params.ef_search
    return index


def set_search_effort(index: Any, kind: str, params: AnnParams) -> None:
    """Apply the tuned search effort of ``params`` to ``index``."""
    if kind == "hnsw":
        index.hnsw.efSearch = params.ef_search
    elif kind == "ivf":
        index.nprobe = min(params.nprobe, index.nlist)


def search_structure(index: Any, queries: np.ndarray, k: int, kind: str, params: AnnParams,
                     allowed: np.ndarray | None = None, effort_scale: float = 1.0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Return (scores, positions), each (Q, k); missing results have position -1.

    Parameters
    ----------
    allowed : ndarray of bool, optional
        Positions that may be returned (a pre-filter: FAISS skips the others
        while it searches, so k results come back whenever k exist and the
        approximate search reaches them).
    effort_scale : float
        Multiplies ``efSearch`` / ``nprobe`` (selective filters need more).
    """
    import faiss

    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    k = int(min(k, index.ntotal)) if index.ntotal else 0
    if k == 0:
        return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
    selector = bits = None
    if allowed is not None:
        # FAISS reads bit (i & 7) of byte i >> 3 for position i: little-endian bit order.
        # ``bits`` and ``selector`` are locals so they outlive the search below.
        bits = np.packbits(np.asarray(allowed, dtype=bool), bitorder="little")
        selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits))
    if kind == "hnsw":
        sp = faiss.SearchParametersHNSW()
        sp.efSearch = int(max(k, params.ef_search * effort_scale))
    elif kind == "ivf":
        sp = faiss.SearchParametersIVF()
        sp.nprobe = int(min(index.nlist, max(1, params.nprobe * effort_scale)))
    else:
        sp = faiss.SearchParameters()
    if selector is not None:
        sp.sel = selector
    scores, positions = index.search(queries, k, params=sp)
    del bits, selector
    return scores, positions


#: Up to this many matrix elements a single-threaded dot product is used (see :func:`_dot`).
SINGLE_THREAD_DOT_MAX = 128 * 1024 * 1024


def _dot(matrix: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Return ``matrix @ q`` as float64.

    Measured (benchmarks/bench_retrieval.py, 2 shared vCPUs): a multi-threaded
    BLAS matrix-vector product pays milliseconds waking its threads (8 ms for
    a 10k x 384 matrix, against 0.5 ms on one thread), and only wins on
    matrices far larger than one memory pass of a core; numpy's einsum is a
    single-threaded SIMD loop.
    """
    if matrix.size <= SINGLE_THREAD_DOT_MAX:
        return np.einsum("ij,j->i", matrix, q).astype(np.float64)
    return np.asarray(matrix @ q, dtype=np.float64)


def exact_knn(vectors: np.ndarray, query: np.ndarray, k: int, metric: str,
              allowed: np.ndarray | None = None, farthest: bool = False,
              sq_norms: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (distances, rows) of the k nearest (or farthest) rows, by brute force.

    One matrix-vector product over the rows (:func:`_dot`): on a single query
    this is faster than FAISS's flat index (see ``benchmarks/bench_retrieval.py``).

    Parameters
    ----------
    vectors : ndarray, shape (N, D)
        Prepared rows (may be a memory map).
    query : ndarray, shape (D,)
        Prepared query.
    k : int
    metric : {"cosine", "l2"}
    allowed : ndarray, optional
        The pre-filter: a boolean mask over the rows, or row numbers.  Rows
        outside it are never ranked.
    farthest : bool
        Return the k largest distances instead, largest first.
    sq_norms : ndarray, optional
        Squared row norms (l2 only; computed when absent).
    """
    q = np.asarray(query, dtype=np.float32).ravel()
    n = len(vectors)
    rows = None
    if allowed is not None:
        allowed = np.asarray(allowed)
        rows = np.flatnonzero(allowed) if allowed.dtype == bool else allowed.astype(np.int64)
    if k <= 0 or n == 0 or (rows is not None and rows.size == 0):
        return np.zeros(0), np.zeros(0, np.int64)
    # Few allowed rows: gather them; many: scan everything and ignore the rest
    # (cheaper than copying most of the matrix).
    gather = rows is not None and rows.size <= n // 4
    sub = vectors[rows] if gather else vectors
    if metric == "cosine":
        dist = 1.0 - _dot(sub, q)
    else:
        norms = (np.einsum("ij,ij->i", sub, sub) if sq_norms is None
                 else (sq_norms[rows] if gather else sq_norms))
        dist = np.sqrt(np.maximum(norms - 2.0 * _dot(sub, q) + float(q @ q), 0.0))
    index_of = rows if gather else np.arange(n)
    if rows is not None and not gather:
        dist, index_of = dist[rows], rows
    k = min(int(k), dist.size)
    key = -dist if farthest else dist
    part = np.argpartition(key, k - 1)[:k] if k < dist.size else np.arange(dist.size)
    # Ties broken by row so results are reproducible.
    order = part[np.lexsort((index_of[part], key[part]))]
    return dist[order], index_of[order]


def tune_and_measure(index: Any, vectors: np.ndarray, kind: str, metric: str, params: AnnParams,
                     k: int = 10, queries: int = 200, seed: int = 0,
                     state: TaskState | None = None) -> RecallReport:
    """Measure recall@k against exact search and pick the smallest effort reaching the target.

    Queries are ``queries`` library vectors drawn at random (seeded); each
    query's own row is dropped from both result lists, as when a user
    searches with a case of the library.  For ``exact`` the recall is 1 by
    construction and nothing is measured.  ``params`` is updated with the
    chosen ``ef_search`` / ``nprobe``.
    """
    state = ensure_state(state)
    n = len(vectors)
    if kind == "exact" or n <= k + 1:
        return RecallReport(k=k, queries=0, recall=1.0)
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(n, min(queries, n), replace=False))
    xq = np.ascontiguousarray(vectors[picks])
    state.set_progress(0.0, f"exact neighbours of {len(picks)} queries")
    truth = _exact_truth(vectors, xq, picks, k, metric)
    if kind == "hnsw":
        efforts, key = [16, 32, 64, 128, 256, 512], "ef_search"
    else:
        efforts, key = [1, 2, 4, 8, 16, 32, 64, 128, 256], "nprobe"
        efforts = [e for e in efforts if e <= index.nlist] or [index.nlist]
    sweep, chosen = [], None
    for step, effort in enumerate(efforts):
        state.check()
        setattr(params, key, effort)
        _, found = search_structure(index, xq, k + 1, kind, params)
        recall = _recall(found, truth, picks, k)
        sweep.append({key: effort, "recall": round(recall, 4)})
        state.set_progress((step + 1) / len(efforts), f"recall@{k} {recall:.3f} at {key} {effort}")
        if recall >= TARGET_RECALL:
            chosen = (effort, recall)
            break
    if chosen is None:  # the target is out of reach: keep the best effort tried
        best = max(sweep, key=lambda s: s["recall"])
        chosen = (int(best[key]), float(best["recall"]))
    setattr(params, key, chosen[0])
    set_search_effort(index, kind, params)
    return RecallReport(k=k, queries=len(picks), recall=float(chosen[1]), setting={key: chosen[0]},
                        sweep=sweep)


def _exact_truth(vectors: np.ndarray, xq: np.ndarray, picks: np.ndarray, k: int, metric: str) -> list[set[int]]:
    import faiss

    # Brute force over the rows where they lie: no second flat index (a copy of every vector).
    _, found = faiss.knn(xq, np.ascontiguousarray(vectors, dtype=np.float32), k + 1,
                         metric=_faiss_metric(faiss, metric))
    return [set(_drop_self(row, own, k)) for row, own in zip(found, picks)]


def _drop_self(row: np.ndarray, own: int, k: int) -> list[int]:
    return [int(p) for p in row if p != own and p >= 0][:k]


def _recall(found: np.ndarray, truth: list[set[int]], picks: np.ndarray, k: int) -> float:
    hits = [len(set(_drop_self(row, own, k)) & t) / max(len(t), 1)
            for row, own, t in zip(found, picks, truth)]
    return float(np.mean(hits)) if hits else 1.0

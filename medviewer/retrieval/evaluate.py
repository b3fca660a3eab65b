"""The retrieval paper's evaluation protocol, on a library's labelled cases.

For a task (Cardiomegaly, Emphysema or Opacity):

1. positives are the cases with the finding (Opacity: any of the eight
   findings of :data:`OPACITY`), negatives the cases labelled only
   "No Finding"; other cases take no part;
2. only the chosen split of the training recipe's patient split is used
   (``test`` by default: images the model never saw; see
   :mod:`medviewer.retrieval.split`);
3. the larger class is undersampled (seeded) to the size of the smaller;
4. every case of that pool is a query, searching the rest of the pool with
   the query itself and every case of its patient excluded; a result is
   relevant when it has the query's class;
5. P@k, AP@k and nDCG@k per query (:mod:`medviewer.retrieval.metrics`),
   averaged over the queries (mAP@k ...), with a 95% bootstrap interval over
   queries; the same metrics for random retrieval (the expectation over
   random orderings of each query's candidates) and the paired t-test of
   the per-query AP@k against it (the paper's p-value).

References
----------
.. [1] Thakrar, P. et al. Vision Transformer embeddings as global
   descriptors for chest X-ray retrieval (tasks, balancing, mAP@5, nDCG@5,
   t-test against random retrieval).
.. [2] Wang, X. et al. (2017). ChestX-ray8: hospital-scale chest X-ray
   database and benchmarks. CVPR (the labels).
.. [3] Student (1908); paired t-test as ``scipy.stats.ttest_rel``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medviewer.retrieval import ann
from medviewer.retrieval.catalog import NO_FINDING, CaseInfo
from medviewer.retrieval.errors import QueryError, UnknownTaskError
from medviewer.retrieval.metrics import expected_random_scores, score_rankings
from medviewer.retrieval.split import SPLITS, patient_split

OPACITY = ("Atelectasis", "Effusion", "Infiltration", "Pneumonia", "Consolidation", "Edema",
           "Fibrosis", "Pleural_Thickening")
#: Task name -> the labels that make a case positive.  Opacity is the paper's union, plus the
#: literal labels of tables that name it directly (CheXpert's "Lung Opacity", the synthetic
#: generator's "Opacity").
TASKS: dict[str, tuple[str, ...]] = {
    "Cardiomegaly": ("Cardiomegaly",),
    "Emphysema": ("Emphysema",),
    "Opacity": (*OPACITY, "Opacity", "Lung Opacity"),
}
#: Below these, a t-test p-value is shown only with a warning (too few queries to trust it).
MIN_QUERIES_FOR_P = 20
MIN_QUERIES_PER_CLASS_FOR_P = 5
#: The paper's figures (mAP@5 per task; nDCG@5 is reported once, 0.73).
PAPER = {"map_at_5": {"Cardiomegaly": 0.68, "Opacity": 0.57, "Emphysema": 0.787}, "ndcg_at_5": 0.73}
EVAL_SPLITS = ("test", "val", "train", "heldout", "all")


def task_labels(task: str) -> tuple[str, ...]:
    """Return the labels that make a case positive for ``task`` (a known name, or any label).

    ``Opacity`` is the paper's union; a name not in :data:`TASKS` is taken as a
    single label (e.g. ``Effusion``).

    Raises
    ------
    UnknownTaskError
        The name is empty or is "No Finding".
    """
    if not task or task == NO_FINDING:
        raise UnknownTaskError(f"{task!r} cannot be a task: tasks are findings vs {NO_FINDING!r}",
                               hint=f"choose one of {', '.join(TASKS)} or another finding label")
    return TASKS.get(task, (task,))


@dataclass
class TaskPool:
    """The balanced cases of one task in one split."""

    case_ids: list[int]
    positive: list[bool]
    available_positives: int
    available_negatives: int
    split: str = "test"


def task_pool(cases: Sequence[CaseInfo], task: str, *, split: str = "test",
              fractions: Sequence[float] = (0.6, 0.3, 0.1), seed: int = 0, balance: bool = True) -> TaskPool:
    """Select the balanced positive and negative cases of ``task`` in ``split``.

    Parameters
    ----------
    split : {"test", "val", "train", "heldout", "all"}
        Which part of the recipe's patient split: ``heldout`` is validation
        and test together (never trained on; validation chose the epoch),
        ``all`` every patient (training images included: optimistic).
    seed : int
        The recipe's split seed; also seeds the undersampling.
    """
    positives_set = set(task_labels(task))
    if split not in EVAL_SPLITS:
        raise ValueError(f"split must be one of {EVAL_SPLITS}, not {split!r}")
    wanted = {"heldout": {"val", "test"}, "all": set(SPLITS)}.get(split, {split})
    assignment = patient_split([c.patient_id for c in cases], fractions, seed)
    pos, neg = [], []
    for case in cases:
        if assignment[case.patient_id] not in wanted:
            continue
        labels = set(case.labels)
        if labels & positives_set:
            pos.append(case.id)
        elif labels == {NO_FINDING}:
            neg.append(case.id)
    available = (len(pos), len(neg))
    if balance:
        rng = np.random.default_rng(seed)
        n = min(len(pos), len(neg))
        pos = sorted(rng.permutation(pos)[:n].tolist()) if len(pos) > n else pos
        neg = sorted(rng.permutation(neg)[:n].tolist()) if len(neg) > n else neg
    ids = sorted(pos + neg)
    positive_ids = set(pos)
    return TaskPool(ids, [i in positive_ids for i in ids], *available, split=split)


@dataclass
class RetrievalEvaluation:
    """Results of the protocol for one task and one embedder.

    Attributes are the CLI's JSON keys; ``map_at_k``, ``ndcg_at_k`` and
    ``precision_at_k`` are means over queries.
    """

    task: str
    k: int
    embedder: str
    queries: int
    positives: int
    negatives: int
    map_at_k: float
    ndcg_at_k: float
    precision_at_k: float
    map_ci95: tuple[float, float]
    ndcg_ci95: tuple[float, float]
    random_map_at_k: float
    random_ndcg_at_k: float
    random_precision_at_k: float
    p_value: float
    p_value_ndcg: float
    by_class: dict[str, dict[str, float]] = field(default_factory=dict)
    split: str = "test"
    seed: int = 0
    vectors_from: str = "computed"
    per_query: list[dict[str, Any]] = field(default_factory=list)
    p_value_warning: str = ""
    split_reason: str = ""

    def to_dict(self, per_query: bool = False) -> dict[str, Any]:
        """Return the results as JSON-friendly data (per-query rows on request)."""
        out = {k: v for k, v in self.__dict__.items() if k != "per_query"}
        out["map_ci95"], out["ndcg_ci95"] = list(self.map_ci95), list(self.ndcg_ci95)
        if per_query:
            out["per_query"] = self.per_query
        return out


def evaluate_pool(cases_by_id: dict[int, CaseInfo], pool: TaskPool, vectors: np.ndarray, metric: str,
                  *, task: str, k: int = 5, embedder: str = "", split: str = "test", seed: int = 0
                  ) -> RetrievalEvaluation:
    """Run every query of ``pool`` and score it.

    Parameters
    ----------
    cases_by_id : dict
        The pool's cases (for their patients).
    pool : TaskPool
    vectors : ndarray, shape (len(pool.case_ids), D)
        Embeddings in ``pool.case_ids`` order.
    metric : {"cosine", "l2"}

    Raises
    ------
    QueryError
        The pool has fewer than two cases of each class.
    """
    from scipy import stats

    n_pos = sum(pool.positive)
    n_neg = len(pool.positive) - n_pos
    if n_pos < 2 or n_neg < 2:
        raise QueryError(
            f"task {task}: the {split} split holds {pool.available_positives} positive and "
            f"{pool.available_negatives} 'No Finding' cases ({n_pos} of each after balancing), too few "
            "to evaluate", hint="import more labelled cases, or evaluate another split (--split heldout)")
    x = ann.prepare_vectors(vectors, metric)
    _, patients = np.unique(np.array([cases_by_id[i].patient_ref for i in pool.case_ids]), return_inverse=True)
    positive = np.array(pool.positive)
    ranked, found = _neighbours_of_every_case(x, patients, k, metric)
    relevance = np.where(found, positive[ranked] == positive[:, None], False)
    # Candidates of a query: the pool less the query's patient (the query included).
    patient_cases = np.bincount(patients)[patients]
    patient_positives = np.bincount(patients, weights=positive)[patients].astype(np.int64)
    class_cases = np.where(positive, positive.sum(), (~positive).sum())
    own_class = np.where(positive, patient_positives, patient_cases - patient_positives)
    n_candidates = len(positive) - patient_cases
    relevant_pool = class_cases - own_class
    precision, ap_q, ndcg_q = score_rankings(relevance.astype(float), k, relevant_pool)
    r_precision, r_ap, r_ndcg = expected_random_scores(n_candidates, relevant_pool, k)
    ids = np.asarray(pool.case_ids, np.int64)
    rows = [{"case": pool.case_ids[q], "positive": bool(positive[q]), "candidates": int(n_candidates[q]),
             "relevant_candidates": int(relevant_pool[q]), "precision": float(precision[q]),
             "ap": float(ap_q[q]), "ndcg": float(ndcg_q[q]), "random_precision": float(r_precision[q]),
             "random_ap": float(r_ap[q]), "random_ndcg": float(r_ndcg[q]),
             "results": ids[ranked[q][found[q]]].tolist()} for q in range(len(ids))]
    ap = np.array([r["ap"] for r in rows])
    nd = np.array([r["ndcg"] for r in rows])
    rap = np.array([r["random_ap"] for r in rows])
    rnd = np.array([r["random_ndcg"] for r in rows])
    map_ci95, ndcg_ci95 = _bootstrap_cis(np.column_stack([ap, nd]), seed)
    by_class = {}
    for name, flag in ((task, True), (NO_FINDING, False)):
        sel = [r for r in rows if r["positive"] == flag]
        by_class[name] = {"queries": len(sel), "map_at_k": _mean([r["ap"] for r in sel]),
                          "ndcg_at_k": _mean([r["ndcg"] for r in sel]),
                          "precision_at_k": _mean([r["precision"] for r in sel])}
    return RetrievalEvaluation(
        task=task, k=k, embedder=embedder, queries=len(rows), positives=n_pos, negatives=n_neg,
        map_at_k=float(ap.mean()), ndcg_at_k=float(nd.mean()),
        precision_at_k=_mean([r["precision"] for r in rows]),
        map_ci95=map_ci95, ndcg_ci95=ndcg_ci95,
        random_map_at_k=float(rap.mean()), random_ndcg_at_k=float(rnd.mean()),
        random_precision_at_k=_mean([r["random_precision"] for r in rows]),
        p_value=_paired_p(stats, ap, rap), p_value_ndcg=_paired_p(stats, nd, rnd),
        by_class=by_class, split=split, seed=seed, per_query=rows,
        p_value_warning=p_value_warning(len(rows), min(n_pos, n_neg)))


def p_value_warning(queries: int, smallest_class: int) -> str:
    """Return why a t-test p-value over this many queries should not be trusted ("" when it may be).

    A paired t-test over a handful of queries, whose AP@k values are few and
    discrete, gives p-values far smaller than the evidence (4 queries can print
    p = 2.5e-05).
    """
    if queries < MIN_QUERIES_FOR_P or smallest_class < MIN_QUERIES_PER_CLASS_FOR_P:
        return (f"only {queries} queries ({smallest_class} in the smaller class): a t-test needs at "
                f"least {MIN_QUERIES_FOR_P} queries and {MIN_QUERIES_PER_CLASS_FOR_P} per class to "
                "mean anything; the p-value is not evidence")
    return ""


#: Queries whose similarities to the whole pool are held at once (a block of 512 x N float32).
_QUERY_BLOCK = 512
#: Columns per chunk of the two-step top-k (see :func:`_smallest_k`).
_CHUNK = 64


def _neighbours_of_every_case(x: np.ndarray, patients: np.ndarray, k: int, metric: str
                              ) -> tuple[np.ndarray, np.ndarray]:
    """Return the k nearest rows of every row, never of the row's own patient.

    Brute force over the pool, one matrix product per block of queries; the
    final order is by the distance :func:`~medviewer.retrieval.ann.exact_knn`
    computes, ties broken by row (so it equals ``exact_knn`` query by query,
    with the other patients allowed).

    Returns
    -------
    ranked : ndarray of int, shape (N, min(k, N))
        Rows, nearest first.
    found : ndarray of bool, same shape
        False where a query has fewer than k candidates (its row is then 0).
    """
    n = len(x)
    width = min(int(k), n)
    ranked = np.zeros((n, width), np.int64)
    found = np.zeros((n, width), bool)
    sq_norms = np.einsum("ij,ij->i", x, x) if metric == "l2" else None
    # Same-patient (row, column) pairs, the query itself included: few, so masked by index.
    order = np.argsort(patients, kind="stable")
    starts = np.searchsorted(patients[order], patients[order], side="left")
    sizes = np.bincount(patients)[patients[order]]
    pair_rows = np.repeat(order, sizes)
    pair_cols = order[np.repeat(starts, sizes) + _ranges(sizes)]
    for start in range(0, n, _QUERY_BLOCK):
        stop = min(n, start + _QUERY_BLOCK)
        key = x[start:stop] @ x.T
        if metric == "cosine":
            np.negative(key, out=key)  # 1 - cos orders as -cos
        else:
            key *= -2.0
            key += sq_norms[None, :]  # squared distance less the query's own norm
        inside = (pair_rows >= start) & (pair_rows < stop)
        key[pair_rows[inside] - start, pair_cols[inside]] = np.inf
        # A short list by the float32 key, re-ranked by exact_knn's float64 distance.
        cols = _smallest_k(key, min(2 * width, n))
        dist = _distances(x, start, stop, cols, metric, sq_norms)
        dist[np.isinf(np.take_along_axis(key, cols, axis=1))] = np.inf
        final = np.lexsort((cols, dist), axis=1)[:, :width]
        ranked[start:stop] = np.take_along_axis(cols, final, axis=1)
        found[start:stop] = np.isfinite(np.take_along_axis(dist, final, axis=1))
    return np.where(found, ranked, 0), found


def _ranges(sizes: np.ndarray) -> np.ndarray:
    """Return 0..s-1 for each s of ``sizes``, concatenated."""
    first = np.repeat(np.cumsum(sizes) - sizes, sizes)
    return np.arange(sizes.sum()) - first


def _smallest_k(key: np.ndarray, k: int) -> np.ndarray:
    """Return, per row, the columns of the row's k smallest values (in no order).

    Two steps, cheaper than a partition of every whole row: the minimum of
    each chunk of :data:`_CHUNK` columns, then the k chunks with the smallest
    minima, whose columns hold the k smallest values (a chunk holding one of
    them has a minimum at most the k-th value, and at most k chunks do), then
    a partition of those columns only.
    """
    rows, n = key.shape
    whole = n // _CHUNK
    if whole <= k + 1:
        return np.argpartition(key, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (rows, 1))
    minima = key[:, :whole * _CHUNK].reshape(rows, whole, _CHUNK).min(axis=2)
    if n > whole * _CHUNK:
        minima = np.column_stack([minima, key[:, whole * _CHUNK:].min(axis=1)])
    chunks = np.argpartition(minima, k - 1, axis=1)[:, :k]
    cols = (chunks[:, :, None] * _CHUNK + np.arange(_CHUNK)).reshape(rows, -1)
    outside = cols >= n  # the short last chunk's missing columns
    values = np.take_along_axis(key, np.minimum(cols, n - 1), axis=1)
    values[outside] = np.inf
    # An outside column is never chosen while k real ones remain (k < n): an inf ties at worst.
    best = np.argpartition(values, k - 1, axis=1)[:, :k]
    return np.minimum(np.take_along_axis(cols, best, axis=1), n - 1)


def _distances(x: np.ndarray, start: int, stop: int, cols: np.ndarray, metric: str,
               sq_norms: np.ndarray | None) -> np.ndarray:
    """Return the distances of ``exact_knn`` (float64) from rows start..stop-1 to their ``cols``."""
    q = x[start:stop]
    dot = np.einsum("ij,ikj->ik", q, x[cols]).astype(np.float64)
    if metric == "cosine":
        return 1.0 - dot
    own = np.einsum("ij,ij->i", q, q).astype(np.float64)
    return np.sqrt(np.maximum(sq_norms[cols].astype(np.float64) - 2.0 * dot + own[:, None], 0.0))


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def _paired_p(stats: Any, a: np.ndarray, b: np.ndarray) -> float:
    diff = a - b
    if np.allclose(diff, 0.0):
        return 1.0
    if np.allclose(diff, diff.mean(), rtol=0.0, atol=1e-12):
        # Every query beats random by the same amount (e.g. perfect retrieval against the exact
        # random expectation): no spread, the t statistic is infinite and its p-value 0.
        return 0.0
    return float(stats.ttest_rel(a, b).pvalue)


def _bootstrap_cis(columns: np.ndarray, seed: int, replicates: int = 2000) -> list[tuple[float, float]]:
    """Return the 95% percentile bootstrap interval of the mean over queries of each column.

    The columns share their resampled queries (one draw of the replicates;
    the same seed gives each column the interval it would get alone).
    """
    from medviewer.stats.bootstrap import bootstrap_sums

    means = bootstrap_sums(columns, replicates, seed) / len(columns)
    bounds = np.percentile(means, [2.5, 97.5], axis=0)
    return [(float(lo), float(hi)) for lo, hi in bounds.T]

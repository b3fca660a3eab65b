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
from medviewer.retrieval.metrics import expected_random_scores, score_query
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
RANDOM_DRAWS = 200
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
                  *, task: str, k: int = 5, embedder: str = "", split: str = "test", seed: int = 0,
                  random_draws: int = RANDOM_DRAWS) -> RetrievalEvaluation:
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
    patients = np.array([cases_by_id[i].patient_ref for i in pool.case_ids])
    positive = np.array(pool.positive)
    rng = np.random.default_rng(seed)
    rows = []
    for q in range(len(pool.case_ids)):
        candidates = np.flatnonzero(patients != patients[q])  # drops the query and its patient
        relevant_pool = int((positive[candidates] == positive[q]).sum())
        _, ranked = ann.exact_knn(x, x[q], k, metric, allowed=candidates)
        relevance = (positive[ranked] == positive[q]).astype(int)
        s = score_query(relevance, k, relevant_pool)
        r = expected_random_scores(len(candidates), relevant_pool, k, random_draws, rng)
        rows.append({"case": pool.case_ids[q], "positive": bool(positive[q]), "candidates": len(candidates),
                     "relevant_candidates": relevant_pool, "precision": s.precision,
                     "ap": s.average_precision, "ndcg": s.ndcg, "random_precision": r.precision,
                     "random_ap": r.average_precision, "random_ndcg": r.ndcg,
                     "results": [int(pool.case_ids[i]) for i in ranked]})
    ap = np.array([r["ap"] for r in rows])
    nd = np.array([r["ndcg"] for r in rows])
    rap = np.array([r["random_ap"] for r in rows])
    rnd = np.array([r["random_ndcg"] for r in rows])
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
        map_ci95=_bootstrap_ci(ap, seed), ndcg_ci95=_bootstrap_ci(nd, seed),
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


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def _paired_p(stats: Any, a: np.ndarray, b: np.ndarray) -> float:
    if np.allclose(a - b, 0.0):
        return 1.0
    return float(stats.ttest_rel(a, b).pvalue)


def _bootstrap_ci(values: np.ndarray, seed: int, replicates: int = 2000) -> tuple[float, float]:
    """Return the 95% percentile bootstrap interval of the mean over queries."""
    from medviewer.stats.bootstrap import bootstrap_sums

    sums = bootstrap_sums(values.reshape(-1, 1), replicates, seed)[:, 0] / len(values)
    lo, hi = np.percentile(sums, [2.5, 97.5])
    return float(lo), float(hi)

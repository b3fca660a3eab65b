"""Ranking metrics against hand computations and scikit-learn; the patient split against models/; the protocol."""

from __future__ import annotations

import numpy as np
import pytest

from medviewer.retrieval.catalog import CaseInfo
from medviewer.retrieval.evaluate import evaluate_pool, task_labels, task_pool
from medviewer.retrieval import ann
from medviewer.retrieval.metrics import (
    average_precision_at_k,
    expected_random_scores,
    ndcg_at_k,
    precision_at_k,
    score_query,
    score_rankings,
)
from medviewer.retrieval.split import patient_split
from medviewer.retrieval.errors import QueryError, UnknownTaskError


def test_average_precision_matches_hand_computation():
    # Relevant at ranks 1 and 3: precisions 1/1 and 2/3, mean 5/6.
    assert average_precision_at_k([1, 0, 1, 0, 0], 5) == pytest.approx(5 / 6)
    # Relevant at ranks 2, 3, 5: (1/2 + 2/3 + 3/5) / 3.
    assert average_precision_at_k([0, 1, 1, 0, 1], 5) == pytest.approx((1 / 2 + 2 / 3 + 3 / 5) / 3)
    # Only the top k count: the relevant result at rank 4 is beyond k = 3.
    assert average_precision_at_k([0, 0, 0, 1], 3) == 0.0
    assert average_precision_at_k([0, 0, 1, 1], 3) == pytest.approx(1 / 3)
    assert precision_at_k([1, 0, 1, 0, 0], 5) == pytest.approx(0.4)
    # Fewer results than k: the missing ones count as not relevant.
    assert precision_at_k([1, 1], 5) == pytest.approx(0.4)


def test_metrics_refuse_non_binary_relevance_and_bad_k():
    with pytest.raises(ValueError):
        average_precision_at_k([2, 0, 1], 3)
    with pytest.raises(ValueError):
        precision_at_k([1, 0], 0)
    with pytest.raises(ValueError):
        ndcg_at_k([1, 1, 0], 3, n_relevant=1)  # fewer relevant in the pool than retrieved


@pytest.mark.parametrize("seed", range(6))
def test_ndcg_matches_sklearn_ndcg_score(seed):
    from sklearn.metrics import ndcg_score

    rng = np.random.default_rng(seed)
    n = int(rng.integers(6, 40))
    y_true = (rng.random(n) < rng.uniform(0.1, 0.7)).astype(int)
    y_true[0] = 1  # at least one relevant candidate
    scores = rng.random(n)  # continuous: no ties, so the ranking is unambiguous
    ranked = y_true[np.argsort(-scores)]
    for k in (1, 3, 5, 10):
        ours = ndcg_at_k(ranked, k, n_relevant=int(y_true.sum()))
        assert ours == pytest.approx(ndcg_score([y_true], [scores], k=k), abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_average_precision_over_the_whole_ranking_matches_sklearn(seed):
    # With k = pool size every relevant item is retrieved, and AP@k is the
    # classic average precision that scikit-learn computes.
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(100 + seed)
    n = 25
    y_true = (rng.random(n) < 0.4).astype(int)
    y_true[:2] = [1, 0]
    scores = rng.random(n)
    ranked = y_true[np.argsort(-scores)]
    assert average_precision_at_k(ranked, n) == pytest.approx(average_precision_score(y_true, scores))


def test_ndcg_is_zero_without_relevant_candidates_and_one_for_a_perfect_ranking():
    assert ndcg_at_k([0, 0, 0], 3, n_relevant=0) == 0.0
    assert ndcg_at_k([1, 1, 0, 0], 5, n_relevant=2) == pytest.approx(1.0)
    # Two relevant in the pool but only one found at rank 1: DCG 1, IDCG 1 + 1/log2(3).
    assert ndcg_at_k([1, 0, 0], 3, n_relevant=2) == pytest.approx(1 / (1 + 1 / np.log2(3)))


def test_random_retrieval_expectation():
    # Precision@k of a random ranking has expectation R/N.
    precision, ap, ndcg = expected_random_scores(20, 5, 5)
    assert precision == pytest.approx(5 / 20)
    # Every candidate relevant: every ranking is perfect (P@k counts missing results as 0).
    assert [float(v) for v in expected_random_scores(7, 7, 5)] == pytest.approx([1.0, 1.0, 1.0])
    assert [float(v) for v in expected_random_scores(3, 3, 5)] == pytest.approx([0.6, 1.0, 1.0])
    # Nothing relevant, or an empty pool: zero.
    assert [float(v) for v in expected_random_scores(9, 0, 5)] == [0.0, 0.0, 0.0]
    assert [float(v) for v in expected_random_scores(0, 0, 5)] == [0.0, 0.0, 0.0]
    # One of two candidates relevant, k = 1: a coin toss for every metric.
    assert [float(v) for v in expected_random_scores(2, 1, 1)] == pytest.approx([0.5, 0.5, 0.5])
    # k = 2, N = 3, R = 1: ranks 1, 2, 3 each with probability 1/3; AP@2 = 1, 1/2, 0.
    assert float(expected_random_scores(3, 1, 2)[1]) == pytest.approx((1 + 0.5) / 3)
    with pytest.raises(ValueError):
        expected_random_scores(3, 4, 5)


@pytest.mark.parametrize("n, r, k", [(12, 4, 5), (20, 5, 5), (6, 1, 1), (3, 2, 5), (8, 6, 5), (40, 3, 10),
                                     (5, 4, 5)])
def test_closed_form_random_expectation_matches_a_large_monte_carlo(n, r, k):
    # 200,000 seeded random orderings scored with the scalar formulas' vectorised twin; the
    # Monte Carlo standard error of a mean of values in [0, 1] is below 0.0012, so 0.005 is > 4 SE.
    pool = np.zeros(n)
    pool[:r] = 1
    shuffles = np.random.default_rng(n * 100 + r).permuted(np.tile(pool, (200_000, 1)), axis=1)[:, :k]
    sampled = score_rankings(shuffles, k, np.full(len(shuffles), r))
    exact = expected_random_scores(n, r, k)
    for got, mc in zip(exact, sampled):
        assert float(got) == pytest.approx(float(mc.mean()), abs=0.005)


def test_closed_form_is_vectorised_over_queries():
    n = np.array([12, 20, 3, 0, 40])
    r = np.array([4, 5, 2, 0, 40])
    together = expected_random_scores(n, r, 5)
    for q in range(len(n)):
        alone = expected_random_scores(int(n[q]), int(r[q]), 5)
        assert [float(t[q]) for t in together] == pytest.approx([float(a) for a in alone])


def test_score_rankings_equals_the_scalar_metrics_row_by_row():
    rng = np.random.default_rng(4)
    rel = (rng.random((300, 5)) < 0.4).astype(float)
    rel[:3] = 0  # no hit at all
    n_relevant = rel.sum(1).astype(int) + rng.integers(0, 4, 300)
    n_relevant[0] = 0
    precision, ap, ndcg = score_rankings(rel, 5, n_relevant)
    for q in range(len(rel)):
        s = score_query(rel[q], 5, int(n_relevant[q]))
        assert (precision[q], ap[q], ndcg[q]) == pytest.approx((s.precision, s.average_precision, s.ndcg))


def test_patient_split_is_the_training_recipes_split():
    data = pytest.importorskip("models.data")
    rng = np.random.default_rng(3)
    patients = [f"{int(p)}" for p in rng.integers(0, 150, 600)]
    records = [data.Record(path=f"img{i}.png", patient_id=p) for i, p in enumerate(patients)]
    for seed in (0, 1, 7):
        train, val, test = data.split_by_patient(records, (0.6, 0.3, 0.1), seed)
        ours = patient_split(patients, (0.6, 0.3, 0.1), seed)
        for name, part in (("train", train), ("val", val), ("test", test)):
            assert {r.patient_id for r in part} == {p for p, s in ours.items() if s == name}


def _case(i: int, patient: str, labels: tuple[str, ...]) -> CaseInfo:
    return CaseInfo(i, f"/x/{i}.png", f"/x/{i}.png", "", 0, 1, 0.0, patient, int(patient[1:]), f"st{i}", "",
                    "DX", "", labels)


def test_task_pool_balances_and_uses_the_papers_opacity_definition():
    cases = ([_case(i, f"P{i}", ("Effusion",)) for i in range(0, 10)]
             + [_case(i, f"P{i}", ("Pneumonia", "Cardiomegaly")) for i in range(10, 14)]
             + [_case(i, f"P{i}", ("No Finding",)) for i in range(14, 20)]
             + [_case(i, f"P{i}", ("Nodule",)) for i in range(20, 25)])
    pool = task_pool(cases, "Opacity", split="all")
    assert (pool.available_positives, pool.available_negatives) == (14, 6)
    assert sum(pool.positive) == 6 and len(pool.case_ids) == 12  # undersampled to balance
    chosen = {c.id: c for c in cases if c.id in pool.case_ids}
    assert not any("Nodule" in c.labels for c in chosen.values())  # neither positive nor "No Finding"
    # The paper's eight findings, then the literal labels of tables that name Opacity itself.
    assert task_labels("Opacity")[0] == "Atelectasis" and len(task_labels("Opacity")) == 10
    assert task_labels("Opacity")[-2:] == ("Opacity", "Lung Opacity")
    with pytest.raises(UnknownTaskError):
        task_labels("No Finding")


def test_protocol_scores_a_perfect_embedding_as_perfect_and_excludes_the_patient():
    # Two tight clusters by class; patient P0 has two positives that are each other's nearest.
    cases = [_case(0, "P0", ("Cardiomegaly",)), _case(1, "P0", ("Cardiomegaly",))]
    cases += [_case(i, f"P{i}", ("Cardiomegaly",)) for i in range(2, 8)]
    cases += [_case(i, f"P{i}", ("No Finding",)) for i in range(8, 16)]
    pool = task_pool(cases, "Cardiomegaly", split="all")
    rng = np.random.default_rng(0)
    vectors = np.array([[1.0, 0.0] if p else [0.0, 1.0] for p in pool.positive]) + rng.normal(0, 0.01, (16, 2))
    result = evaluate_pool({c.id: c for c in cases}, pool, vectors, "cosine", task="Cardiomegaly", k=5,
                           split="all")
    assert result.queries == 16 and result.positives == result.negatives == 8
    assert result.map_at_k == pytest.approx(1.0) and result.ndcg_at_k == pytest.approx(1.0)
    assert result.precision_at_k == pytest.approx(1.0)
    assert result.random_map_at_k < 0.8 and result.p_value < 1e-6
    q0 = next(r for r in result.per_query if r["case"] == 0)
    assert 1 not in q0["results"] and 0 not in q0["results"]  # own patient and itself excluded
    assert q0["candidates"] == 14


def test_protocol_on_uninformative_vectors_is_near_random():
    cases = [_case(i, f"P{i}", ("Emphysema",) if i % 2 else ("No Finding",)) for i in range(60)]
    pool = task_pool(cases, "Emphysema", split="all")
    vectors = np.random.default_rng(1).normal(size=(60, 16))
    result = evaluate_pool({c.id: c for c in cases}, pool, vectors, "l2", task="Emphysema", k=5, split="all")
    assert abs(result.precision_at_k - result.random_precision_at_k) < 0.12
    assert result.map_ci95[0] <= result.map_at_k <= result.map_ci95[1]


def test_protocol_refuses_a_split_without_both_classes():
    cases = [_case(i, f"P{i}", ("No Finding",)) for i in range(10)]
    pool = task_pool(cases, "Cardiomegaly", split="all")
    with pytest.raises(QueryError, match="too few"):
        evaluate_pool({c.id: c for c in cases}, pool, np.zeros((0, 2)), "l2", task="Cardiomegaly")


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_evaluation_equals_the_query_by_query_protocol(metric):
    # The vectorised evaluation against the protocol written out one query at a time with
    # exact_knn (the search path), the scalar metrics and the closed-form random expectation.
    rng = np.random.default_rng(11)
    n = 700  # more than one block of queries and many chunks of candidates
    patients = rng.integers(0, 260, n)
    patients[:6] = 999  # a patient with six images
    cases = [_case(i, f"P{int(patients[i])}", ("Emphysema",) if rng.random() < 0.5 else ("No Finding",))
             for i in range(n)]
    pool = task_pool(cases, "Emphysema", split="all")
    positive = np.array(pool.positive)
    vectors = rng.normal(size=(len(pool.case_ids), 24)) + 0.4 * positive[:, None]
    by_id = {c.id: c for c in cases}
    result = evaluate_pool(by_id, pool, vectors, metric, task="Emphysema", k=5, split="all")
    x = ann.prepare_vectors(vectors, metric)
    refs = np.array([by_id[i].patient_ref for i in pool.case_ids])
    for q, row in enumerate(result.per_query):
        candidates = np.flatnonzero(refs != refs[q])
        _, ranked = ann.exact_knn(x, x[q], 5, metric, allowed=candidates)
        relevant_pool = int((positive[candidates] == positive[q]).sum())
        s = score_query((positive[ranked] == positive[q]).astype(int), 5, relevant_pool)
        r = expected_random_scores(len(candidates), relevant_pool, 5)
        assert row["results"] == [pool.case_ids[i] for i in ranked]
        assert (row["candidates"], row["relevant_candidates"]) == (len(candidates), relevant_pool)
        assert (row["precision"], row["ap"], row["ndcg"]) == pytest.approx(
            (s.precision, s.average_precision, s.ndcg))
        assert (row["random_precision"], row["random_ap"], row["random_ndcg"]) == pytest.approx(
            tuple(float(v) for v in r))


def test_evaluation_of_a_query_with_fewer_candidates_than_k():
    # Six cases, one patient holding three: its queries have three candidates for k = 5.
    cases = [_case(0, "P0", ("Emphysema",)), _case(1, "P0", ("No Finding",)), _case(2, "P0", ("Emphysema",)),
             _case(3, "P3", ("No Finding",)), _case(4, "P4", ("Emphysema",)), _case(5, "P5", ("No Finding",))]
    pool = task_pool(cases, "Emphysema", split="all")
    vectors = np.random.default_rng(2).normal(size=(6, 4))
    result = evaluate_pool({c.id: c for c in cases}, pool, vectors, "l2", task="Emphysema", k=5, split="all")
    q0 = result.per_query[0]
    assert q0["candidates"] == 3 and sorted(q0["results"]) == [3, 4, 5]
    assert q0["precision"] == pytest.approx(1 / 5)  # one relevant among 3 results, k = 5
    assert result.per_query[3]["candidates"] == 5 and len(result.per_query[3]["results"]) == 5

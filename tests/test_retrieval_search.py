"""Searching: neighbours, filters applied before ranking, farthest, regions, vote, map, marks, a real ONNX bundle."""

from __future__ import annotations

import numpy as np
import pytest

from medviewer.retrieval import ann
from medviewer.retrieval.errors import ProjectionUnavailableError, QueryError
from medviewer.retrieval.filters import QueryContext, SearchFilter, candidate_mask
from medviewer.retrieval.search import Region
from medviewer.retrieval.vote import label_vote
from medviewer.services import retrieval as svc
from medviewer.store import Library

from test_retrieval_support import FLAT_SPECS, CountingEmbedder, RowEmbedder, Spec, case_id, make_library


@pytest.fixture
def searcher_env(tmp_path):
    library = make_library(tmp_path, FLAT_SPECS)
    embedder = CountingEmbedder()
    svc.build_index(library, embedder)
    searcher = svc.open_searcher(library, embedder)
    yield library, searcher, tmp_path
    library.close()


def _names(hits):
    return [h.location.rsplit("/", 1)[1] for h in hits]


def test_nearest_are_ordered_by_distance_and_exclude_the_query_patient(searcher_env):
    library, searcher, _ = searcher_env
    # c.png (30): its nearest by value are b (20, patient P1), d (42), e (50), a (8, P1), f (60).
    result = searcher.search_case(case_id(library, "c.png"), k=5)
    assert _names(result.nearest) == ["b.png", "d.png", "e.png", "a.png", "f.png"]
    distances = [h.distance for h in result.nearest]
    assert distances == sorted(distances) and distances[0] == pytest.approx(4 * 10 / 255, rel=1e-5)
    # a.png (P1): b.png is the same patient and must not come back, yet 5 results still do.
    result = searcher.search_case(case_id(library, "a.png"), k=5)
    assert "b.png" not in _names(result.nearest) and "a.png" not in _names(result.nearest)
    assert _names(result.nearest) == ["c.png", "d.png", "e.png", "f.png", "g.png"]
    assert result.candidates == 8 and "other patients only" in result.filters
    # Switching the exclusion off brings the same-patient case back first.
    result = searcher.search_case(case_id(library, "a.png"), k=2,
                                  filters=SearchFilter(exclude_same_patient=False))
    assert _names(result.nearest) == ["b.png", "c.png"]


def test_label_filter_selects_before_ranking_so_k_results_still_come_back(searcher_env):
    library, searcher, _ = searcher_env
    # d.png (42) is surrounded by cases without the label; the Cardiomegaly cases are
    # a (8), b (20), e (50), h (200), i (220).  Post-filtering a top-5 would keep only 3.
    result = searcher.search_case(case_id(library, "d.png"), k=5, filters=SearchFilter(labels=("Cardiomegaly",)))
    assert _names(result.nearest) == ["e.png", "b.png", "a.png", "h.png", "i.png"]
    assert all("Cardiomegaly" in h.labels for h in result.nearest)
    assert result.vote.text == "5 of 5 similar cases: Cardiomegaly"
    # Several labels mean "any of them".
    either = searcher.search_case(case_id(library, "d.png"), k=2, filters=SearchFilter(labels=("Emphysema", "Effusion")))
    assert _names(either.nearest) == ["g.png", "j.png"]


def test_filters_never_return_excluded_rows_on_an_hnsw_index(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    specs = [Spec(f"r{i:03d}.png", row=tuple(int(v) for v in rng.integers(28, 228, 8)), patient=f"P{i % 40}",
                  labels="Cardiomegaly" if i % 5 == 0 else "No Finding") for i in range(200)]
    library = make_library(tmp_path, specs)
    embedder = RowEmbedder(dim=8)
    svc.build_index(library, embedder, kind="hnsw", params=ann.AnnParams(hnsw_m=8, ef_construction=40))
    searcher = svc.open_searcher(library, embedder)
    monkeypatch.setattr(ann, "EXACT_SUBSET_MAX", 0)  # take the FAISS selector path
    query = case_id(library, "r003.png")
    result = searcher.search_case(query, k=10, filters=SearchFilter(labels=("Cardiomegaly",)))
    assert len(result.nearest) == 10 and all("Cardiomegaly" in h.labels for h in result.nearest)
    assert all(h.patient_id != "P3" for h in result.nearest)
    # Same answer as brute force over the allowed rows.
    mask = searcher.candidates(SearchFilter(labels=("Cardiomegaly",)), QueryContext.of_case(searcher.catalog.get(query)))
    _, rows = ann.exact_knn(searcher.index.vectors, searcher.index.vector_of(query), 10, "cosine", mask)
    assert len(set(searcher.index.ids[rows]) & {h.case_id for h in result.nearest}) >= 9
    library.close()


def test_farthest_are_the_largest_distances_first(searcher_env):
    library, searcher, _ = searcher_env
    result = searcher.search_case(case_id(library, "b.png"), k=3, farthest=3)
    assert _names(result.farthest) == ["j.png", "i.png", "h.png"]
    assert [h.rank for h in result.farthest] == [1, 2, 3]
    assert result.farthest[0].distance > result.farthest[2].distance > result.nearest[-1].distance
    # Farthest honour the filters as well.
    result = searcher.search_case(case_id(library, "b.png"), k=0, farthest=2,
                                  filters=SearchFilter(labels=("No Finding",)))
    assert _names(result.farthest) == ["f.png", "d.png"] and result.nearest == []


def test_image_and_region_queries(searcher_env):
    library, searcher, _ = searcher_env
    image = np.full((40, 40), 20, np.uint8)
    image[:20, :20] = 215  # a bright corner
    whole = searcher.search_image(image, k=1)
    corner = searcher.search_image(image, region=Region(0, 0, 20, 20), k=2)
    assert _names(whole.nearest) == ["g.png"]  # mean brightness ~64 -> 60/70
    assert _names(corner.nearest) == ["i.png", "h.png"] and corner.region == Region(0, 0, 20, 20)
    # An outside image excludes nothing; with a context, the patient of that case is excluded.
    ctx = QueryContext.of_case(searcher.catalog.get(case_id(library, "i.png")))
    assert "i.png" not in _names(searcher.search_image(image, region=Region(0, 0, 20, 20), k=2,
                                                       context=ctx).nearest)
    with pytest.raises(QueryError, match="region"):
        searcher.search_image(image, region=Region(38, 38, 10, 10))


def test_search_file_treats_a_library_file_as_its_case(searcher_env):
    library, searcher, root = searcher_env
    result = svc.search_file(searcher, root / "images" / "a.png", k=3)
    assert result.query_case == case_id(library, "a.png") and "b.png" not in _names(result.nearest)


def test_candidate_mask_date_modality_and_study_filters():
    from medviewer.retrieval.catalog import CaseInfo

    def case(i, date, modality, study, patient_ref):
        return CaseInfo(i, f"/{i}", f"/{i}", "", 0, 1, 0.0, f"P{patient_ref}", patient_ref, study, date,
                        modality, "CHEST" if i % 2 else "", ("X",))

    cases = [case(1, "20200105", "DX", "s1", 1), case(2, "20210101", "CR", "s1", 1),
             case(3, "", "DX", "s2", 2), case(4, "20221231", "dx", "s3", 3), None]
    ctx = QueryContext(case_id=1, patient_ref=9, patient_id="", study_uid="s1")
    m = candidate_mask(cases, SearchFilter(date_from="2020-06-01", date_to="20221231"), ctx)
    assert m.tolist() == [False, True, False, True, False]  # no date: dropped; None: never
    m = candidate_mask(cases, SearchFilter(modalities=("DX",), exclude_same_study=True), ctx)
    assert m.tolist() == [False, False, True, True, False]
    m = candidate_mask(cases, SearchFilter(body_parts=("chest",), case_ids=(1, 3, 4)), QueryContext())
    assert m.tolist() == [True, False, True, False, False]


def test_label_vote_counts_ties_and_unlabelled_neighbours():
    vote = label_vote([("Cardiomegaly",), ("Cardiomegaly", "Effusion"), ("No Finding",), ("Cardiomegaly",),
                       ("Effusion",)])
    assert (vote.label, vote.count, vote.total) == ("Cardiomegaly", 3, 5)
    assert vote.text == "3 of 5 similar cases: Cardiomegaly"
    tie = label_vote([("A",), ("B",), ()])
    assert tie.tied == ("A", "B") and tie.text == "1 of 3 similar cases: A / B"
    assert label_vote([(), ()]).text == "none of the 2 similar cases is labelled"


def test_embedding_map_places_every_case_and_the_query(searcher_env):
    library, searcher, _ = searcher_env
    query = case_id(library, "c.png")
    mapped = searcher.embedding_map("pca", query_case=query)
    assert mapped.xy.shape == (10, 2) and len(mapped.primary) == 10
    # Flat images lie on a line: PCA's first axis orders them by brightness, and explains it all.
    order = "".join(searcher.catalog.get(int(c)).location.rsplit("/", 1)[1][0]
                    for c in mapped.case_ids[np.argsort(mapped.xy[:, 0])])
    assert order in ("abcdefghij", "jihgfedcba")
    assert mapped.explained_variance[0] > 0.99
    row = list(mapped.case_ids).index(query)
    assert np.allclose(mapped.query_xy, mapped.xy[row], atol=1e-4)
    assert mapped.primary[list(mapped.case_ids).index(case_id(library, "a.png"))] == "Cardiomegaly"
    tsne = searcher.embedding_map("tsne", seed=0)
    assert tsne.xy.shape == (10, 2) and np.isfinite(tsne.xy).all()


def test_umap_without_the_package_says_what_to_install(searcher_env, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_umap(name, *args, **kwargs):
        if name == "umap":
            raise ImportError("No module named 'umap'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_umap)
    _, searcher, _ = searcher_env
    with pytest.raises(ProjectionUnavailableError, match="umap-learn"):
        searcher.embedding_map("umap")


def test_relevance_marks_are_stored_replaced_and_survive_reopening_and_case_removal(searcher_env):
    library, searcher, root = searcher_env
    result = searcher.search_case(case_id(library, "c.png"), k=3)
    svc.mark_relevance(library, result, result.nearest[0], True, reader="r1")
    svc.mark_relevance(library, result, result.nearest[1], False, reader="r1")
    again = svc.mark_relevance(library, result, result.nearest[1], True, reader="r1")  # changed mind
    assert again.relevant and again.rank == 2
    path = library.path
    library.close()
    with Library(path) as reopened:
        marks = svc.relevance_marks(reopened, model_sha256=result.model_sha256)
        assert [(m.result_case, m.relevant) for m in marks] == [(result.nearest[0].case_id, True),
                                                                (result.nearest[1].case_id, True)]
        assert marks[0].query_location.endswith("c.png") and marks[0].reader == "r1"
        with reopened.transaction():
            reopened.remove_locations([marks[0].result_location])
        assert len(svc.relevance_marks(reopened)) == 2  # a reader's answers are never cascaded away
    # An outside image needs its file named.
    outside = searcher.search_image(np.full((8, 8), 30, np.uint8), k=1)
    with Library(path) as lib, pytest.raises(QueryError, match="query_location"):
        svc.mark_relevance(lib, outside, outside.nearest[0], True)


def test_real_onnx_bundle_index_is_bound_to_its_fingerprint(tmp_path):
    pytest.importorskip("onnx")
    from medviewer.inference import load_bundle
    from medviewer.inference.testing import write_toy_bundle
    from medviewer.retrieval.errors import IndexMissingError

    bundle = load_bundle(write_toy_bundle(tmp_path / "toy", input_size=16, resize=16, patch_size=8,
                                          embed_dim=8, seed=0))
    other = load_bundle(write_toy_bundle(tmp_path / "toy2", input_size=16, resize=16, patch_size=8,
                                         embed_dim=8, seed=1))
    library = make_library(tmp_path / "lib", FLAT_SPECS)
    report = svc.build_index(library, bundle)
    # Keyed on the weights and the preprocessing, not the ONNX file alone.
    assert report.folder.endswith(bundle.fingerprint()) and report.metric == "cosine" and report.dim == 8
    searcher = svc.open_searcher(library, bundle)
    header = searcher.describe()
    assert header["model_sha256"] == bundle.fingerprint() and "CPU" in header["provider"] and header["count"] == 10
    result = searcher.search_case(case_id(library, "e.png"), k=5, farthest=2)
    assert len(result.nearest) == 5 and result.model_sha256 == bundle.fingerprint()
    assert all(0.0 <= h.distance <= 2.0 and h.similarity == pytest.approx(1 - h.distance) for h in result.nearest)
    # Searching with the image of e.png embeds it with the model: same vector as stored, so the
    # same neighbours (e.png's patient is excluded through the context).
    image = svc.case_image(searcher.catalog.get(case_id(library, "e.png")))
    by_image = searcher.search_image(image, k=5, context=QueryContext.of_case(searcher.catalog.get(case_id(library, "e.png"))))
    assert [h.case_id for h in by_image.nearest] == [h.case_id for h in result.nearest]
    # Another model's index is another folder: nothing built for it yet.
    assert svc.index_status(library, other).state == "missing"
    with pytest.raises(IndexMissingError):
        svc.open_searcher(library, other)
    library.close()

"""Phrase-to-image search with an image-text bundle, alone or fused with BM25.

The phrase is encoded by the bundle's text tower and searched in the
bundle's FAISS index of the library (the image tower's embeddings), exactly
like an image query; "fused" merges that ranking with BM25 over the reports
by reciprocal rank fusion.  A case without a report can still be found by the
learned ranking; a case outside the index only by BM25 (said in a warning).
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np

from medviewer.reports.learned import TextEncoder, fuse_rankings, load_text_encoder, rank_sentences
from medviewer.reports.models import TextHit
from medviewer.reports.negation import split_sentences
from medviewer.reports.search import parse_query, search_reports
from medviewer.reports.sections import searchable_text
from medviewer.reports.store import ReportStore
from medviewer.store.library import Library

# How many of each ranking enter the fusion (per requested result).
_POOL = 5
# Reciprocal rank fusion constant (Cormack et al. 2009 use 60).
RRF_K = 60


@lru_cache(maxsize=4)
def _encoder(path: str, provider: str) -> TextEncoder:
    return load_text_encoder(path, provider="cpu" if provider == "auto" else provider)


def learned_text_search(library: Library, store: ReportStore, phrase: str, *, k: int, model: str,
                        mode: str, provider: str = "auto", allow_stale: bool = False
                        ) -> tuple[list[TextHit], list[str]]:
    """Return (hits, warnings) for ``phrase`` by the learned model, or fused with BM25."""
    from medviewer.services.retrieval import open_searcher

    parse_query(phrase)  # the same refusal of empty phrases as BM25
    encoder = _encoder(str(model), provider)
    searcher = open_searcher(library, model, allow_stale=allow_stale, provider=provider)
    warnings = list(searcher.warnings)
    vector = encoder.encode([phrase])[0]
    pool = max(k, 1) * (_POOL if mode == "fused" else 1)
    result = searcher.search_vector(vector, k=pool)
    learned = [(h.case_id, float(h.similarity if h.similarity is not None else -h.distance), h)
               for h in result.nearest]
    by_case = {cid: (rank, score, h) for rank, (cid, score, h) in enumerate(learned, start=1)}
    if mode == "learned":
        hits = [TextHit(rank, cid, 0, score, h.location, tuple(h.labels), "", {"learned": score},
                        {"learned": {"rank": rank, "score": score}})
                for rank, (cid, score, h) in enumerate(learned[:k], start=1)]
        return _with_report_ids(store, hits), warnings
    bm25 = search_reports(store, phrase, k=pool)
    bm25_by_case = {h.case_id: h for h in bm25}
    fused = fuse_rankings({"bm25": [h.case_id for h in bm25],
                           "learned": [c for c, _, _ in learned]}, k=RRF_K)
    hits = []
    for case_id, score, parts in fused[:k]:
        text_hit, image_hit = bm25_by_case.get(case_id), by_case.get(case_id)
        location = text_hit.location if text_hit else image_hit[2].location
        labels = text_hit.labels if text_hit else tuple(image_hit[2].labels)
        rankers = {"bm25": dict(text_hit.rankers["bm25"]) if text_hit else
                   {"rank": None, "score": None, "words": "none"},
                   "learned": {"rank": image_hit[0], "score": image_hit[1]} if image_hit else
                   {"rank": None, "score": _cosine(searcher, case_id, vector)}}
        hits.append(TextHit(len(hits) + 1, case_id, text_hit.report_id if text_hit else 0, score,
                            location, labels, text_hit.snippet if text_hit else "", parts, rankers))
    not_indexed = [h.case_id for h in bm25 if searcher.index.vector_of(h.case_id) is None]
    if not_indexed:
        warnings.append(f"{len(not_indexed)} report matches are not in the model's index (ranked by "
                        "BM25 alone): update the index")
    return _with_report_ids(store, hits), warnings


def fusion_note(k: int) -> str:
    """Return how the fused list was made, in words (for the CLI and the panel)."""
    pool = max(k, 1) * _POOL
    return (f"reciprocal rank fusion (k = {RRF_K}, equal weights) of BM25's top {pool} and the "
            f"image-text model's top {pool}; each ranker's own rank and raw score are shown")


def _cosine(searcher, case_id: int, vector: np.ndarray) -> float | None:
    """Return the case's cosine to the phrase when it is indexed (it was outside the pool)."""
    stored = searcher.index.vector_of(case_id)
    if stored is None:
        return None
    a, b = np.asarray(stored, np.float64), np.asarray(vector, np.float64)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def _with_report_ids(store: ReportStore, hits: list[TextHit]) -> list[TextHit]:
    out = []
    for h in hits:
        if h.report_id:
            out.append(h)
            continue
        reports = store.reports_for_case(h.case_id)
        out.append(replace(h, report_id=reports[0].id if reports else 0))
    return out


def matching_sentences(library: Library, case_id: int, model: str, *, provider: str = "auto",
                       sentences: list[str] | None = None) -> list[tuple[str, float]]:
    """Return which sentences match a case's image, best first, with their cosine.

    ``sentences`` default to the case's own report (its sentences outside the
    indication).  The image vector is the stored index vector, or the case's
    image run through the bundle when it is not indexed.
    """
    from medviewer.reports.errors import ReportError
    from medviewer.services.retrieval import case_image, open_embedder
    from medviewer.retrieval.catalog import read_catalog

    encoder = _encoder(str(model), provider)
    if sentences is None:
        reports = store_reports(library, case_id)
        if not reports:
            raise ReportError(f"case {case_id} has no report to match", path=str(library.path),
                              hint="pass sentences, or import the case's report")
        sentences = split_sentences(searchable_text(reports[0].sections))
    case = read_catalog(library).get(int(case_id))
    if case is None:
        raise ReportError(f"case {case_id} is not in the library", path=str(library.path))
    vector = np.asarray(open_embedder(model, provider=provider).embed([case_image(case)]))[0]
    return rank_sentences(encoder, vector, sentences)


def store_reports(library: Library, case_id: int):
    """Return the case's reports (its own first)."""
    return ReportStore(library).reports_for_case(int(case_id))

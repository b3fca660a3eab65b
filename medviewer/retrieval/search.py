"""Searching a loaded index: by a library case, an image, or a rectangle of an image.

A :class:`Searcher` holds what one (library, model) search needs in memory:
the catalog snapshot, the loaded :class:`~medviewer.retrieval.index.CaseIndex`
and the embedder.  It holds no SQLite connection, so it can be made on a
worker thread and used from any worker thread; make a new one (or call
:meth:`Searcher.refresh_catalog`) after the library changes.

A case query reuses the case's stored vector (no model run); an image or a
region query runs the model once.  Filters select the candidates before
ranking (:mod:`medviewer.retrieval.filters`), so k results come back
whenever k cases pass them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medviewer.retrieval.catalog import Catalog
from medviewer.retrieval.embedders import Embedder
from medviewer.retrieval.errors import QueryError
from medviewer.retrieval.filters import CandidateTable, QueryContext, SearchFilter
from medviewer.retrieval.index import CaseIndex, ImageLoader, require_finite
from medviewer.retrieval.projection import Projection, project
from medviewer.retrieval.vote import LabelVote, label_vote
from medviewer.tasks import TaskState, ensure_state

DEFAULT_K = 5
#: Regions smaller than this (pixels, either side) are refused: nothing to embed.
MIN_REGION = 4


@dataclass(frozen=True)
class Region:
    """A rectangle of the displayed image, in pixels: top-left corner and size."""

    x: int
    y: int
    width: int
    height: int

    def crop(self, image: np.ndarray) -> np.ndarray:
        """Return the part of ``image`` (rows, cols[, channels]) inside the rectangle, clipped to it.

        Raises
        ------
        QueryError
            The rectangle lies outside the image or is smaller than
            :data:`MIN_REGION` pixels once clipped.
        """
        rows, cols = image.shape[:2]
        x0, y0 = max(0, int(self.x)), max(0, int(self.y))
        x1, y1 = min(cols, int(self.x) + int(self.width)), min(rows, int(self.y) + int(self.height))
        if x1 - x0 < MIN_REGION or y1 - y0 < MIN_REGION:
            raise QueryError(f"the region {self.width}x{self.height} at ({self.x}, {self.y}) leaves less than "
                             f"{MIN_REGION}x{MIN_REGION} pixels of the {cols}x{rows} image",
                             hint="draw a larger rectangle inside the image")
        return image[y0:y1, x0:x1]

    def to_dict(self) -> dict[str, int]:
        """Return the rectangle as JSON-friendly data."""
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}


@dataclass(frozen=True)
class Hit:
    """One result.

    Attributes
    ----------
    rank : int
        1 = nearest (or, in ``farthest``, farthest).
    case_id : int
    location : str
        The image file.
    frame : int
    distance : float
        ``1 - cosine`` for the cosine metric, Euclidean distance for l2.
    similarity : float or None
        The cosine similarity (cosine metric only).
    labels : tuple of str
    patient_id, study_uid, study_date, modality : str
    """

    rank: int
    case_id: int
    location: str
    frame: int
    distance: float
    similarity: float | None
    labels: tuple[str, ...]
    patient_id: str
    study_uid: str
    study_date: str
    modality: str

    def to_dict(self) -> dict[str, Any]:
        """Return the hit as the CLI's JSON (``case``, ``path``, ``distance``, ``labels``, ...)."""
        return {"rank": self.rank, "case": self.case_id, "path": self.location, "frame": self.frame,
                "distance": round(float(self.distance), 6),
                "similarity": None if self.similarity is None else round(float(self.similarity), 6),
                "labels": list(self.labels), "patient_id": self.patient_id,
                "study_date": self.study_date, "modality": self.modality}


@dataclass
class SearchResult:
    """The answer to one query.

    Attributes
    ----------
    nearest, farthest : list of Hit
    vote : LabelVote
        Label vote of ``nearest``.
    query_case : int, optional
        The library case searched with (None for an outside image).
    region : Region, optional
    candidates : int
        Cases that passed the filters (and could be ranked).
    filters : list of str
        The active filters, in words.
    model_sha256, metric, kind : str
    timings : dict of str to float
        Seconds spent embedding the query and searching.
    warnings : list of str
        E.g. "the index is out of date: 3 new cases are not searchable".
    """

    nearest: list[Hit]
    farthest: list[Hit]
    vote: LabelVote
    query_case: int | None
    region: Region | None
    candidates: int
    filters: list[str]
    model_sha256: str
    metric: str
    kind: str
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the result as the CLI's JSON (``nearest`` and ``farthest`` lists first)."""
        return {"nearest": [h.to_dict() for h in self.nearest],
                "farthest": [h.to_dict() for h in self.farthest],
                "vote": self.vote.to_dict(), "query_case": self.query_case,
                "region": None if self.region is None else self.region.to_dict(),
                "candidates": self.candidates, "filters": self.filters,
                "model_sha256": self.model_sha256, "metric": self.metric, "kind": self.kind,
                "timings": self.timings, "warnings": self.warnings}


@dataclass
class EmbeddingMap:
    """A 2-D map of the library's embeddings, for the embedding-map widget.

    Attributes
    ----------
    case_ids : ndarray of int
        The cases drawn (all, or a seeded sample of large libraries).
    xy : ndarray, shape (N, 2)
    labels : list of tuple of str
        Each case's labels.
    primary : list of str
        One label per case to colour it by: of its labels, the one most
        frequent in the library ("" for unlabelled cases).
    query_xy : ndarray, shape (2,), optional
    method : str
    explained_variance : tuple of float
        PCA only.
    """

    case_ids: np.ndarray
    xy: np.ndarray
    labels: list[tuple[str, ...]]
    primary: list[str]
    method: str
    query_xy: np.ndarray | None = None
    explained_variance: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the map as JSON-friendly data."""
        return {"method": self.method, "explained_variance": list(self.explained_variance),
                "query": None if self.query_xy is None else [float(v) for v in self.query_xy],
                "points": [{"case": int(c), "x": float(p[0]), "y": float(p[1]), "label": lab}
                           for c, p, lab in zip(self.case_ids, self.xy, self.primary)]}


class Searcher:
    """Search one library with one model (see the module docstring).

    Parameters
    ----------
    catalog : Catalog
    index : CaseIndex
    embedder : Embedder
    load_image : callable
        Returns a case's display image (used only for cases without a stored vector).
    warnings : list of str, optional
        Caveats to attach to every result (e.g. a stale index opened on request).
    """

    def __init__(self, catalog: Catalog, index: CaseIndex, embedder: Embedder, load_image: ImageLoader,
                 warnings: list[str] | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.load_image = load_image
        self.warnings = list(warnings or [])
        self.refresh_catalog(catalog)

    def describe(self) -> dict[str, Any]:
        """Return what the panel header shows: model, provider, index kind, size, recall, warnings."""
        runner = getattr(self.embedder, "runner", None)
        m = self.index.manifest
        return {"model": self.embedder.name, "model_sha256": self.embedder.identity,
                "provider": runner.provider_report().message if runner is not None else "numpy (no model)",
                "kind": m.kind, "metric": m.metric, "count": m.count, "dim": m.dim,
                "recall_at_10": (m.recall or {}).get("recall"), "updated_at": m.updated_at,
                "warnings": list(self.warnings)}

    def refresh_catalog(self, catalog: Catalog) -> None:
        """Use a newer catalog snapshot (labels edited, cases removed)."""
        self.catalog = catalog
        self._row_cases = [catalog.get(int(i)) for i in self.index.ids]
        self._table = CandidateTable(self._row_cases)

    # -- queries -------------------------------------------------------------------------------
    def search_case(self, case_id: int, *, k: int = DEFAULT_K, farthest: int = 0,
                    filters: SearchFilter | None = None, region: Region | None = None,
                    state: TaskState | None = None) -> SearchResult:
        """Search with a library case (or a region of it).

        The case's stored vector is the query when it is indexed; otherwise
        (or for a region) its image is embedded.

        Raises
        ------
        QueryError
            The case is not in the library, or the region is empty.
        """
        case = self.catalog.get(case_id)
        if case is None:
            raise QueryError(f"case {case_id} is not in the library", path=self.catalog.library_path)
        started = time.perf_counter()
        vector = None if region is not None else self.index.vector_of(case.id)
        if vector is None:
            image = self.load_image(case)
            vector = self.embed_image(image if region is None else region.crop(image), state)
        embed_s = time.perf_counter() - started
        return self._run(vector, QueryContext.of_case(case), k, farthest, filters, region, embed_s)

    def search_image(self, image: np.ndarray, *, region: Region | None = None, k: int = DEFAULT_K,
                     farthest: int = 0, filters: SearchFilter | None = None,
                     context: QueryContext | None = None, state: TaskState | None = None) -> SearchResult:
        """Search with a display image (or a rectangle of it).

        Parameters
        ----------
        image : ndarray
            The image as displayed (uint8, or float in 0..1 / 0..255).
        region : Region, optional
            Crop to this rectangle first.
        context : QueryContext, optional
            Where the image comes from, for the own-patient and own-study
            exclusions (e.g. ``QueryContext.of_case(case)`` for a case on screen).
        """
        started = time.perf_counter()
        vector = self.embed_image(image if region is None else region.crop(image), state)
        embed_s = time.perf_counter() - started
        return self._run(vector, context or QueryContext(), k, farthest, filters, region, embed_s)

    def search_vector(self, vector: np.ndarray, *, k: int = DEFAULT_K, farthest: int = 0,
                      filters: SearchFilter | None = None, context: QueryContext | None = None) -> SearchResult:
        """Search with a ready query vector (benchmarks, evaluation)."""
        return self._run(vector, context or QueryContext(), k, farthest, filters, None, 0.0)

    def embed_image(self, image: np.ndarray, state: TaskState | None = None) -> np.ndarray:
        """Return the query vector of a display image."""
        vector = np.asarray(self.embedder.embed([image], state), np.float32)
        require_finite(vector, self.embedder)
        return vector[0]

    def candidates(self, filters: SearchFilter | None = None,
                   context: QueryContext | None = None) -> np.ndarray:
        """Return the pre-filter mask over the index rows."""
        return self._table.mask(filters or SearchFilter(), context)

    def _run(self, vector: np.ndarray, context: QueryContext, k: int, farthest: int,
             filters: SearchFilter | None, region: Region | None, embed_s: float) -> SearchResult:
        if k < 0 or farthest < 0:
            raise QueryError("k and farthest must not be negative")
        filters = filters or SearchFilter()
        started = time.perf_counter()
        mask = self.candidates(filters, context)
        n_allowed = int(mask.sum())
        warnings = list(self.warnings)
        if n_allowed == 0:
            warnings.append("no case passes the filters")
        # An all-True mask is passed as None: the unfiltered search path is the fastest.
        allowed = None if n_allowed == len(mask) else mask
        near = self.index.nearest(vector, k, allowed) if k and n_allowed else (np.zeros(0), np.zeros(0, int))
        far = self.index.farthest(vector, farthest, allowed) if farthest and n_allowed else (
            np.zeros(0), np.zeros(0, int))
        nearest, far_hits = self._hits(*near), self._hits(*far)
        search_s = time.perf_counter() - started
        return SearchResult(
            nearest=nearest, farthest=far_hits, vote=label_vote([h.labels for h in nearest]),
            query_case=context.case_id, region=region, candidates=n_allowed,
            filters=filters.describe(), model_sha256=self.embedder.identity, metric=self.index.metric,
            kind=self.index.kind, timings={"embed_s": round(embed_s, 6), "search_s": round(search_s, 6)},
            warnings=warnings)

    def _hits(self, distances: np.ndarray, case_ids: np.ndarray) -> list[Hit]:
        cosine = self.index.metric == "cosine"
        out = []
        for rank, (dist, case_id) in enumerate(zip(distances, case_ids), start=1):
            case = self.catalog.get(int(case_id))
            if case is None:  # cannot happen: removed cases are never candidates
                continue
            out.append(Hit(rank, case.id, case.location, case.frame, float(dist),
                           1.0 - float(dist) if cosine else None, case.labels, case.patient_id,
                           case.study_uid, case.study_date, case.modality))
        return out

    # -- map -----------------------------------------------------------------------------------
    def embedding_map(self, method: str = "pca", *, query_case: int | None = None,
                      query_vector: np.ndarray | None = None, max_points: int = 5000, seed: int = 0,
                      state: TaskState | None = None) -> EmbeddingMap:
        """Project the indexed cases (and the query) to 2-D; slow for t-SNE: call off the GUI thread.

        Parameters
        ----------
        method : {"pca", "tsne", "umap"}
        query_case : int, optional
            Mark this case as the query (its stored vector).
        query_vector : ndarray, optional
            Or mark this vector (an image query).
        """
        state = ensure_state(state)
        rows = np.flatnonzero(self.index.searchable)
        if len(rows) > max_points:
            # Sample before reading: a million-case index need not be copied for a 5,000-dot map.
            rows = np.sort(np.random.default_rng(seed).choice(rows, max_points, replace=False))
        if query_vector is None and query_case is not None:
            query_vector = self.index.vector_of(query_case)
        vectors = np.asarray(self.index.vectors[rows], np.float32)
        proj: Projection = project(vectors, method, query=query_vector, max_points=len(rows) + 1, seed=seed,
                                   metric=self.index.metric, state=state)
        kept = rows[proj.rows]
        cases = [self._row_cases[r] for r in kept]
        labels = [c.labels if c is not None else () for c in cases]
        frequency: dict[str, int] = {}
        for labs in (c.labels for c in self.catalog.cases):
            for lab in labs:
                frequency[lab] = frequency.get(lab, 0) + 1
        primary = [max(labs, key=lambda lab: (frequency.get(lab, 0), lab)) if labs else "" for labs in labels]
        return EmbeddingMap(self.index.ids[kept], proj.xy, labels, primary, method, proj.query_xy,
                            proj.explained_variance)

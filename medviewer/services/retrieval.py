"""Similar-case retrieval for a library and a model: index, search, map, marks, evaluation.

What the results panel, the embedding-map widget and the CLI call.  Every
long function takes an optional :class:`~medviewer.tasks.TaskState`
(progress, cancel) and returns a dataclass; none touches Qt.

Typical use from a panel (worker thread for everything but marks)::

    status = index_status(library, bundle)            # ready / missing / stale / ...
    if status.action != "none":
        build_index(library, bundle, state=state)     # incremental when it can be
    searcher = open_searcher(library, bundle)         # keep it: holds the model and the index
    result = searcher.search_case(case_id, k=5, farthest=5)
    result.vote.text                                  # "4 of 5 similar cases: Cardiomegaly"
    mapped = searcher.embedding_map("tsne", query_case=case_id, state=state)
    mark_relevance(library, result, result.nearest[0], True)   # on the library's thread

``model`` arguments accept a bundle folder, a loaded
:class:`~medviewer.inference.Bundle`, a :class:`~medviewer.inference.ModelRunner`,
an :class:`~medviewer.retrieval.Embedder`, or ``"pixels"`` (the raw-pixel
baseline).  A :class:`~medviewer.store.Library` must be used on the thread
that opened it; a :class:`~medviewer.retrieval.Searcher` may be used from any.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Union

import numpy as np

from medviewer.retrieval import index_store
from medviewer.retrieval.ann import AnnParams
from medviewer.retrieval.catalog import CaseInfo, read_catalog
from medviewer.retrieval.embedders import Embedder, PixelEmbedder, RunnerEmbedder
from medviewer.retrieval.errors import IndexNotReadyError, QueryError
from medviewer.retrieval.evaluate import RetrievalEvaluation, evaluate_pool, task_pool
from medviewer.retrieval.filters import QueryContext, SearchFilter
from medviewer.retrieval.index import BuildReport, IndexStatus, open_index, update_index
from medviewer.retrieval.index import index_status as _index_status
from medviewer.retrieval.marks import RelevanceMark, marks, region_text, set_mark
from medviewer.retrieval.search import EmbeddingMap, Hit, Region, SearchResult, Searcher
from medviewer.retrieval.split import DEFAULT_FRACTIONS
from medviewer.store.library import Library
from medviewer.tasks import TaskState, ensure_state

ModelLike = Union[str, os.PathLike, Any]
PIXELS = "pixels"


def case_image(case: CaseInfo) -> np.ndarray:
    """Return a case's frame as the viewer displays it (header or auto window, MONOCHROME1 inverted).

    Raises
    ------
    ImageReadError
        The file cannot be decoded.
    """
    from medviewer.dicom.pixels import decode
    from medviewer.display.render import render_frame

    return render_frame(decode(case.ref), case.frame)


def file_image(path: str | os.PathLike) -> np.ndarray:
    """Return the first frame of an image file as the viewer displays it."""
    from medviewer.dicom.pixels import decode
    from medviewer.dicom.sources import FileRef
    from medviewer.display.render import render_frame

    return render_frame(decode(FileRef.for_path(path)), 0)


def open_embedder(model: ModelLike, *, provider: str = "auto", variant: str | None = None,
                  batch_size: int = 32) -> Embedder:
    """Return an embedder for a model argument (see the module docstring).

    Raises
    ------
    BundleError
        The bundle folder is invalid (one clear message naming it and the fix).
    InferenceError
        The bundle exports no ``embedding`` output.
    """
    from medviewer.inference import Bundle, InferenceError, ModelRunner, load_bundle

    if isinstance(model, str) and model == PIXELS:
        return PixelEmbedder()
    if hasattr(model, "embed") and hasattr(model, "identity"):
        return model
    if isinstance(model, ModelRunner):
        runner = model
    else:
        bundle = model if isinstance(model, Bundle) else load_bundle(model)
        runner = ModelRunner(bundle, provider, variant=variant, batch_size=batch_size)
    if not runner.bundle.outputs.get("embedding"):
        raise InferenceError("the model exports no 'embedding' output, so it cannot search",
                             path=runner.bundle.path, hint="re-export it with `python -m models.export`")
    from medviewer.inference.runner import check_runs

    check_runs(runner)  # the checks of `model check`: index builds refuse what it refuses
    return RunnerEmbedder(runner)


class _ModelIdentity:
    """What an index check needs of a model (sha256, metric, dimension), without starting ONNX Runtime."""

    def __init__(self, bundle: Any) -> None:
        self.identity = bundle.fingerprint()
        self.name = bundle.name
        self.metric = str(bundle.metadata.get("embedding", {}).get("metric", "cosine"))
        self.dim = int(bundle.embedding_dim)

    def embed(self, images: Any, state: TaskState | None = None) -> np.ndarray:
        """Refuse: this object only identifies a model."""
        raise RuntimeError("a model identity cannot embed; use open_embedder")


def _identify(model: ModelLike) -> Any:
    """Return an embedder, or for a bundle path/Bundle a light identity (checksum only, no session)."""
    from medviewer.inference import Bundle, load_bundle

    if isinstance(model, Bundle):
        return _ModelIdentity(model)
    if isinstance(model, (str, os.PathLike)) and model != PIXELS:
        return _ModelIdentity(load_bundle(model, verify_graph=False))
    return open_embedder(model)


def index_folder(library: Library, embedder: Embedder) -> Path:
    """Return the index folder of a library and an embedder (``<library>.indexes/<sha256>``)."""
    return index_store.index_dir(library.path, embedder.identity)


def index_status(library: Library, model: ModelLike) -> IndexStatus:
    """Return whether the index of ``library`` for ``model`` can serve searches, and why not.

    Cheap: the model file is checksummed but no inference session is started.
    """
    model_id = _identify(model)
    return _index_status(index_folder(library, model_id), read_catalog(library), model_id)


def build_index(library: Library, model: ModelLike, *, kind: str = "auto", rebuild: bool = False,
                params: AnnParams | None = None, provider: str = "auto", batch_size: int = 64,
                state: TaskState | None = None) -> BuildReport:
    """Build or update the index of ``library`` for ``model``.

    Parameters
    ----------
    kind : {"auto", "exact", "hnsw", "ivf"}
        ``auto``: exact up to 50,000 cases, HNSW above (an explicit kind sticks
        to the index until another is asked for).
    rebuild : bool
        Embed every case again (otherwise only new and changed ones are).
    state : TaskState, optional
        Progress and cancel; a cancelled build leaves the previous index as it was.
    """
    embedder = open_embedder(model, provider=provider)
    catalog = read_catalog(library)
    return update_index(index_folder(library, embedder), catalog, embedder, case_image, kind=kind,
                        params=params, rebuild=rebuild, batch_size=batch_size, state=state)


def remove_index(library: Library, model: ModelLike) -> bool:
    """Delete the index of ``library`` for ``model`` (the library itself is untouched)."""
    return index_store.remove_index(index_folder(library, _identify(model)))


def open_searcher(library: Library, model: ModelLike, *, allow_stale: bool = False,
                  provider: str = "auto", verify: str = "auto") -> Searcher:
    """Load the index and the model for searching; keep the result for many queries.

    Raises
    ------
    IndexNotReadyError
        Missing, corrupt, foreign or (unless ``allow_stale``) out-of-date
        index; ``exc.status.action`` says whether to update or rebuild.
    """
    embedder = open_embedder(model, provider=provider)
    catalog = read_catalog(library)
    index = open_index(index_folder(library, embedder), catalog, embedder, allow_stale=allow_stale,
                       verify=verify)
    warnings = []
    status = index.status
    if status is not None and status.state == "stale":
        warnings.append(f"the index is out of date ({status.added} new, {status.removed} removed, "
                        f"{status.changed} changed cases): update it to search them all")
    return Searcher(catalog, index, embedder, case_image, warnings)


def search_case(library: Library, model: ModelLike, case_id: int, *, k: int = 5, farthest: int = 0,
                filters: SearchFilter | None = None, region: Region | None = None,
                state: TaskState | None = None) -> SearchResult:
    """Search with a library case (one-off: opens a searcher; keep one for repeated queries)."""
    return open_searcher(library, model).search_case(case_id, k=k, farthest=farthest, filters=filters,
                                                     region=region, state=state)


def search_image(library: Library, model: ModelLike, image: np.ndarray, *, region: Region | None = None,
                 k: int = 5, farthest: int = 0, filters: SearchFilter | None = None,
                 context: QueryContext | None = None, state: TaskState | None = None) -> SearchResult:
    """Search with a display image or a rectangle of it (one-off)."""
    return open_searcher(library, model).search_image(image, region=region, k=k, farthest=farthest,
                                                      filters=filters, context=context, state=state)


def search_file(searcher: Searcher, path: str | os.PathLike, *, region: Region | None = None, k: int = 5,
                farthest: int = 0, filters: SearchFilter | None = None,
                state: TaskState | None = None) -> SearchResult:
    """Search with an image file; a file that is a library case is searched as that case.

    As a case, its patient (and, if asked, study) is excluded and its stored
    vector is reused; an outside file is embedded and excludes nothing.
    """
    location = os.path.abspath(os.fspath(path))
    case = searcher.catalog.by_location(location)
    if case is not None:
        return searcher.search_case(case.id, k=k, farthest=farthest, filters=filters, region=region,
                                    state=state)
    return searcher.search_image(file_image(location), region=region, k=k, farthest=farthest,
                                 filters=filters, state=state)


def embedding_map(library: Library, model: ModelLike, *, method: str = "pca",
                  query_case: int | None = None, max_points: int = 5000, seed: int = 0,
                  state: TaskState | None = None) -> EmbeddingMap:
    """Project the library's indexed cases to 2-D, the query case marked (one-off)."""
    return open_searcher(library, model).embedding_map(method, query_case=query_case,
                                                       max_points=max_points, seed=seed, state=state)


def mark_relevance(library: Library, result: SearchResult, hit: Hit, relevant: bool, *,
                   query_location: str | None = None, reader: str = "") -> RelevanceMark:
    """Store a reader's "relevant / not relevant" for one result (call on the library's thread).

    Parameters
    ----------
    result : SearchResult
        The search the hit came from (gives the query case, region and model).
    query_location : str, optional
        The query image's file; required when the query was not a library case.
    """
    if query_location is None:
        if result.query_case is None:
            raise QueryError("the query was not a library case: give its file as query_location")
        found = library.case_location(result.query_case)
        if found is None:
            raise QueryError(f"case {result.query_case} is no longer in the library", path=library.path)
        query_location = found[0]
    return set_mark(library, query_location=query_location, query_case=result.query_case,
                    query_region=region_text(result.region), result_case=hit.case_id,
                    result_location=hit.location, relevant=relevant, model_sha256=result.model_sha256,
                    reader=reader, rank=hit.rank, distance=hit.distance)


def relevance_marks(library: Library, *, model_sha256: str | None = None,
                    query_location: str | None = None, reader: str | None = None) -> list[RelevanceMark]:
    """Return stored relevance marks, optionally of one model, query or reader."""
    return marks(library, model_sha256=model_sha256, query_location=query_location, reader=reader)


def evaluate_retrieval(library: Library, model: ModelLike, task: str, *, k: int = 5, split: str = "auto",
                       seed: int | None = None, fractions: tuple[float, float, float] | None = None,
                       split_from: ModelLike | None = None, provider: str = "auto",
                       state: TaskState | None = None) -> RetrievalEvaluation:
    """Evaluate retrieval with the paper's protocol on the library's labelled cases.

    Parameters
    ----------
    model : model argument, or "pixels"
        What embeds the images.
    task : str
        ``Cardiomegaly``, ``Emphysema``, ``Opacity`` (the paper's union) or any label.
    split : {"auto", "test", "val", "train", "heldout", "all"}
        Which part of the recipe's patient split to query and search.  ``auto``
        (the default): every case when the model records the patients and
        images it was trained on and the library holds none of them (a
        held-out library), else the recipe's ``test`` split.
    seed, fractions : optional
        The patient split; by default the recipe's (``recipe.seed`` and
        ``recipe.split`` of the bundle metadata, of ``split_from`` when given,
        e.g. the model a pixel baseline is compared with), else 0 and 60/30/10.
    """
    state = ensure_state(state)
    embedder = open_embedder(model, provider=provider)
    recipe_seed, recipe_fractions = _recipe_split(split_from if split_from is not None else embedder)
    seed = recipe_seed if seed is None else seed
    fractions = tuple(fractions or recipe_fractions)
    catalog = read_catalog(library)
    split, reason = resolve_split(split, catalog, split_from if split_from is not None else embedder)
    pool = task_pool(catalog.cases, task, split=split, fractions=fractions, seed=seed)
    cases = {i: catalog.get(i) for i in pool.case_ids}
    vectors, source = _pool_vectors(library, catalog, embedder, pool.case_ids, state)
    result = evaluate_pool(cases, pool, vectors, embedder.metric, task=task, k=k, embedder=embedder.name,
                           split=split, seed=seed)
    result.vectors_from = source
    result.split_reason = reason
    return result


def resolve_split(split: str, catalog: Any, model: Any) -> tuple[str, str]:
    """Return the split to evaluate and why: ``auto`` becomes ``all`` on a held-out library, else ``test``.

    A library is held out when the model's metadata records what it was
    trained on (``training_data.trained_on``: sha256 prefixes of patient IDs
    and of image files) and none of the library's cases matches.
    """
    if split != "auto":
        return split, f"--split {split}"
    return split_for_record(catalog, _trained_on(model))


def split_for_record(catalog: Any, trained: dict | None) -> tuple[str, str]:
    """Return ``auto``'s split for a library given a model's ``trained_on`` record (or None)."""
    if trained is None:
        return "test", ("the model does not record the patients it was trained on: its recipe's "
                        "test split is evaluated")
    patients = set(trained.get("patient_sha256", []))
    seen = sum(1 for c in catalog.cases if c.patient_id and _short_sha(c.patient_id) in patients)
    if not seen:
        images = set(trained.get("image_sha256", []))
        seen = sum(1 for c in catalog.cases if not c.member and _file_prefix(c.path) in images)
    if seen:
        return "test", (f"{seen} of the library's {len(catalog.cases)} cases are of patients or images "
                        "the model was trained on: only its recipe's test split is evaluated")
    return "all", (f"none of the library's {len(catalog.cases)} cases is of a patient or image the "
                   "model was trained on: every case is evaluated")


def _trained_on(model: Any) -> dict | None:
    from medviewer.inference import Bundle, ModelRunner, load_bundle

    model = getattr(model, "runner", model)
    if isinstance(model, ModelRunner):
        model = model.bundle
    if isinstance(model, (str, os.PathLike)) and model != PIXELS:
        model = load_bundle(model, verify_graph=False)
    if not isinstance(model, Bundle):
        return None
    record = model.metadata.get("training_data", {}).get("trained_on")
    return record if isinstance(record, dict) else None


def _short_sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _file_prefix(path: str) -> str:
    from medviewer.fileio import sha256_file

    try:
        return sha256_file(path)[:16]
    except OSError:
        return ""


def _recipe_split(model: Any) -> tuple[int, tuple[float, ...]]:
    """Return the patient split (seed, fractions) recorded in a model's metadata, or the defaults."""
    from medviewer.inference import Bundle, ModelRunner, load_bundle

    model = getattr(model, "runner", model)  # a RunnerEmbedder
    if isinstance(model, ModelRunner):
        model = model.bundle
    if isinstance(model, (str, os.PathLike)) and model != PIXELS:
        model = load_bundle(model, verify_graph=False)
    recipe = model.metadata.get("recipe", {}) if isinstance(model, Bundle) else {}
    seed, split = recipe.get("seed"), recipe.get("split")
    return (int(seed) if seed is not None else 0,
            tuple(float(f) for f in split) if split else DEFAULT_FRACTIONS)


def _pool_vectors(library: Library, catalog: Any, embedder: Embedder, case_ids: list[int],
                  state: TaskState) -> tuple[np.ndarray, str]:
    """Return the pool's vectors: from a ready index when there is one, else embedded now."""
    try:
        index = open_index(index_folder(library, embedder), catalog, embedder)
        rows = [index.row_of(i) for i in case_ids]
        if all(r is not None for r in rows):
            return np.asarray(index.vectors[rows], np.float32), "index"
    except IndexNotReadyError:
        pass
    images = [case_image(catalog.get(i)) for i in case_ids]
    return np.asarray(embedder.embed(images, state), np.float32), "computed"

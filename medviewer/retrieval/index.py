"""The case index of one (library, model): its status, building, updating and searching.

- :func:`index_status` says whether the stored index can serve searches
  (``ready``) or why not (``missing``, ``corrupt``, ``mismatch``, ``stale``),
  cheaply: it reads the manifest and the id and key arrays, not the vectors.
- :func:`update_index` brings the index up to date with a catalog: new cases
  are embedded and added, removed ones dropped, changed ones re-embedded.
  Vectors are kept in ``embeddings.npy``, so an update never re-embeds
  unchanged cases; the FAISS structure is extended in place when cases were
  only added, and rebuilt from the stored vectors otherwise (cheap for flat
  and IVF, the HNSW build time for HNSW).  A missing, corrupt or foreign
  index is rebuilt from scratch, and the report says why.
- :func:`open_index` loads an index for searching and refuses one that is
  not ready (unless ``allow_stale``: then only rows whose case is unchanged
  can be returned, and the caller is told).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medviewer.dicom.content import sample_hash
from medviewer.retrieval import ann
from medviewer.retrieval.catalog import Catalog, CaseInfo
from medviewer.retrieval.embedders import Embedder
from medviewer.retrieval.errors import (
    IndexCorruptError,
    NonFiniteEmbeddingError,
    IndexMismatchError,
    IndexMissingError,
    IndexNotReadyError,
    IndexStaleError,
)
from medviewer.retrieval import index_store as store
from medviewer.tasks import TaskState, ensure_state

STATES = ("ready", "missing", "corrupt", "mismatch", "stale")

# A display image for a case; raises for unreadable files.
ImageLoader = Callable[[CaseInfo], np.ndarray]


@dataclass
class IndexStatus:
    """Whether an index can serve searches, and what to do when it cannot.

    Attributes
    ----------
    state : str
        ``ready``, ``missing``, ``corrupt``, ``mismatch`` (another model,
        metric or dimension) or ``stale`` (the library changed).
    message : str
        One sentence for the panel.
    folder : str
        The index folder.
    added, removed, changed : int
        For ``stale``: cases not yet embedded, gone from the library, or
        whose file changed.
    manifest : dict, optional
        The manifest, when one could be read.
    """

    state: str
    message: str
    folder: str
    added: int = 0
    removed: int = 0
    changed: int = 0
    manifest: dict[str, Any] | None = None

    @property
    def ready(self) -> bool:
        """Whether searches may use the index."""
        return self.state == "ready"

    @property
    def action(self) -> str:
        """Return what fixes it: ``none``, ``update`` (incremental) or ``rebuild``."""
        return {"ready": "none", "stale": "update"}.get(self.state, "rebuild")

    def to_dict(self) -> dict[str, Any]:
        """Return the status as JSON-friendly data."""
        m = self.manifest or {}
        return {"state": self.state, "message": self.message, "folder": self.folder,
                "action": self.action, "added": self.added, "removed": self.removed,
                "changed": self.changed, "kind": m.get("kind"), "count": m.get("count"),
                "metric": m.get("metric"), "dim": m.get("dim"), "recall": m.get("recall"),
                "model_sha256": m.get("model_sha256"), "updated_at": m.get("updated_at")}


@dataclass
class UpdatePlan:
    """What an update must do: case ids to embed and to drop."""

    added: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        """Whether the index already matches the catalog."""
        return not (self.added or self.removed or self.changed)


def plan_update(catalog: Catalog, ids: np.ndarray, keys: np.ndarray,
                unreadable: dict[int, int] | None = None) -> UpdatePlan:
    """Compare an index's (id, key) pairs with a catalog.

    Cases recorded as unreadable with an unchanged key are accounted for
    (not retried on every update); a changed key retries them.
    """
    current = catalog.content_keys()
    stored = dict(zip(np.asarray(ids).tolist(), np.asarray(keys).tolist()))
    unreadable = unreadable or {}
    plan = UpdatePlan()
    for case_id, key in current.items():
        if case_id in stored:
            if stored[case_id] == key:
                plan.unchanged += 1
            else:
                plan.changed.append(case_id)
        elif unreadable.get(case_id) != key:
            plan.added.append(case_id)
    plan.removed = [i for i in stored if i not in current]
    return plan


def index_status(folder: Path, catalog: Catalog, embedder: Embedder,
                 verify: str = "auto") -> IndexStatus:
    """Return the status of the index in ``folder`` for ``catalog`` and ``embedder``.

    The files are checked as :func:`open_index` checks them before a search (``verify``),
    vectors included, so "ready" means a search will not refuse the index.
    """
    try:
        manifest = store.read_manifest(folder)
    except IndexMissingError:
        return IndexStatus("missing", "no index yet for this model: build one to search", str(folder))
    except IndexCorruptError as exc:
        return IndexStatus("corrupt", exc.message + "; rebuild it", str(folder))
    m = manifest.to_dict()
    try:
        store.check_model(manifest, folder, embedder.identity, embedder.metric, embedder.dim)
        store.check_files(manifest, folder, verify=verify)
        vectors, ids, keys = store.read_arrays(folder, manifest, mmap=True)
        store.check_vectors(vectors, manifest, folder, verify=verify)
    except IndexMismatchError as exc:
        return IndexStatus("mismatch", exc.message + "; rebuild it", str(folder), manifest=m)
    except IndexCorruptError as exc:
        return IndexStatus("corrupt", exc.message + "; rebuild it", str(folder), manifest=m)
    plan = plan_update(catalog, ids, keys, manifest.unreadable_keys())
    if plan.empty:
        return IndexStatus("ready", f"{manifest.count} cases indexed ({manifest.kind}, {manifest.metric})",
                           str(folder), manifest=m)
    parts = [f"{n} {w}" for n, w in ((len(plan.added), "new"), (len(plan.removed), "removed"),
                                      (len(plan.changed), "changed")) if n]
    return IndexStatus("stale", "the library changed since indexing (" + ", ".join(parts) + "); update it",
                       str(folder), len(plan.added), len(plan.removed), len(plan.changed), m)


class CaseIndex:
    """A loaded index: vectors, their case ids and the FAISS structure.

    Searching is thread-safe (FAISS and numpy searches only read).  Exact
    indexes are searched by one matrix-vector product over the stored vectors
    (:func:`~medviewer.retrieval.ann.exact_knn`); HNSW and IVF by FAISS.
    """

    def __init__(self, manifest: store.Manifest, folder: Path, vectors: np.ndarray, ids: np.ndarray,
                 keys: np.ndarray, structure: Any | None = None, searchable: np.ndarray | None = None) -> None:
        self.manifest = manifest
        self.folder = Path(folder)
        self.vectors = vectors
        self.ids = np.asarray(ids, np.int64)
        self.keys = np.asarray(keys, np.int64)
        self.params = ann.AnnParams.from_dict(manifest.params)
        self._structure = structure
        self._norms: np.ndarray | None = None
        self._lock = threading.Lock()
        self._row = {int(c): r for r, c in enumerate(self.ids.tolist())}
        # Rows that may be returned at all (False for stale rows when opened with allow_stale).
        self.searchable = np.ones(len(self.ids), bool) if searchable is None else searchable
        self.status: IndexStatus | None = None  # set by open_index

    @property
    def kind(self) -> str:
        """Return ``exact``, ``hnsw`` or ``ivf``."""
        return self.manifest.kind

    @property
    def metric(self) -> str:
        """Return ``cosine`` or ``l2``."""
        return self.manifest.metric

    def __len__(self) -> int:
        return len(self.ids)

    def row_of(self, case_id: int) -> int | None:
        """Return the row of a case, or None when it is not indexed."""
        return self._row.get(int(case_id))

    def vector_of(self, case_id: int) -> np.ndarray | None:
        """Return the stored vector of a case (None when not indexed or stale)."""
        row = self.row_of(case_id)
        if row is None or not self.searchable[row]:
            return None
        return np.asarray(self.vectors[row], np.float32)

    def structure(self) -> Any:
        """Return the FAISS structure (HNSW or IVF; exact indexes search the vectors directly)."""
        return self._structure

    def _sq_norms(self) -> np.ndarray | None:
        if self.metric != "l2":
            return None
        with self._lock:
            if self._norms is None:
                self._norms = np.einsum("ij,ij->i", self.vectors, self.vectors)
            return self._norms

    def nearest(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Return (distances, case ids) of the k nearest allowed rows, nearest first.

        Parameters
        ----------
        query : ndarray, shape (D,)
            A query vector (normalised here for the cosine metric).
        k : int
        allowed : ndarray of bool, optional
            Rows that may be returned (the pre-filter).  Fewer than k results
            come back only when fewer than k rows are allowed.
        """
        q = ann.prepare_vectors(query, self.metric)[0]
        allowed = self._allowed(allowed)
        n_allowed = len(self.ids) if allowed is None else int(allowed.sum())
        k = min(int(k), n_allowed)
        if k <= 0:
            return np.zeros(0), np.zeros(0, np.int64)
        if self.kind == "exact" or (allowed is not None and n_allowed <= ann.EXACT_SUBSET_MAX):
            # Exact kind, or few candidates: brute force is exact and, here, the fastest.
            dist, rows = ann.exact_knn(self.vectors, q, k, self.metric, allowed, sq_norms=self._sq_norms())
            return dist, self.ids[rows]
        # Selective filters need a wider approximate search to still reach k allowed rows.
        scale = 1.0 if allowed is None else min(16.0, len(self.ids) / max(n_allowed, 1))
        scores, rows = ann.search_structure(self._structure, q, k, self.kind, self.params, allowed, scale)
        rows, scores = rows[0], scores[0]
        keep = rows >= 0
        if keep.sum() < k:
            # The approximate search fell short of k (a very selective filter): answer exactly.
            dist, exact_rows = ann.exact_knn(self.vectors, q, k, self.metric, allowed,
                                             sq_norms=self._sq_norms())
            return dist, self.ids[exact_rows]
        return ann.scores_to_distances(scores[keep], self.metric), self.ids[rows[keep]]

    def farthest(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Return (distances, case ids) of the k farthest allowed rows, farthest first (exact)."""
        q = ann.prepare_vectors(query, self.metric)[0]
        dist, rows = ann.exact_knn(self.vectors, q, k, self.metric, self._allowed(allowed), farthest=True,
                                   sq_norms=self._sq_norms())
        return dist, self.ids[rows]

    def _allowed(self, allowed: np.ndarray | None) -> np.ndarray | None:
        if allowed is not None and len(allowed) != len(self.ids):
            raise ValueError(f"the filter mask has {len(allowed)} rows, the index {len(self.ids)}")
        if self.searchable.all():
            return allowed
        return self.searchable.copy() if allowed is None else (allowed & self.searchable)


def open_index(folder: Path, catalog: Catalog, embedder: Embedder, *, allow_stale: bool = False,
               verify: str = "auto") -> CaseIndex:
    """Load the index in ``folder`` for searching.

    Parameters
    ----------
    allow_stale : bool
        Open an out-of-date index anyway; rows whose case was removed or
        changed are never returned, and new cases are not searchable until
        the index is updated.  Callers must tell the user.
    verify : {"auto", "full", "size"}
        See :func:`~medviewer.retrieval.index_store.check_files`.

    Raises
    ------
    IndexNotReadyError
        One of its subclasses; ``.status`` holds the :class:`IndexStatus`.
    """
    status = index_status(folder, catalog, embedder, verify=verify)
    if status.state == "missing":
        raise IndexMissingError("no index for this library and model", path=folder, status=status)
    if status.state == "corrupt":
        raise IndexCorruptError(status.message, path=folder, status=status)
    if status.state == "mismatch":
        raise IndexMismatchError(status.message, path=folder, status=status)
    if status.state == "stale" and not allow_stale:
        raise IndexStaleError(status.message, path=folder, status=status,
                              hint="update it with `medviewer index build` (only new and changed "
                                   "cases are embedded)")
    manifest = store.read_manifest(folder)
    try:
        store.check_files(manifest, folder, verify=verify)
        vectors, ids, keys = store.read_arrays(folder, manifest, mmap=manifest.kind != "exact")
        structure = store.read_structure(folder, manifest) if manifest.kind != "exact" else None
    except IndexCorruptError as exc:
        exc.status = IndexStatus("corrupt", exc.message + "; rebuild it", str(folder),
                                 manifest=manifest.to_dict())
        raise
    searchable = None
    if status.state == "stale":
        current = catalog.content_keys()
        searchable = np.array([current.get(int(i)) == int(k) for i, k in zip(ids, keys)], bool)
    index = CaseIndex(manifest, folder, vectors, ids, keys, structure, searchable)
    index.status = status
    if structure is not None:
        ann.set_search_effort(structure, manifest.kind, index.params)
    return index


@dataclass
class BuildReport:
    """What :func:`update_index` did.

    Attributes
    ----------
    folder : str
    kind, metric : str
    count, dim : int
        Cases in the index afterwards, and the vector size.
    embedded : int
        Cases embedded in this call (unreadable ones not counted).
    added, removed, changed : int
    unreadable : list of dict
        ``{"case", "path", "reason"}`` of cases skipped because their image
        could not be read (retried when their file changes).
    structure : str
        ``unchanged``, ``flat`` (exact: nothing to build), ``appended`` or ``rebuilt``.
    full_rebuild_reason : str
        Why everything was embedded again ("" for an incremental update).
    recall : dict, optional
        Recall@10 against exact search (approximate kinds).
    seconds : float
    """

    folder: str
    kind: str
    metric: str
    count: int
    dim: int
    embedded: int = 0
    added: int = 0
    removed: int = 0
    changed: int = 0
    unreadable: list[dict[str, Any]] = field(default_factory=list)
    structure: str = "unchanged"
    full_rebuild_reason: str = ""
    recall: dict[str, Any] | None = None
    seconds: float = 0.0

    @property
    def up_to_date(self) -> bool:
        """Whether nothing needed doing."""
        return self.structure == "unchanged" and not self.embedded and not self.removed

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-friendly data."""
        out = dict(self.__dict__)
        out["up_to_date"] = self.up_to_date
        return out


def update_index(folder: Path, catalog: Catalog, embedder: Embedder, load_image: ImageLoader, *,
                 kind: str = "auto", params: ann.AnnParams | None = None, rebuild: bool = False,
                 batch_size: int = 64, state: TaskState | None = None) -> BuildReport:
    """Build the index in ``folder``, or bring it up to date with ``catalog``.

    Parameters
    ----------
    folder : Path
        The index folder (see :func:`~medviewer.retrieval.index_store.index_dir`).
    catalog : Catalog
        The library's cases now.
    embedder : Embedder
    load_image : callable
        Returns a case's display image; any exception marks the case unreadable.
    kind : {"auto", "exact", "hnsw", "ivf"}
        ``auto`` keeps a kind the user chose for this index before, else
        chooses by size (:func:`~medviewer.retrieval.ann.choose_kind`).
    params : AnnParams, optional
        Construction parameters of approximate kinds.
    rebuild : bool
        Embed every case again, ignoring the stored index.
    batch_size : int
        Images decoded and embedded per step (progress and cancel between steps).
    state : TaskState, optional

    Raises
    ------
    TaskCancelled
        Nothing is written; the previous index is left as it was.
    """
    state = ensure_state(state)
    started = time.perf_counter()
    old, reason = (None, "rebuild requested") if rebuild else _load_for_update(folder, embedder)
    if old is None:
        ids0 = keys0 = np.zeros(0, np.int64)
        vecs0 = np.zeros((0, embedder.dim), np.float32)
        unreadable0: dict[str, dict[str, Any]] = {}
        old_kind = None
    else:
        manifest0, vecs0, ids0, keys0, _ = old
        unreadable0, old_kind = dict(manifest0.unreadable), manifest0.kind
    plan = plan_update(catalog, ids0, keys0, {int(k): int(v["key"]) for k, v in unreadable0.items()})
    # An explicit kind sticks across later "auto" updates; an automatic one follows the size.
    requested = kind if kind != "auto" or old is None else old[0].requested_kind
    resolved = ann.choose_kind(plan.unchanged + len(plan.added) + len(plan.changed), requested)
    if old is not None and plan.empty and resolved == old_kind:
        m = old[0]
        return BuildReport(str(folder), m.kind, m.metric, m.count, m.dim, recall=m.recall,
                           seconds=round(time.perf_counter() - started, 3))
    todo = [catalog.get(i) for i in plan.added + plan.changed]
    drop = set(plan.removed) | set(plan.changed)
    keep = np.array([int(i) not in drop for i in ids0.tolist()], bool)
    params = params or (ann.AnnParams.from_dict(old[0].params) if old is not None else ann.AnnParams())
    # Rows go straight where they are kept: an HNSW index (its storage is the vectors), else
    # one preallocated array; the kept rows first, then each embedded batch, prepared in place.
    sink = _RowSink.for_build(old, resolved, embedder.metric, embedder.dim, keep, len(todo), params)
    sink.add_kept(vecs0, keep)
    if old is not None:  # drop the mapping of the old vectors before the folder is replaced
        old, vecs0 = (old[0], None, old[2], old[3], old[4]), None
    new_ids, new_keys, failed = _embed_cases(todo, embedder, load_image, batch_size, sink,
                                             catalog.content_keys(), state.child(0.0, 0.8))
    vectors = sink.finish(state.child(0.8, 0.85))
    ids = np.concatenate([ids0[keep], new_ids]).astype(np.int64)
    keys = np.concatenate([keys0[keep], new_keys]).astype(np.int64)
    current = catalog.content_keys()
    embedded_now = set(new_ids.tolist())
    unreadable = {k: v for k, v in unreadable0.items() if current.get(int(k)) == int(v["key"])
                  and int(k) not in embedded_now}
    unreadable.update({str(f["case"]): {"key": f["key"], "path": f["path"], "reason": f["reason"]}
                       for f in failed})
    state.check()
    structure, how = sink.structure, sink.how
    if structure is None and resolved != "exact":
        structure, how = _structure_for(old, resolved, embedder.metric, keep, vectors, len(ids0), params,
                                        state.child(0.85, 0.9))
    elif resolved == "exact":
        how = "flat"
    recall = None
    if resolved != "exact" and len(vectors):
        recall = ann.tune_and_measure(structure, vectors, resolved, embedder.metric, params,
                                      state=state.child(0.9, 0.97)).to_dict()
    manifest = store.Manifest(
        model_sha256=embedder.identity, model_name=embedder.name, metric=embedder.metric,
        kind=resolved, requested_kind=requested, count=len(ids), dim=embedder.dim,
        library=catalog.library_path,
        fingerprint=store.fingerprint(ids, keys, {int(k): int(v["key"]) for k, v in unreadable.items()}),
        params=params.to_dict() if resolved != "exact" else {}, recall=recall, unreadable=unreadable,
        created_at=old[0].created_at if old is not None else store.now())
    state.check()
    state.set_progress(0.98, "writing the index")
    store.write_index(folder, manifest, vectors, ids, keys, structure)
    state.set_progress(1.0, f"{len(ids)} cases indexed")
    return BuildReport(
        str(folder), resolved, embedder.metric, len(ids), embedder.dim, embedded=len(new_ids),
        added=len(plan.added), removed=len(plan.removed), changed=len(plan.changed),
        unreadable=[{"case": f["case"], "path": f["path"], "reason": f["reason"]} for f in failed],
        structure=how, full_rebuild_reason=reason, recall=recall,
        seconds=round(time.perf_counter() - started, 3))


def _load_for_update(folder: Path, embedder: Embedder) -> tuple[Any, str]:
    """Return ((manifest, vectors, ids, keys, structure), "") or (None, why everything is rebuilt)."""
    try:
        manifest = store.read_manifest(folder)
        store.check_model(manifest, folder, embedder.identity, embedder.metric, embedder.dim)
        store.check_files(manifest, folder, verify="full")
        # Mapped, not read: only the kept rows are copied, once, into the new index.
        vectors, ids, keys = store.read_arrays(folder, manifest, mmap=True)
        structure = store.read_structure(folder, manifest) if manifest.kind != "exact" else None
    except IndexMissingError:
        return None, "new index"
    except IndexNotReadyError as exc:
        return None, f"the stored index was unusable ({exc.message})"
    return (manifest, vectors, ids, keys, structure), ""


def require_finite(vectors: np.ndarray, embedder: Embedder, names: list[str] | None = None) -> None:
    """Refuse embeddings with NaN or infinite values: they would rank cases at random.

    Raises
    ------
    NonFiniteEmbeddingError
    """
    bad = ~np.isfinite(vectors).all(axis=tuple(range(1, vectors.ndim)))
    if bad.any():
        first = f" (first: {names[int(np.argmax(bad))]})" if names else ""
        raise NonFiniteEmbeddingError(
            f"the model {embedder.name} gave embeddings that are not finite (NaN or infinity) "
            f"for {int(bad.sum())} of {len(bad)} images{first}; nothing was indexed",
            hint="the bundle's preprocessing (mean/std) or weights are broken: run "
                 "`medviewer model check` and re-export it")


def _embed_cases(cases: list[CaseInfo | None], embedder: Embedder, load_image: ImageLoader,
                 batch_size: int, sink: _RowSink, content_keys: dict[int, int], state: TaskState
                 ) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Embed ``cases`` batch by batch into ``sink``; return (ids, keys, failed) of the rows added."""
    ids, keys, failed = [], [], []
    total = len(cases)
    state.set_progress(0.0, f"embedding {total} cases")
    for start in range(0, total, max(1, batch_size)):
        state.check()
        images, batch = [], []
        for case in cases[start:start + batch_size]:
            if case is None:
                continue
            try:
                if case.content_hash and sample_hash(case.ref) != case.content_hash:
                    # Embedding it would file new pixels under the old header's labels.
                    failed.append({"case": case.id, "key": case.content_key,
                                   "path": case.location,
                                   "reason": "the file changed on disk since import; import "
                                             "its folder again"})
                    continue
                images.append(load_image(case))
                batch.append(case)
            except Exception as exc:  # noqa: BLE001 - one unreadable file never stops an index build
                reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                failed.append({"case": case.id, "key": case.content_key, "path": case.location,
                               "reason": reason})
        if images:
            batch_vectors = np.asarray(embedder.embed(images), np.float32)
            require_finite(batch_vectors, embedder, [c.location for c in batch])
            sink.add(batch_vectors)
            ids.extend(c.id for c in batch)
            keys.extend(content_keys[c.id] for c in batch)
        done = min(total, start + batch_size)
        state.set_progress(done / max(total, 1), f"embedded {done} of {total} cases")
    return np.asarray(ids, np.int64), np.asarray(keys, np.int64), failed


class _RowSink:
    """Where an index build puts its prepared rows, each written once.

    ``array`` mode fills one preallocated (capacity, D) array (a failed
    case leaves its row unused: the result is a view of the rows filled).
    ``hnsw`` mode adds rows to an HNSW index in chunks of ``ann._ADD_CHUNK``
    through a small reused buffer; the index's own storage then is the
    vectors (:func:`~medviewer.retrieval.ann.stored_vectors`), so no second
    copy of them is ever held.
    """

    def __init__(self, metric: str, dim: int, capacity: int, structure: Any = None, how: str = "") -> None:
        self.metric, self.dim = metric, dim
        self.structure, self.how = structure, how
        rows = min(capacity, ann._ADD_CHUNK) if structure is not None else capacity
        self._buffer = np.empty((rows, dim), np.float32)
        self._filled = 0

    @classmethod
    def for_build(cls, old: Any, kind: str, metric: str, dim: int, keep: np.ndarray, new_rows: int,
                  params: ann.AnnParams) -> _RowSink:
        """Return the sink of a build of ``kind`` keeping ``keep`` of the old rows and adding up to ``new_rows``."""
        capacity = int(keep.sum()) + new_rows
        if kind != "hnsw":
            return cls(metric, dim, capacity)
        old_structure = old[4] if old is not None else None
        if (old is not None and old[0].kind == "hnsw" and old_structure is not None and bool(keep.all())
                and old_structure.ntotal == len(keep)):
            # Rows were only added: extend the stored graph (its storage holds the old rows).
            return cls(metric, dim, new_rows, old_structure, "appended")
        return cls(metric, dim, capacity, ann.new_structure(kind, dim, metric, params), "rebuilt")

    def add_kept(self, old_vectors: np.ndarray, keep: np.ndarray) -> None:
        """Add the kept rows of the previous index (already prepared), unless the structure holds them."""
        if self.how == "appended" or not keep.any():
            return
        rows = np.flatnonzero(keep)
        for start in range(0, len(rows), ann._ADD_CHUNK):
            part = rows[start:start + ann._ADD_CHUNK]
            self._put(old_vectors[part], prepared=True)

    def add(self, batch: np.ndarray) -> None:
        """Add a batch of raw embeddings (prepared here for the metric)."""
        self._put(batch, prepared=False)

    def _put(self, rows: np.ndarray, prepared: bool) -> None:
        start = 0
        while start < len(rows):
            room = len(self._buffer) - self._filled
            if room == 0:
                self._flush()
                room = len(self._buffer)
            part = rows[start:start + room]
            out = self._buffer[self._filled:self._filled + len(part)]
            if prepared:
                out[...] = part
            else:
                ann.prepare_into(part, out, self.metric)
            self._filled += len(part)
            start += len(part)

    def _flush(self) -> None:
        if self.structure is None:
            raise RuntimeError("more rows than the index build planned")  # a bug, never user input
        if self._filled:
            self.structure.add(self._buffer[:self._filled])
        self._filled = 0

    def finish(self, state: TaskState) -> np.ndarray:
        """Return every row added, in order (a view: of the array, or of the HNSW storage)."""
        if self.structure is None:
            return self._buffer[:self._filled]
        state.set_progress(0.0, "adding the last vectors")
        self._flush()
        self._buffer = np.empty((0, self.dim), np.float32)
        state.set_progress(1.0)
        return ann.stored_vectors(self.structure)


def _structure_for(old: Any, kind: str, metric: str, keep: np.ndarray, vectors: np.ndarray, n_old: int,
                   params: ann.AnnParams, state: TaskState) -> tuple[Any, str]:
    """Return the FAISS structure for the new rows and how it was obtained."""
    if kind == "exact":
        return None, "flat"
    old_structure = old[4] if old is not None else None
    only_appended = old is not None and old[0].kind == kind and bool(keep.all()) and old_structure is not None
    if only_appended and len(vectors) >= n_old:
        # Rows 0..n_old-1 are unchanged and in place: extend the stored structure.
        ann.add_rows(old_structure, vectors[n_old:], state)
        return old_structure, "appended"
    return ann.build_structure(vectors, kind, metric, params, state), "rebuilt"

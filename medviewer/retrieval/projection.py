"""Two-dimensional maps of embeddings (the retrieval paper's figure 3): PCA, t-SNE, UMAP.

PCA is plain numpy (always available, deterministic, and it can place a new
query in an existing map).  t-SNE needs scikit-learn and UMAP the
``umap-learn`` package; both are imported only when asked for, and a missing
one raises :class:`ProjectionUnavailableError` naming the package.  Neither
can place a new point in an existing map, so the query is fitted together
with the library.  Large libraries are subsampled (seeded) to ``max_points``:
t-SNE is quadratic-ish in time and a map of 100k dots is unreadable anyway.

References
----------
.. [1] Pearson, K. (1901). On lines and planes of closest fit to systems of
   points in space. Phil. Mag. 2(11) (PCA; computed by SVD of the centred data).
.. [2] van der Maaten, L. and Hinton, G. (2008). Visualizing data using t-SNE.
   JMLR 9, 2579-2605.
.. [3] McInnes, L., Healy, J. and Melville, J. (2018). UMAP: Uniform Manifold
   Approximation and Projection for dimension reduction. arXiv:1802.03426.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

import numpy as np

from medviewer.retrieval.errors import ProjectionUnavailableError
from medviewer.tasks import TaskState, ensure_state

METHODS = ("pca", "tsne", "umap")


def available_methods() -> list[str]:
    """Return the methods whose packages are installed (PCA always)."""
    out = ["pca"]
    if importlib.util.find_spec("sklearn") is not None:
        out.append("tsne")
    if importlib.util.find_spec("umap") is not None:
        out.append("umap")
    return out


@dataclass
class Projection:
    """Points of a 2-D map.

    Attributes
    ----------
    xy : ndarray, shape (N, 2)
        Map coordinates of the input rows that were kept.
    rows : ndarray of int
        Which input rows ``xy`` holds (all, unless subsampled).
    query_xy : ndarray, shape (2,), optional
        Where the query lies.
    method : str
    explained_variance : tuple of float
        PCA only: share of the variance along each axis.
    """

    xy: np.ndarray
    rows: np.ndarray
    method: str
    query_xy: np.ndarray | None = None
    explained_variance: tuple[float, ...] = field(default_factory=tuple)


def project(vectors: np.ndarray, method: str = "pca", *, query: np.ndarray | None = None,
            max_points: int = 5000, seed: int = 0, metric: str = "cosine",
            state: TaskState | None = None) -> Projection:
    """Map ``vectors`` (and an optional query vector) to two dimensions.

    Parameters
    ----------
    vectors : ndarray, shape (N, D)
    method : {"pca", "tsne", "umap"}
    query : ndarray, shape (D,), optional
    max_points : int
        Subsample (seeded) above this many rows.
    seed : int
    metric : {"cosine", "l2"}
        The embedding metric (t-SNE and UMAP measure neighbourhoods with it).
    state : TaskState, optional
        Progress and cancellation (checked before the fit; the fit itself
        cannot be interrupted).

    Raises
    ------
    ProjectionUnavailableError
        The method's package is not installed.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    state = ensure_state(state)
    x = np.asarray(vectors, dtype=np.float32)
    rows = np.arange(len(x))
    if len(x) > max_points:
        rows = np.sort(np.random.default_rng(seed).choice(len(x), max_points, replace=False))
    data = x[rows]
    if query is not None:
        data = np.vstack([data, np.asarray(query, np.float32).reshape(1, -1)])
    state.check()
    state.set_progress(0.1, f"{method.upper()} of {len(data)} points")
    if len(data) < 3:
        xy, variance = np.zeros((len(data), 2)), ()
    elif method == "pca":
        xy, variance = _pca(data)
    elif method == "tsne":
        xy, variance = _tsne(data, seed, metric), ()
    else:
        xy, variance = _umap(data, seed, metric), ()
    state.set_progress(1.0, "map ready")
    query_xy = xy[-1] if query is not None else None
    points = xy[:-1] if query is not None else xy
    return Projection(points.astype(np.float32), rows, method, query_xy, variance)


def _pca(data: np.ndarray) -> tuple[np.ndarray, tuple[float, ...]]:
    centred = data.astype(np.float64) - data.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    # Fix each axis' sign (SVD's is arbitrary) so repeated maps look the same.
    signs = np.sign(vt[:2, np.argmax(np.abs(vt[:2]), axis=1)].diagonal())
    xy *= np.where(signs == 0, 1.0, signs)
    if xy.shape[1] < 2:
        xy = np.hstack([xy, np.zeros((len(xy), 2 - xy.shape[1]))])
    total = float((s ** 2).sum()) or 1.0
    return xy, tuple(float(v) for v in (s[:2] ** 2) / total)


def _tsne(data: np.ndarray, seed: int, metric: str) -> np.ndarray:
    try:
        from sklearn.manifold import TSNE
    except ImportError as exc:
        raise ProjectionUnavailableError("t-SNE needs scikit-learn, which is not installed",
                                         hint="install scikit-learn, or use PCA") from exc
    perplexity = float(min(30.0, max(2.0, (len(data) - 1) / 3.0)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                metric="cosine" if metric == "cosine" else "euclidean").fit_transform(data)


def _umap(data: np.ndarray, seed: int, metric: str) -> np.ndarray:
    try:
        import umap
    except ImportError as exc:
        raise ProjectionUnavailableError("UMAP needs the umap-learn package, which is not installed",
                                         hint="install umap-learn, or use PCA or t-SNE") from exc
    neighbours = int(min(15, max(2, len(data) - 1)))
    return umap.UMAP(n_components=2, n_neighbors=neighbours, random_state=seed,
                     metric="cosine" if metric == "cosine" else "euclidean").fit_transform(data)

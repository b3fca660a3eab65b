"""Deletion and insertion: does removing what a map ranks highest change the model's score?

References
----------
Petsiuk V, Das A, Saenko K. "RISE: Randomized Input Sampling for Explanation
of Black-box Models", BMVC 2018, section 4.1.  *Deletion*: remove the most
salient pixels first (here: whole patches, the ViT's unit of input) and
record the class probability; a faithful map makes it fall fast (low area
under the curve).  *Insertion*: start from a blurred image and put the most
salient patches back; a faithful map makes the probability rise fast (high
area).  Deleted patches take the value 0 in the normalised input space (the
training set's mean grey); the insertion canvas is the image blurred with a
Gaussian of sigma = half a patch.

The same curves for random patch orders are returned as the reference: a map
is informative only where it beats them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from medviewer.tasks import TaskState, ensure_state

# (B, C, S, S) batch -> (B,) score of the explained label (a probability)
ScoreFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class FaithfulnessCurves:
    """Deletion and insertion curves of one map on one image.

    Attributes
    ----------
    fractions : np.ndarray
        Share of patches removed (deletion) or inserted (insertion) at each step.
    deletion, insertion : np.ndarray
        Score at each step.
    deletion_auc, insertion_auc : float
        Areas under the curves (x from 0 to 1): lower deletion and higher
        insertion mean a more faithful map.
    random_deletion_auc, random_insertion_auc : float
        The same for random patch orders (mean over ``random_orders``).
    """

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_auc: float
    insertion_auc: float
    random_deletion_auc: float
    random_insertion_auc: float

    def to_dict(self) -> dict:
        """Return the areas (and the curves) as JSON-friendly data."""
        return {
            "deletion_auc": round(self.deletion_auc, 4),
            "insertion_auc": round(self.insertion_auc, 4),
            "random_deletion_auc": round(self.random_deletion_auc, 4),
            "random_insertion_auc": round(self.random_insertion_auc, 4),
            "fractions": [round(float(x), 4) for x in self.fractions],
            "deletion": [round(float(x), 4) for x in self.deletion],
            "insertion": [round(float(x), 4) for x in self.insertion],
        }


def auc(x: np.ndarray, y: np.ndarray) -> float:
    """Return the trapezoidal area under y(x)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def blurred(tensor: np.ndarray, sigma: float) -> np.ndarray:
    """Return a (C, H, W) tensor blurred per channel with a Gaussian of ``sigma`` pixels."""
    from scipy.ndimage import gaussian_filter

    return np.stack([gaussian_filter(ch, sigma, mode="nearest") for ch in tensor]).astype(np.float32)


def _curve(start: np.ndarray, source: np.ndarray, order: np.ndarray, counts: np.ndarray,
           grid: tuple[int, int], score_fn: ScoreFn, batch_size: int, state: TaskState) -> np.ndarray:
    """Scores of ``start`` with the first counts[k] patches of ``order`` taken from ``source``."""
    _, height, width = start.shape
    ph, pw = height // grid[0], width // grid[1]
    scores = []
    for begin in range(0, len(counts), batch_size):
        state.check()
        chunk = counts[begin:begin + batch_size]
        batch = np.repeat(start[None], len(chunk), axis=0)
        for i, n in enumerate(chunk):
            for patch in order[:n]:
                r, c = divmod(int(patch), grid[1])
                batch[i, :, r * ph:(r + 1) * ph, c * pw:(c + 1) * pw] = \
                    source[:, r * ph:(r + 1) * ph, c * pw:(c + 1) * pw]
        scores.append(np.asarray(score_fn(batch), dtype=np.float64).reshape(-1))
    return np.concatenate(scores)


def deletion_insertion(tensor: np.ndarray, grid_map: np.ndarray, score_fn: ScoreFn, *,
                       steps: int = 32, random_orders: int = 3, seed: int = 0, batch_size: int = 33,
                       state: TaskState | None = None) -> FaithfulnessCurves:
    """Return the deletion and insertion curves of a patch-grid map (Petsiuk et al. 2018).

    Parameters
    ----------
    tensor : np.ndarray
        The preprocessed image, (C, S, S).
    grid_map : np.ndarray
        (grid rows, grid cols) saliency; higher = more important.
    score_fn : callable
        (B, C, S, S) batch -> (B,) probability of the explained label.
    steps : int
        Points on each curve after the first (at most the number of patches).
    random_orders : int
        Random patch orders averaged for the reference areas.
    seed : int
        Seed of the random orders.
    batch_size : int
        Images per model call.
    state : TaskState, optional
        Progress and cancellation.
    """
    state = ensure_state(state)
    tensor = np.asarray(tensor, dtype=np.float32)
    grid = tuple(int(v) for v in np.shape(grid_map))
    patches = grid[0] * grid[1]
    steps = max(1, min(int(steps), patches))
    counts = np.round(np.linspace(0, patches, steps + 1)).astype(int)
    fractions = counts / patches
    # Stable sort: equal values keep raster order, so the result is deterministic.
    order = np.argsort(-np.asarray(grid_map, dtype=np.float64).ravel(), kind="stable")
    deleted = np.zeros_like(tensor)
    canvas = blurred(tensor, sigma=0.5 * tensor.shape[1] / grid[0])
    curves = 2 * (1 + random_orders)
    done = 0

    def run(start, source, patch_order):
        nonlocal done
        values = _curve(start, source, patch_order, counts, grid, score_fn, batch_size, state)
        done += 1
        state.set_progress(done / curves, "deletion / insertion")
        return values

    deletion = run(tensor, deleted, order)
    insertion = run(canvas, tensor, order)
    rng = np.random.default_rng(seed)
    random_del, random_ins = [], []
    for _ in range(random_orders):
        shuffled = rng.permutation(patches)
        random_del.append(auc(fractions, run(tensor, deleted, shuffled)))
        random_ins.append(auc(fractions, run(canvas, tensor, shuffled)))
    return FaithfulnessCurves(
        fractions, deletion, insertion, auc(fractions, deletion), auc(fractions, insertion),
        float(np.mean(random_del)) if random_del else float("nan"),
        float(np.mean(random_ins)) if random_ins else float("nan"),
    )

"""Class-specific saliency without gradients: occlusion of patch windows, batched through ONNX Runtime.

References
----------
Zeiler MD, Fergus R. "Visualizing and Understanding Convolutional Networks",
ECCV 2014 (occlusion sensitivity).
Selvaraju RR et al. "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization", ICCV 2017 (the gradient reference this map is
compared with in ``tests/test_explain_gradcam.py``; gradients are not in an
inference graph, so the app uses occlusion).

A window of ``window`` x ``window`` patches, aligned with the ViT's patch grid,
slides with a stride of ``stride`` patches (windows that overhang the border
are clipped, so edge patches are covered as often as central ones).  The
window is filled with ``fill`` in the model's normalised input space (0 = the
training set's mean grey), i.e. those tokens see a flat mean-grey patch.  A
patch's saliency is the mean drop of the label's logit over the windows that
cover it: positive where hiding the patch lowers the score (evidence for the
label), negative where it raises it (evidence against).  A window of 2 patches
catches evidence that spans patch borders, which single patches miss when the
rest of an object still suffices (see docs/explain.md).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from medviewer.tasks import TaskState, ensure_state

# logits of a (B, C, S, S) float32 batch -> (B, K)
LogitsFn = Callable[[np.ndarray], np.ndarray]


def occlusion_windows(grid: tuple[int, int], window: int = 2,
                      stride: int = 1) -> list[tuple[int, int, int, int]]:
    """Return the (row0, row1, col0, col1) patch ranges of every window, clipped to the grid."""
    if window < 1 or stride < 1:
        raise ValueError("window and stride must be at least 1")
    rows, cols = grid
    starts_r = range(-window + 1, rows, stride)
    starts_c = range(-window + 1, cols, stride)
    boxes = []
    for r in starts_r:
        for c in starts_c:
            r0, r1, c0, c1 = max(r, 0), min(r + window, rows), max(c, 0), min(c + window, cols)
            if r1 > r0 and c1 > c0:
                boxes.append((r0, r1, c0, c1))
    return boxes


def occlusion_map(tensor: np.ndarray, logits_fn: LogitsFn, label_index: int, grid: tuple[int, int], *,
                  window: int = 2, stride: int = 1, fill: float | np.ndarray = 0.0, batch_size: int = 32,
                  state: TaskState | None = None) -> tuple[np.ndarray, float]:
    """Return (signed saliency (grid rows, grid cols), the unoccluded logit) for one label.

    Parameters
    ----------
    tensor : np.ndarray
        One preprocessed image, (C, S, S) float32.
    logits_fn : callable
        Runs a (B, C, S, S) batch and returns (B, K) logits.
    label_index : int
        Which logit to explain.
    grid : tuple of int
        The patch grid.
    window, stride : int
        Window side and step, in patches.
    fill : float or np.ndarray
        Value written into the occluded pixels (normalised input space), or a
        (C, S, S) replacement image (e.g. a blurred copy).
    batch_size : int
        Occluded copies per ONNX Runtime call.
    state : TaskState, optional
        Progress; cancellation is checked between batches.
    """
    state = ensure_state(state)
    tensor = np.asarray(tensor, dtype=np.float32)
    _, height, width = tensor.shape
    ph, pw = height // grid[0], width // grid[1]
    boxes = occlusion_windows(grid, window, stride)
    base = float(np.asarray(logits_fn(tensor[None]))[0, label_index])
    total = np.zeros(grid, dtype=np.float64)
    count = np.zeros(grid, dtype=np.float64)
    for start in range(0, len(boxes), batch_size):
        state.check()
        chunk = boxes[start:start + batch_size]
        batch = np.repeat(tensor[None], len(chunk), axis=0)
        for i, (r0, r1, c0, c1) in enumerate(chunk):
            rows, cols = slice(r0 * ph, r1 * ph), slice(c0 * pw, c1 * pw)
            batch[i, :, rows, cols] = fill[:, rows, cols] if np.ndim(fill) else fill
        scores = np.asarray(logits_fn(batch))[:, label_index]
        for (r0, r1, c0, c1), score in zip(chunk, scores):
            total[r0:r1, c0:c1] += base - float(score)
            count[r0:r1, c0:c1] += 1.0
        done = min(len(boxes), start + batch_size)
        state.set_progress(done / len(boxes), f"occlusion {done}/{len(boxes)}")
    return total / np.maximum(count, 1.0), base

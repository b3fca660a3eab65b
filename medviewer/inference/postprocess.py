"""Turn model outputs into what users read: probabilities, values, unit embeddings."""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Return the logistic function of ``x`` without overflow warnings."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Return the softmax of ``x`` along ``axis`` (max-shifted for stability)."""
    x = np.asarray(x, dtype=np.float64)
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def task_outputs(logits: np.ndarray, task: str) -> np.ndarray:
    """Return per-label scores for a task.

    ``multilabel``: one sigmoid per label (independent findings);
    ``multiclass``: softmax over labels; ``regression``: the raw values.
    """
    if task == "multilabel":
        return sigmoid(logits)
    if task == "multiclass":
        return softmax(logits, axis=-1)
    if task == "regression":
        return np.asarray(logits, dtype=np.float64)
    raise ValueError(f"unknown task {task!r}")


def l2_normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Return rows scaled to unit length, so a dot product is the cosine similarity."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, eps)

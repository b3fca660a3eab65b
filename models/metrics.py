"""Evaluation metrics per task: ROC AUC per finding, accuracy, mean absolute error."""

from __future__ import annotations

import numpy as np


def evaluate(task: str, names: list[str], outputs: np.ndarray, targets: np.ndarray,
             masks: np.ndarray) -> dict[str, float]:
    """Return metrics for model outputs (logits or values) against targets.

    Multi-label: ``auc/<name>`` per finding over its masked rows (positives vs
    its negatives), ``auc_mean``, ``accuracy_mean`` at probability 0.5.
    Multi-class: ``accuracy``, ``auc_macro`` (one-vs-rest).  Regression:
    ``mae``.  The ``score`` key is what model selection maximises.
    """
    from sklearn.metrics import roc_auc_score

    out: dict[str, float] = {}
    if task == "regression":
        valid = masks[:, 0] > 0
        out["mae"] = float(np.abs(outputs[valid, 0] - targets[valid, 0]).mean()) if valid.any() else float("nan")
        out["score"] = -out["mae"]
        return out
    if task == "multiclass":
        valid = masks[:, 0] > 0
        pred, true = outputs[valid].argmax(1), targets[valid].argmax(1)
        out["accuracy"] = float((pred == true).mean()) if valid.any() else float("nan")
        try:
            probs = _softmax(outputs[valid])
            if probs.shape[1] == 2:
                out["auc_macro"] = float(roc_auc_score(true, probs[:, 1]))
            else:
                out["auc_macro"] = float(roc_auc_score(true, probs, multi_class="ovr"))
        except ValueError:
            out["auc_macro"] = float("nan")
        out["score"] = out["accuracy"]
        return out
    aucs, accs = [], []
    for i, name in enumerate(names):
        valid = masks[:, i] > 0
        y, s = targets[valid, i], outputs[valid, i]
        auc = float(roc_auc_score(y, s)) if valid.any() and 0 < y.sum() < len(y) else float("nan")
        out[f"auc/{name}"] = auc
        out[f"n_pos/{name}"] = float(y.sum())
        out[f"n_neg/{name}"] = float(len(y) - y.sum())
        aucs.append(auc)
        accs.append(float(((s > 0) == (y > 0.5)).mean()) if valid.any() else float("nan"))
    out["auc_mean"] = float(np.nanmean(aucs)) if not np.all(np.isnan(aucs)) else float("nan")
    out["accuracy_mean"] = float(np.nanmean(accs)) if not np.all(np.isnan(accs)) else float("nan")
    out["score"] = out["auc_mean"]
    return out


def bootstrap_auc_ci(y: np.ndarray, s: np.ndarray, n_boot: int = 1000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float]:
    """Return a percentile bootstrap confidence interval for the ROC AUC."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if 0 < y[idx].sum() < len(idx):
            stats.append(roc_auc_score(y[idx], s[idx]))
    if not stats:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)

"""Similarity of two saliency maps: Spearman and Pearson correlation, SSIM.

References
----------
Adebayo J et al. "Sanity Checks for Saliency Maps", NeurIPS 2018: maps of a
model and of its randomised copy are compared by Spearman rank correlation
and by the structural similarity index (SSIM).
Wang Z, Bovik AC, Sheikh HR, Simoncelli EP. "Image quality assessment: from
error visibility to structural similarity", IEEE TIP 2004 (SSIM: Gaussian
window sigma 1.5, K1 = 0.01, K2 = 0.03; here the data range is 1 because maps
are scaled to [0, 1]).
"""

from __future__ import annotations

import numpy as np


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Return the Pearson correlation of two maps (NaN when either is constant)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"maps differ in size: {a.shape} vs {b.shape}")
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Return the Spearman rank correlation of two maps (ties get their average rank)."""
    from scipy.stats import rankdata

    return pearson(rankdata(np.ravel(a)), rankdata(np.ravel(b)))


def ssim(a: np.ndarray, b: np.ndarray, *, data_range: float = 1.0, sigma: float = 1.5) -> float:
    """Return the mean structural similarity of two 2-D maps (Wang et al. 2004)."""
    from scipy.ndimage import gaussian_filter

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"SSIM needs two 2-D maps of one size, got {a.shape} and {b.shape}")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return gaussian_filter(x, sigma, mode="reflect", truncate=3.5)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(index.mean())

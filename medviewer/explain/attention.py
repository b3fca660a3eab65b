"""Attention maps of a Vision Transformer: attention rollout and the raw attention of one block.

References
----------
Abnar S, Zuidema W. "Quantifying Attention Flow in Transformers", ACL 2020,
arXiv:2005.00928.  Rollout: with A_l the (head-fused) attention of block l,
the residual connection is accounted for as ``0.5 * A_l + 0.5 * I`` (rows
re-normalised), and the blocks are chained, ``R = Â_L ... Â_2 Â_1``.  The
class token's row of ``R`` over the patch tokens is the map.
Gildenblat J. "Exploring Explainability for Vision Transformers" (2020) and
``jacobgil/vit-explain``: head fusion by mean, max or min, and a *discard
ratio* that zeroes the lowest attention weights of each fused matrix (never the
class token's attention to itself) before rollout.

Inputs are the ``attention`` outputs a bundle exports: (N, L, H, T, T) softmax
probabilities, prefix (class) tokens first, then the patches row-major.
"""

from __future__ import annotations

import numpy as np

FUSIONS = ("mean", "max", "min")


def fuse_heads(attention: np.ndarray, fusion: str = "mean") -> np.ndarray:
    """Fuse the head axis (-3) of attention probabilities by ``mean``, ``max`` or ``min``."""
    if fusion not in FUSIONS:
        raise ValueError(f"head fusion must be one of {FUSIONS}, not {fusion!r}")
    return getattr(np, fusion)(attention, axis=-3)


def _discard_lowest(fused: np.ndarray, ratio: float) -> np.ndarray:
    """Zero the ``ratio`` lowest weights of each (T, T) matrix, keeping [0, 0] (vit-explain)."""
    if ratio <= 0.0:
        return fused
    out = fused.copy()
    t = fused.shape[-1]
    flat = out.reshape(-1, t * t)
    count = int(t * t * ratio)
    if count == 0:
        return fused
    lowest = np.argpartition(flat, count - 1, axis=1)[:, :count]
    keep_cls = lowest != 0  # element [0, 0]: the class token attending to itself
    rows = np.repeat(np.arange(flat.shape[0])[:, None], count, axis=1)
    flat[rows[keep_cls], lowest[keep_cls]] = 0.0
    return out


def attention_rollout(attention: np.ndarray, *, fusion: str = "mean", discard_ratio: float = 0.0,
                      num_prefix_tokens: int = 1, start_block: int = 0, pool: str = "token") -> np.ndarray:
    """Return the rollout of the class token over the patches, (N, P) (Abnar and Zuidema 2020).

    Parameters
    ----------
    attention : np.ndarray
        (N, L, H, T, T) or (L, H, T, T) attention probabilities.
    fusion : str
        Head fusion: ``mean`` (the paper), ``max`` or ``min``.
    discard_ratio : float
        Share of the lowest fused weights zeroed in every block, 0 <= r < 1.
    num_prefix_tokens : int
        Class/register tokens before the patches; row 0 (the class token) is read.
    start_block : int
        First block included (0: all).
    pool : str
        The model's pooling: ``token`` reads the class token's row; ``avg``
        (mean-pooled patch tokens feed the head) averages the patch rows.

    Returns
    -------
    np.ndarray
        (N, P) non-negative values, P = T - num_prefix_tokens; one row per image.
    """
    attention = np.asarray(attention, dtype=np.float32)
    single = attention.ndim == 4
    if single:
        attention = attention[None]
    if attention.ndim != 5 or attention.shape[-1] != attention.shape[-2]:
        raise ValueError(f"attention must be (N, L, H, T, T), got {attention.shape}")
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard_ratio must be in [0, 1), not {discard_ratio}")
    n, depth, _, t, _ = attention.shape
    eye = np.eye(t, dtype=np.float32)
    # Only the read-out rows of R = A_L ... A_1 are needed, so they are carried as row
    # vectors from the last block down: L vector-matrix products instead of L matrix
    # products (the same result; 197 tokens of ViT-S cost microseconds, not milliseconds).
    if pool == "avg":
        rows = np.zeros((n, t), np.float32)
        rows[:, num_prefix_tokens:] = 1.0 / (t - num_prefix_tokens)
    else:
        rows = np.zeros((n, t), np.float32)
        rows[:, 0] = 1.0
    heads = attention.shape[2]
    for block in range(depth - 1, start_block - 1, -1):
        if fusion == "mean" and discard_ratio == 0.0:
            # The paper's setting: softmax rows sum to 1, so (mean_h A + I) / 2 needs no
            # re-normalising and the row update is one pass over the heads (4x faster).
            rows = 0.5 * np.einsum("nt,nhts->ns", rows, attention[:, block]) / heads + 0.5 * rows
            continue
        fused = _discard_lowest(fuse_heads(attention[:, block], fusion), discard_ratio)
        # The residual stream carries the token itself: half attention, half identity.
        mixed = 0.5 * fused + 0.5 * eye
        mixed /= mixed.sum(axis=-1, keepdims=True)
        rows = np.einsum("nt,nts->ns", rows, mixed)
    rows = rows[:, num_prefix_tokens:].astype(np.float64)
    return rows[0] if single else rows


def raw_attention(attention: np.ndarray, block: int = -1, head: int | None = None, *,
                  num_prefix_tokens: int = 1) -> np.ndarray:
    """Return the class token's attention to each patch in one block, (N, P).

    Parameters
    ----------
    attention : np.ndarray
        (N, L, H, T, T) attention probabilities.
    block : int
        Block index (negative counts from the last).
    head : int, optional
        Head index; None averages the heads.
    """
    attention = np.asarray(attention)
    depth, heads = attention.shape[1], attention.shape[2]
    if not -depth <= block < depth:
        raise ValueError(f"block {block} out of range: the model has {depth} blocks (0..{depth - 1})")
    chosen = attention[:, block]
    if head is None:
        rows = chosen[:, :, 0, num_prefix_tokens:].mean(axis=1)
    else:
        if not -heads <= head < heads:
            raise ValueError(f"head {head} out of range: the model has {heads} heads (0..{heads - 1})")
        rows = chosen[:, head, 0, num_prefix_tokens:]
    return rows.astype(np.float64)

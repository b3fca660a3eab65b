"""Why two cases are similar: paired patch maps from the final patch tokens.

Each query patch token is compared (cosine) with every patch token of the
other image; its value is its best match there, and vice versa.  A bright
patch has a close counterpart in the other image; a dark one has none.  This
is a token-level illustration (in the spirit of patch matching over ViT
features, e.g. Amir et al., "Deep ViT Features as Dense Visual Descriptors",
2021); the retrieval ranking itself uses the pooled embedding, so the maps
show which regions look alike to the model, not why the ranking came out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PatchMatches:
    """Best cosine matches between the patches of two images.

    Attributes
    ----------
    query_best, other_best : np.ndarray
        (P,) best cosine of each patch in the other image.
    query_match, other_match : np.ndarray
        (P,) index of that best match.
    """

    query_best: np.ndarray
    other_best: np.ndarray
    query_match: np.ndarray
    other_match: np.ndarray


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)


def patch_matches(query_tokens: np.ndarray, other_tokens: np.ndarray,
                  num_prefix_tokens: int = 1) -> PatchMatches:
    """Return each patch's best cosine match in the other image, both ways.

    Parameters
    ----------
    query_tokens, other_tokens : np.ndarray
        (T, d) final tokens of each image (prefix tokens first).
    num_prefix_tokens : int
        Tokens to skip before the patches.
    """
    q = _unit(query_tokens[num_prefix_tokens:])
    o = _unit(other_tokens[num_prefix_tokens:])
    # einsum, not BLAS: BLAS threads keep spinning after a call and slow the next model run.
    cos = np.einsum("id,jd->ij", q, o)
    return PatchMatches(cos.max(axis=1), cos.max(axis=0), cos.argmax(axis=1), cos.argmax(axis=0))

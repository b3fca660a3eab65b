"""Is this image unusual for the model?  An out-of-distribution percentile from training embeddings.

References
----------
Sun Y, Ming Y, Zhu X, Li Y. "Out-of-Distribution Detection with Deep Nearest
Neighbors", ICML 2022: the distance of a normalised embedding to its k-th
nearest training embedding separates in- from out-of-distribution inputs.

At export (``models/trust_export.py``) the bundle stores a reference set of
l2-normalised training embeddings (``ood_reference.npy``, float16) and the
distribution of the score on held-out in-domain images (101 quantiles).  The
score is the mean cosine distance to the ``k`` nearest reference embeddings;
the percentile is the share of held-out in-domain images with a lower score.

Beside it, the same k-NN score on a pixel signature (the display image as a
16 x 16 grey thumbnail, centred and unit length; ``ood_pixels.npy``): a model
can map an image of another kind close to its training embeddings (measured:
the demo model), while the pixels still show it is of another kind.  The
combined percentile is that of ``max(embedding percentile, pixel
percentile)`` among held-out in-domain images, so the threshold keeps its
meaning (5 % of in-domain images flagged at 95).
"Unusual for this model" is a percentile at or above the threshold chosen on
held-out data (95: five in a hundred in-domain images are flagged).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medviewer.inference.errors import BundleMetadataError, ChecksumMismatchError


@dataclass(frozen=True)
class OodReference:
    """The compact summary of a model's training embeddings, and its held-out calibration.

    Attributes
    ----------
    reference : np.ndarray
        (N, d) float32, l2-normalised training embeddings.
    quantiles : np.ndarray
        (101,) held-out in-domain scores at percentiles 0, 1, ..., 100.
    k : int
        Neighbours averaged in the score.
    threshold : float
        Percentile at or above which an image is "unusual for this model".
    best_match_quantiles : np.ndarray or None
        (101,) held-out best-match cosine similarities (to the reference) at
        percentiles 0..100, to say when a query's best library match is weak.
    """

    reference: np.ndarray
    quantiles: np.ndarray
    k: int = 5
    threshold: float = 95.0
    best_match_quantiles: np.ndarray | None = None
    pixel_reference: np.ndarray | None = None
    pixel_quantiles: np.ndarray | None = None
    combined_quantiles: np.ndarray | None = None

    @classmethod
    def from_bundle(cls, bundle) -> OodReference | None:
        """Return the bundle's summary, or None for a bundle exported without one.

        Raises
        ------
        ChecksumMismatchError
            The reference file differs from the one exported.
        BundleMetadataError
            The ``ood`` block or its file is unusable.
        """
        from medviewer.fileio import sha256_file

        block = bundle.metadata.get("ood")
        if not isinstance(block, dict):
            return None
        path = Path(bundle.path) / str(block.get("file", ""))
        if not path.is_file() or path.parent != Path(bundle.path):
            raise BundleMetadataError(f"the out-of-distribution reference {block.get('file')!r} is missing",
                                      path=bundle.path, hint="re-export the bundle with `python -m models.export`")
        if block.get("sha256") and sha256_file(path) != block["sha256"]:
            raise ChecksumMismatchError(f"{path.name} differs from the file exported", path=path,
                                        hint="restore the bundle folder or re-export it")
        reference = np.load(path, allow_pickle=False).astype(np.float32)
        quantiles = np.asarray(block.get("quantiles", []), np.float64)
        if reference.ndim != 2 or len(quantiles) != 101:
            raise BundleMetadataError("the out-of-distribution summary is malformed", path=bundle.path,
                                      hint="re-export the bundle with `python -m models.export`")
        best = block.get("best_match_quantiles")
        pixels = block.get("pixels")
        pixel_reference = pixel_q = combined_q = None
        if isinstance(pixels, dict):
            pixel_path = Path(bundle.path) / str(pixels.get("file", ""))
            if not pixel_path.is_file() or (pixels.get("sha256") and sha256_file(pixel_path) != pixels["sha256"]):
                raise ChecksumMismatchError(f"{pixels.get('file')} is missing or differs from the file exported",
                                            path=pixel_path, hint="restore the bundle folder or re-export it")
            pixel_reference = np.load(pixel_path, allow_pickle=False).astype(np.float32)
            pixel_q = np.asarray(pixels["quantiles"], np.float64)
            combined_q = np.asarray(pixels["combined_quantiles"], np.float64)
        return cls(reference, quantiles, int(block.get("k", 5)), float(block.get("threshold_percentile", 95)),
                   None if best is None else np.asarray(best, np.float64), pixel_reference, pixel_q, combined_q)

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """Return each embedding's mean cosine distance to its ``k`` nearest reference embeddings."""
        emb = np.asarray(embeddings, np.float32).reshape(-1, self.reference.shape[1])
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        sims = emb @ self.reference.T
        k = min(self.k, sims.shape[1])
        top = -np.sort(-sims, axis=1)[:, :k]
        return 1.0 - top.mean(axis=1)

    def best_similarity(self, embeddings: np.ndarray) -> np.ndarray:
        """Return each embedding's cosine similarity to its nearest reference embedding."""
        emb = np.asarray(embeddings, np.float32).reshape(-1, self.reference.shape[1])
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return (emb @ self.reference.T).max(axis=1)

    def percentiles(self, embeddings: np.ndarray, images: list[np.ndarray] | None = None) -> np.ndarray:
        """Return the out-of-distribution percentile (0-100) of each embedding (and display image).

        With the images and a pixel reference in the bundle, the percentile is
        the combined one (see the module docstring).
        """
        emb = percentile_of(self.scores(embeddings), self.quantiles)
        if images is None or self.pixel_reference is None:
            return emb
        pix = percentile_of(knn_distance(pixel_signatures(images), self.pixel_reference, self.k), self.pixel_quantiles)
        return percentile_of(np.maximum(emb, pix), self.combined_quantiles)

    def best_match_words(self, similarity: float) -> str | None:
        """Return a sentence when a best match is weaker than in-domain queries usually get, else None."""
        if self.best_match_quantiles is None:
            return None
        low = float(self.best_match_quantiles[5])
        if similarity >= low:
            return None
        share = 100 - percentile_of(np.array([similarity]), self.best_match_quantiles)[0]
        return (f"the best match (similarity {similarity:.2f}) is weaker than {share:.0f}% of in-domain "
                f"queries' best matches (5th percentile {low:.2f}): treat these neighbours with caution")

    def describe(self) -> dict[str, Any]:
        """Return the summary's size and calibration for the CLI and the card."""
        return {"reference_embeddings": int(len(self.reference)), "k": self.k,
                "threshold_percentile": self.threshold,
                "threshold_score": float(np.interp(self.threshold, np.arange(101), self.quantiles))}


def percentile_of(scores: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Return the percentile (0-100) of each score within a distribution given by 101 quantiles."""
    q = np.maximum.accumulate(np.asarray(quantiles, np.float64))  # interp needs non-decreasing x
    return np.interp(np.asarray(scores, np.float64), q, np.arange(101.0), left=0.0, right=100.0)


def knn_distance(queries: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    """Return each unit query's mean cosine distance to its ``k`` nearest unit reference vectors."""
    sims = np.asarray(queries, np.float32) @ np.asarray(reference, np.float32).T
    k = min(k, sims.shape[1])
    return 1.0 - (-np.sort(-sims, axis=1)[:, :k]).mean(axis=1)


SIGNATURE_SIDE = 16


def pixel_signatures(images: list[np.ndarray]) -> np.ndarray:
    """Return (N, 256) pixel signatures: each display image as a 16 x 16 grey thumbnail, centred, unit length."""
    from PIL import Image

    out = []
    for image in images:
        arr = np.asarray(image)
        grey = arr if arr.ndim == 2 else arr[..., :3].astype(np.float32).mean(-1)
        small = Image.fromarray(np.asarray(grey, np.float32)).resize((SIGNATURE_SIDE, SIGNATURE_SIDE),
                                                                      Image.Resampling.BILINEAR)
        vec = np.asarray(small, np.float64).ravel()
        vec = vec - vec.mean()
        out.append(vec / max(np.linalg.norm(vec), 1e-9))
    return np.stack(out).astype(np.float32)

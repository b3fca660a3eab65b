"""What turns display images into vectors: a model bundle, or raw pixels (the baseline).

An embedder has an ``identity`` (64 hex digits: the bundle's fingerprint of its weights
and preprocessing, or
a fixed digest for the pixel baseline) that names its index folder, so
vectors of different models never mix; a ``metric`` and a ``dim`` that the
index is checked against; and ``embed(images, state)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from medviewer.tasks import TaskState, ensure_state


class Embedder(Protocol):
    """Anything that embeds display images (see the module docstring)."""

    identity: str
    name: str
    metric: str
    dim: int

    def embed(self, images: Sequence[np.ndarray], state: TaskState | None = None) -> np.ndarray:
        """Return (N, dim) float32 vectors of ``images``."""
        ...


class RunnerEmbedder:
    """The ``embedding`` output of a model bundle, run by a :class:`~medviewer.inference.ModelRunner`.

    The metric is the one the bundle declares (``embedding.metric``, cosine
    when absent); for cosine the vectors are L2-normalised.
    """

    def __init__(self, runner) -> None:
        self.runner = runner
        bundle = runner.bundle
        self.identity = str(runner.fingerprint).lower()
        self.name = bundle.name + ("" if runner.variant == "fp32" else f" ({runner.variant})")
        self.metric = str(bundle.metadata.get("embedding", {}).get("metric", "cosine"))
        self.dim = int(bundle.embedding_dim)

    def embed(self, images: Sequence[np.ndarray], state: TaskState | None = None) -> np.ndarray:
        """Return (N, dim) float32 embeddings, unit length for the cosine metric."""
        return self.runner.embed(images, state, normalise=self.metric == "cosine")


class PixelEmbedder:
    """Downsampled raw pixels as the embedding: what older tools search by (the baseline).

    Each image is taken to [0, 1] as displayed, resized to ``size`` x ``size``
    (bilinear, antialiased, aspect ratio not kept) and flattened; the metric
    is Euclidean.
    """

    def __init__(self, size: int = 32) -> None:
        self.size = int(size)
        self.name = f"raw pixels {self.size}x{self.size}"
        self.identity = hashlib.sha256(f"medviewer-pixel-baseline-v1:{self.size}".encode()).hexdigest()
        self.metric = "l2"
        self.dim = self.size * self.size

    def embed(self, images: Sequence[np.ndarray], state: TaskState | None = None) -> np.ndarray:
        """Return (N, size * size) float32 pixel vectors."""
        from PIL import Image

        from medviewer.inference.preprocess import to_unit_range

        state = ensure_state(state)
        out = np.zeros((len(images), self.dim), np.float32)
        for i in range(len(images)):
            if i % 64 == 0:
                state.check()
            unit = to_unit_range(images[i], "display")
            # A float32 array becomes a Pillow "F" image: no 8-bit rounding; resize antialiases.
            small = Image.fromarray(np.ascontiguousarray(unit, np.float32)).resize(
                (self.size, self.size), Image.Resampling.BILINEAR)
            out[i] = np.asarray(small, np.float32).ravel()
            state.set_progress((i + 1) / max(len(images), 1))
        return out

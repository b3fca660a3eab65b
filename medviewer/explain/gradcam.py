"""Grad-CAM through ONNX Runtime alone, from the gradient graph a bundle carries.

References
----------
Selvaraju et al., "Grad-CAM", ICCV 2017, eq. 1-2: ``alpha_k = mean over
patches of d y_c / d A_k``, map ``= ReLU(sum_k alpha_k A_k)``, with ``A`` the
last block's ``norm1`` output at the patch tokens (pytorch-grad-cam's ViT
recipe; the retrieval paper's Supplemental Figure 2).

``models/gradcam_graph.py`` exports ``gradcam.onnx`` (inputs ``image`` and a
per-class weight row ``target``; outputs ``logits``, the activations and the
gradient of ``target . logits`` with respect to them) and records its parity
with torch autograd in ``metadata.json`` ``gradcam.parity``.  A bundle
without it (exported before) has no Grad-CAM: :class:`GradcamUnavailableError`
says so, and the explainer falls back to occlusion when asked to.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from medviewer.inference.errors import BundleError, ChecksumMismatchError


class GradcamUnavailableError(BundleError):
    """The bundle carries no Grad-CAM gradient graph (exported before it existed, or unsupported)."""


class GradcamGraph:
    """The bundle's Grad-CAM graph in an ONNX Runtime session (created on first use, thread-safe).

    Parameters
    ----------
    bundle : Bundle
    provider : str or list of str
        Execution provider preference, as for :class:`~medviewer.inference.ModelRunner`.
    threads : int, optional

    Raises
    ------
    GradcamUnavailableError
        The bundle has no ``gradcam`` block.
    """

    def __init__(self, bundle, provider="cpu", threads: int | None = None) -> None:
        block = bundle.metadata.get("gradcam")
        if not isinstance(block, dict) or not block.get("file"):
            raise GradcamUnavailableError(
                "this bundle has no Grad-CAM gradient graph (it was exported before Grad-CAM support)",
                path=bundle.path, hint="use occlusion (--method occlusion), or re-export the bundle with "
                                       "`python -m models.export`")
        self.bundle = bundle
        self.block = block
        self.path = Path(bundle.path) / str(block["file"])
        self.provider_preference = provider
        self.threads = threads
        self._session = None
        self._lock = threading.Lock()
        arch = bundle.metadata["architecture"]
        self.prefix = int(arch.get("num_prefix_tokens", 1))
        self.grid = (int(arch["grid"][0]), int(arch["grid"][1]))

    @property
    def parity(self) -> dict:
        """Return the export's parity record against torch Grad-CAM."""
        return dict(self.block.get("parity", {}))

    def session(self):
        """Return the ONNX Runtime session, verifying the file's sha256 the first time."""
        with self._lock:
            if self._session is None:
                from medviewer.fileio import sha256_file
                from medviewer.inference.session import create_session

                if self.path.parent != Path(self.bundle.path) or not self.path.is_file():
                    raise GradcamUnavailableError(f"the Grad-CAM graph {self.path.name} is missing",
                                                  path=self.bundle.path, hint="re-export the bundle")
                if self.block.get("sha256") and sha256_file(self.path) != self.block["sha256"]:
                    raise ChecksumMismatchError(f"{self.path.name} differs from the file exported",
                                                path=self.path, hint="restore the bundle folder or re-export it")
                self._session, _ = create_session(self.path, self.provider_preference, threads=self.threads)
            return self._session

    def run(self, tensor: np.ndarray, label_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (logits (B, K), activations, gradients (B, T, d)) for a preprocessed batch and one class."""
        batch = np.ascontiguousarray(tensor, np.float32)
        if batch.ndim == 3:
            batch = batch[None]
        target = np.zeros((len(batch), len(self.bundle.labels)), np.float32)
        target[:, label_index] = 1.0
        names = [self.block["outputs"][k] for k in ("logits", "activations", "gradients")]
        inputs = self.block.get("inputs", {"image": "image", "target": "target"})
        logits, acts, grads = self.session().run(names, {inputs["image"]: batch, inputs["target"]: target})
        return logits, acts, grads

    def cam(self, tensor: np.ndarray, label_index: int, relu: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Return (Grad-CAM grid maps (B, rows, cols), logits (B, K)) of one class."""
        logits, acts, grads = self.run(tensor, label_index)
        return cam_from_gradients(acts, grads, self.prefix, self.grid, relu=relu), logits


def cam_from_gradients(activations: np.ndarray, gradients: np.ndarray, prefix: int,
                       grid: tuple[int, int], relu: bool = True) -> np.ndarray:
    """Return Grad-CAM maps (B, rows, cols): ReLU(sum_k mean_patches(dA_k) A_k) over the patch tokens."""
    acts = np.asarray(activations, np.float64)[:, prefix:]
    grads = np.asarray(gradients, np.float64)[:, prefix:]
    cam = (grads.mean(axis=1, keepdims=True) * acts).sum(-1)
    if relu:
        cam = np.maximum(cam, 0.0)
    return cam.reshape(-1, *grid)

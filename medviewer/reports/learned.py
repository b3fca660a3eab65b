"""The text side of an image-text bundle: encode phrases and report sentences with ONNX Runtime.

An image-text bundle (``models.prior_export``) is a normal bundle whose
``metadata.json`` has an ``image_text`` block: a text encoder ONNX file, a
``tokenizers`` tokenizer file (both with their sha256), and the outputs that
share one cosine space (image ``embedding``, patch ``tokens``,
``text_embedding``).  No torch: ``tokenizers`` is a Rust library.

The image side is searched through the bundle's ordinary FAISS index
(``medviewer index build``), so a phrase is one more query vector.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medviewer.inference.errors import BundleError, BundleMetadataError, ChecksumMismatchError

_REEXPORT = "re-export it with 'python -m models.prior_export'"


@dataclass
class TextEncoder:
    """A loaded text tower: tokenizer + ONNX Runtime session.

    Attributes
    ----------
    bundle_path : Path
    session : onnxruntime.InferenceSession
    tokenizer : tokenizers.Tokenizer
    meta : dict
        The bundle's ``image_text`` block.
    provider : str
        The execution provider that really runs the text encoder.
    """

    bundle_path: Path
    session: Any
    tokenizer: Any
    meta: dict
    provider: str = "CPU"

    @property
    def dim(self) -> int:
        """Return the joint-space dimension."""
        return int(self.meta["joint_space"]["dim"])

    def encode(self, texts: list[str]) -> np.ndarray:
        """Return (N, D) unit-length float32 embeddings of phrases or sentences."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        encoded = self.tokenizer.encode_batch([t.strip() or "." for t in texts])
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        names = self.meta["text_inputs"]
        out = self.session.run([self.meta["text_output"]],
                               {names["input_ids"]: ids, names["attention_mask"]: mask})[0]
        out = np.asarray(out, np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True).clip(1e-12)


def is_image_text_bundle(path: str | Path) -> bool:
    """Return True when the bundle folder declares an ``image_text`` block (no validation)."""
    import json

    try:
        meta = json.loads((Path(path) / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta.get("image_text"), dict)


def load_text_encoder(path: str | Path, provider: str = "cpu") -> TextEncoder:
    """Validate a bundle's text side and open it.

    Raises
    ------
    BundleError
        Not an image-text bundle, a file missing or changed since export, or
        the text graph does not match the metadata.
    """
    from tokenizers import Tokenizer

    from medviewer.fileio import sha256_file
    from medviewer.inference import load_bundle
    from medviewer.inference.session import create_session

    bundle = load_bundle(path)
    meta = bundle.metadata.get("image_text")
    if not isinstance(meta, dict):
        raise BundleError("this bundle has no text encoder (no 'image_text' block in metadata.json)",
                          path=bundle.path, hint="train an image-text model with models.prior_train")
    needed = ("text_model_file", "text_model_sha256", "tokenizer_file", "tokenizer_sha256",
              "text_inputs", "text_output", "joint_space")
    missing = [k for k in needed if k not in meta]
    if missing:
        raise BundleMetadataError(f"image_text lacks {missing}", path=bundle.path, hint=_REEXPORT)
    if meta["joint_space"].get("image_output") != "embedding" or \
            int(meta["joint_space"].get("dim", -1)) != bundle.embedding_dim:
        raise BundleMetadataError("the text and image embeddings are not declared in one space",
                                  path=bundle.path, hint=_REEXPORT)
    files = {}
    for key in ("text_model", "tokenizer"):
        file = bundle.path / Path(meta[f"{key}_file"]).name  # never outside the bundle
        if not file.is_file():
            raise BundleError(f"{file.name} is missing", path=bundle.path, hint=_REEXPORT)
        if sha256_file(file) != str(meta[f"{key}_sha256"]).lower():
            raise ChecksumMismatchError(f"{file.name} has changed since export", path=bundle.path,
                                        hint="restore the original file or " + _REEXPORT)
        files[key] = file
    session, report = create_session(files["text_model"], provider)
    names = {i.name for i in session.get_inputs()}
    if set(meta["text_inputs"].values()) != names or \
            meta["text_output"] not in {o.name for o in session.get_outputs()}:
        raise BundleError("text_encoder.onnx does not match metadata.json", path=bundle.path,
                          hint=_REEXPORT)
    tokenizer = Tokenizer.from_file(str(files["tokenizer"]))
    return TextEncoder(bundle.path, session, tokenizer, meta, report.provider_label)


def rank_sentences(encoder: TextEncoder, image_vector: np.ndarray, sentences: list[str]
                   ) -> list[tuple[str, float]]:
    """Return ``(sentence, cosine)`` sorted best first: which sentences match this image."""
    if not sentences:
        return []
    v = np.asarray(image_vector, np.float32)
    v = v / max(float(np.linalg.norm(v)), 1e-12)
    scores = encoder.encode(sentences) @ v
    order = np.argsort(-scores, kind="stable")
    return [(sentences[i], float(scores[i])) for i in order]


def pool_region(tokens: np.ndarray, weights: np.ndarray, prefix: int = 1) -> np.ndarray:
    """Return the unit region vector of PRIOR's local alignment from an image's patch tokens.

    Each patch token (``tokens[prefix:]``, shape (P, D), in the joint space) is made
    unit length, weighted by ``weights`` (P,: e.g. the share of the patch inside a
    drawn rectangle), summed and normalised: the region a sentence is compared
    with, as the training's attention-pooled region (``models.prior``) is.

    Raises
    ------
    ValueError
        ``weights`` does not have one value per patch, or is all zero.
    """
    patches = np.asarray(tokens, np.float32)[prefix:]
    w = np.asarray(weights, np.float32).ravel()
    if w.shape[0] != patches.shape[0]:
        raise ValueError(f"{w.shape[0]} weights for {patches.shape[0]} patch tokens")
    if not (w > 0).any():
        raise ValueError("the region covers no patch")
    patches = patches / np.linalg.norm(patches, axis=1, keepdims=True).clip(1e-12)
    pooled = (w[:, None] * patches).sum(0)
    return pooled / max(float(np.linalg.norm(pooled)), 1e-12)


def sentence_region_maps(encoder: TextEncoder, tokens: np.ndarray, sentences: list[str],
                         grid: tuple[int, int], prefix: int = 1) -> np.ndarray:
    """Return (S, rows, cols) cosine maps of each sentence against the image's patch tokens."""
    patches = np.asarray(tokens, np.float32)[prefix:]
    patches = patches / np.linalg.norm(patches, axis=1, keepdims=True).clip(1e-12)
    sims = encoder.encode(sentences) @ patches.T
    return sims.reshape(len(sentences), int(grid[0]), int(grid[1]))


def fuse_rankings(rankings: dict[str, list[int]], weights: dict[str, float] | None = None,
                  k: int = 60) -> list[tuple[int, float, dict[str, float]]]:
    """Weighted reciprocal rank fusion (Cormack et al., SIGIR 2009) of ranked id lists.

    Returns ``(id, fused score, {ranking: its reciprocal-rank part})`` best first.
    RRF needs no calibration between BM25 scores and cosines, which live on
    different scales.
    """
    weights = weights or {}
    fused: dict[int, float] = {}
    parts: dict[int, dict[str, float]] = {}
    for name, ids in rankings.items():
        w = float(weights.get(name, 1.0))
        for rank, item in enumerate(ids, start=1):
            part = w / (k + rank)
            fused[item] = fused.get(item, 0.0) + part
            parts.setdefault(item, {})[name] = part
    order = sorted(fused, key=lambda i: (-fused[i], i))
    return [(i, fused[i], parts[i]) for i in order]

"""Run exported ViT model bundles with ONNX Runtime (no torch, no Qt).

Public API::

    bundle = load_bundle("models/demo")           # validates everything, or raises BundleError
    runner = ModelRunner(bundle, provider_preference="auto")
    runner.provider_report().message              # "...; running on CPU"
    runner.classify(images, state=None)           # [{label: probability}, ...]
    runner.embed(images, state=None)              # (N, D) unit vectors (cosine)
    runner.attention(images, state=None)          # (N, L, H, T, T)

``preprocess_image`` is the one preprocessing shared with training (``models/``).
"""

from medviewer.inference.bundle import Bundle, load_bundle, sha256_file
from medviewer.inference.errors import (
    BundleError,
    BundleMetadataError,
    ChecksumMismatchError,
    GraphMismatchError,
    InferenceError,
    NotABundleError,
    NotOnnxError,
    PreprocessError,
    ProviderUnavailableError,
    UnsupportedInputSizeError,
)
from medviewer.inference.preprocess import PreprocessConfig, preprocess_batch, preprocess_image
from medviewer.inference.providers import ProviderReport
from medviewer.inference.runner import ModelRunner, describe

__all__ = [
    "Bundle",
    "BundleError",
    "BundleMetadataError",
    "ChecksumMismatchError",
    "GraphMismatchError",
    "InferenceError",
    "ModelRunner",
    "NotABundleError",
    "NotOnnxError",
    "PreprocessConfig",
    "PreprocessError",
    "ProviderReport",
    "ProviderUnavailableError",
    "UnsupportedInputSizeError",
    "describe",
    "load_bundle",
    "preprocess_batch",
    "preprocess_image",
    "sha256_file",
]

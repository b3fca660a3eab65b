"""Errors raised while loading model bundles and running them.

Each error names the bundle (or image) it concerns in ``path`` and says how to
fix the problem in ``hint``; callers chain the underlying cause with
``raise ... from exc``.
"""

from __future__ import annotations

from medviewer.errors import MedViewerError


class BundleError(MedViewerError):
    """A model bundle cannot be used; subclasses say why."""


class NotABundleError(BundleError):
    """The path is not a model bundle folder (missing, a file, or without its files)."""


class BundleMetadataError(BundleError):
    """``metadata.json`` is missing, unreadable, incomplete or self-contradictory."""


class ChecksumMismatchError(BundleError):
    """``model.onnx`` differs from the file the bundle was exported with."""


class NotOnnxError(BundleError):
    """``model.onnx`` is not a readable ONNX model."""


class GraphMismatchError(BundleError):
    """The ONNX graph's inputs or outputs disagree with ``metadata.json``."""


class UnsupportedInputSizeError(BundleError):
    """The bundle's input size cannot be produced by the preprocessing."""


class PreprocessError(MedViewerError):
    """An image cannot be turned into a model input (wrong shape, non-finite values)."""


class ProviderUnavailableError(MedViewerError):
    """A required execution provider cannot be used on this machine."""


class InferenceError(MedViewerError):
    """ONNX Runtime failed while running a model."""

"""Errors of similar-case retrieval: each names the index (or library) and the fix.

An index that cannot be trusted is never used silently: opening one that is
missing, damaged, built with another model or out of date with the library
raises one of the :class:`IndexNotReadyError` subclasses, whose ``status``
says what was found (the panel shows it and offers "Rebuild").
"""

from __future__ import annotations

from typing import Any

from medviewer.errors import MedViewerError

REBUILD_HINT = "rebuild it with `medviewer index build --library LIB --model BUNDLE`"


class RetrievalError(MedViewerError):
    """Base class of the retrieval errors."""


class IndexNotReadyError(RetrievalError):
    """The index cannot serve searches as it is; ``status`` is its :class:`IndexStatus`."""

    def __init__(self, message: str, *, path: Any = None, hint: str = REBUILD_HINT,
                 status: Any = None) -> None:
        super().__init__(message, path=path, hint=hint)
        self.status = status


class IndexMissingError(IndexNotReadyError):
    """No index was built for this library and model."""


class IndexCorruptError(IndexNotReadyError):
    """The index files are unreadable, truncated or do not match their manifest."""


class IndexMismatchError(IndexNotReadyError):
    """The index was built with another model, metric or embedding size."""


class IndexStaleError(IndexNotReadyError):
    """Cases were added, removed or changed since the index was built."""


class NonFiniteEmbeddingError(RetrievalError):
    """The model gave embeddings with NaN or infinite values; nothing was indexed or searched."""


class QueryError(RetrievalError):
    """A query cannot be run (unknown case, empty region, no candidate left after filtering)."""


class UnknownTaskError(RetrievalError):
    """An evaluation task name is not one of the known tasks."""


class ProjectionUnavailableError(RetrievalError):
    """The chosen embedding-map method needs a package that is not installed."""

"""Errors of the teaching file; each names what it concerns and how to fix it."""

from __future__ import annotations

from medviewer.errors import MedViewerError


class TeachingError(MedViewerError):
    """A teaching-file operation cannot be done as asked."""


class CollectionNotFoundError(TeachingError):
    """No collection has the given name or id."""


class CaseNotFoundError(TeachingError):
    """A case id is not in the library."""


class QuizError(TeachingError):
    """A quiz step was taken out of order (e.g. revealing before answering)."""

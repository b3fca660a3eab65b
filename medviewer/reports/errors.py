"""Errors of the report package; each names what it concerns and how to fix it."""

from __future__ import annotations

from medviewer.errors import MedViewerError


class ReportError(MedViewerError):
    """A report cannot be read, attached or searched as asked."""


class ReportTargetError(ReportError):
    """A report names a study, accession, file or case that is not in the library."""


class TextQueryError(ReportError):
    """A text search phrase has no searchable words."""

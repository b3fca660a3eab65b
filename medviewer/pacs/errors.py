"""Errors of PACS communication; each names the node or file concerned and how to fix it."""

from __future__ import annotations

from medviewer.errors import MedViewerError


class PacsError(MedViewerError):
    """A PACS operation failed."""


class NodeConfigError(PacsError):
    """The node configuration is invalid or names an unknown node."""


class AssociationError(PacsError):
    """No DICOM association could be made (wrong host, port or AE title, or refused)."""


class DicomWebError(PacsError):
    """A DICOMweb request failed (HTTP error, timeout, bad response)."""


class RetrieveError(PacsError):
    """A retrieve finished with failed sub-operations or no files."""

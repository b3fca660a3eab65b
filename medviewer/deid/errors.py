"""Errors of de-identification; each names the file or object concerned and how to fix it."""

from __future__ import annotations

from medviewer.errors import MedViewerError


class DeidError(MedViewerError):
    """A file could not be de-identified (it is skipped and listed in the report)."""


class BurnedInTextError(DeidError):
    """An image may show identifying text in its pixels and no blackout region was given."""


class RegionError(DeidError):
    """A blackout region lies outside the image or is empty."""


class DeidOptionsError(DeidError):
    """The de-identification options contradict each other or are malformed."""

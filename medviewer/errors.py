"""Domain errors: one module, each error names what it concerns and how to fix it.

Every error carries the path (or object) it concerns in ``path`` and a short
``hint`` telling the user what to do about it.  Causes are chained with
``raise ... from exc`` by the callers.
"""

from __future__ import annotations

from pathlib import Path


class MedViewerError(Exception):
    """Base class of every error MedViewer raises on purpose.

    Parameters
    ----------
    message : str
        What went wrong, in one sentence.
    path : str or Path, optional
        The file, folder or object concerned.
    hint : str, optional
        How to fix it.
    """

    def __init__(self, message: str, *, path: str | Path | None = None, hint: str = "") -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class ImageReadError(MedViewerError):
    """An image file could not be read; ``reason`` is a short machine-friendly code."""

    reason = "unreadable"


class NotDicomError(ImageReadError):
    """The file is neither DICOM nor a supported raster image."""

    reason = "not DICOM"


class TruncatedFileError(ImageReadError):
    """The file ends before its declared data does."""

    reason = "truncated"


class NoPixelDataError(ImageReadError):
    """The DICOM object holds no image (a structured report, a DICOMDIR, ...)."""

    reason = "no pixel data"


class PixelDataTooLargeError(ImageReadError):
    """The decoded image would exceed the configured size limit."""

    reason = "too large"


class UnsupportedTransferSyntaxError(ImageReadError):
    """No installed decoder handles the file's transfer syntax."""

    reason = "unsupported transfer syntax"


class PixelDecodeError(ImageReadError):
    """A decoder was found but failed on the pixel data."""

    reason = "pixel data could not be decoded"


class LibraryError(MedViewerError):
    """The case library (SQLite file) cannot be opened or used."""


class SchemaVersionError(LibraryError):
    """The library was written by a newer MedViewer than this one."""


class LabelTableError(MedViewerError):
    """A label table (CSV) is malformed."""


class TaskCancelled(MedViewerError):
    """A long task stopped because the user asked it to."""

    def __init__(self, message: str = "cancelled by the user") -> None:
        super().__init__(message)


def unexpected_words(exc: BaseException) -> str:
    """Say in words why a file failed in an unexpected way (no exception class names)."""
    if isinstance(exc, MemoryError):
        return "not enough memory to read it (it is far larger than its header says, or damaged)"
    if isinstance(exc, RecursionError):
        return "its content is nested too deeply to be read (damaged or hostile)"
    if isinstance(exc, OSError):
        return f"it cannot be read from disk ({exc.strerror or 'input/output error'})"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"it could not be read ({text})" if text else "it could not be read (damaged)"

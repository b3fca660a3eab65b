"""Enumerate the image files behind what a user hands us: files, folders, zips, DICOMDIRs.

A :class:`FileRef` names one file either on disk or inside a zip archive, so
the rest of the code can open either the same way.  Zip members are named
``archive.zip!member/path.dcm`` in reports and in the library.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

ZIP_SEPARATOR = "!"
RASTER_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
# Files that are never images and would only clutter the import report.
IGNORED_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})
IGNORED_SUFFIXES = frozenset({
    ".txt", ".md", ".csv", ".gz", ".json", ".xml", ".html", ".htm", ".py", ".pdf",
    ".yaml", ".yml", ".sha256", ".ini", ".log", ".nii", ".npz", ".npy",
})


@dataclass(frozen=True)
class FileRef:
    """One image file on disk or inside a zip archive.

    Attributes
    ----------
    path : str
        Absolute path of the file on disk, or of the zip archive.
    member : str
        Name of the member inside the archive; empty for plain files.
    size : int
        Size in bytes (uncompressed size for zip members).
    mtime : float
        Modification time (of the archive for zip members), for incremental re-import.
    """

    path: str
    member: str = ""
    size: int = 0
    mtime: float = 0.0

    @property
    def display(self) -> str:
        """Return the name shown to users (``archive.zip!member`` for zip members)."""
        return f"{self.path}{ZIP_SEPARATOR}{self.member}" if self.member else self.path

    @property
    def suffix(self) -> str:
        """Return the lower-case file suffix, e.g. ``.dcm``."""
        return Path(self.member or self.path).suffix.lower()

    def open(self) -> BinaryIO:
        """Open the file for binary reading (zip members are read into memory)."""
        if not self.member:
            return open(self.path, "rb")
        with zipfile.ZipFile(self.path) as archive:
            return io.BytesIO(archive.read(self.member))

    @classmethod
    def from_display(cls, name: str) -> FileRef:
        """Parse a display name back into a reference (inverse of :attr:`display`)."""
        start = 0
        while (index := name.find(ZIP_SEPARATOR, start)) != -1:
            path = name[:index]
            if os.path.isfile(path) and zipfile.is_zipfile(path):
                return cls.for_zip_member(path, name[index + 1:])
            start = index + 1
        return cls.for_path(name)

    @classmethod
    def for_path(cls, path: str | os.PathLike) -> FileRef:
        """Return a reference to a plain file, with its size and mtime."""
        path = os.path.abspath(path)
        stat = os.stat(path)
        return cls(path=path, size=stat.st_size, mtime=stat.st_mtime)

    @classmethod
    def for_zip_member(cls, archive: str | os.PathLike, member: str) -> FileRef:
        """Return a reference to a member of a zip archive."""
        archive = os.path.abspath(archive)
        with zipfile.ZipFile(archive) as zf:
            info = zf.getinfo(member)
        return cls(path=archive, member=member, size=info.file_size,
                   mtime=os.stat(archive).st_mtime)


def _is_candidate(name: str) -> bool:
    """Tell whether a file name may hold an image (DICOM often has no suffix at all)."""
    base = os.path.basename(name).lower()
    if base in IGNORED_NAMES or base.startswith("._"):
        return False
    return Path(base).suffix not in IGNORED_SUFFIXES


def _iter_zip(path: str) -> Iterator[FileRef]:
    archive = os.path.abspath(path)
    mtime = os.stat(archive).st_mtime
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if info.is_dir() or not _is_candidate(info.filename):
                continue
            if info.filename.startswith("__MACOSX/"):
                continue
            yield FileRef(path=archive, member=info.filename, size=info.file_size, mtime=mtime)


def _iter_dicomdir(path: str) -> Iterator[FileRef]:
    """Yield the files a DICOMDIR references (they may live outside the scanned folder)."""
    from pydicom import dcmread

    ds = dcmread(path)
    root = Path(path).parent
    for record in ds.get("DirectoryRecordSequence", []):
        ref = record.get("ReferencedFileID")
        if not ref:
            continue
        parts = [ref] if isinstance(ref, str) else list(ref)
        candidate = root.joinpath(*parts)
        if not candidate.exists():
            # DICOMDIRs are written in upper case; file systems may hold lower case.
            lowered = root.joinpath(*[p.lower() for p in parts])
            candidate = lowered if lowered.exists() else candidate
        if candidate.exists():
            yield FileRef.for_path(candidate)


def iter_files(inputs: Iterable[str | os.PathLike]) -> Iterator[FileRef]:
    """Yield every candidate image file under the given paths, each once.

    Folders are walked recursively in sorted order; zip archives are opened and
    their members listed; a path named ``DICOMDIR`` yields the files it
    references.  Missing paths raise :class:`FileNotFoundError`.

    Parameters
    ----------
    inputs : iterable of path-like
        Files, folders, zip archives or DICOMDIR files.

    Yields
    ------
    FileRef
        One reference per file, deduplicated by display name.
    """
    seen: set[str] = set()

    def once(refs: Iterable[FileRef]) -> Iterator[FileRef]:
        for ref in refs:
            if ref.display not in seen:
                seen.add(ref.display)
                yield ref

    for item in inputs:
        path = os.path.abspath(os.fspath(item))
        if os.path.isdir(path):
            for folder, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    full = os.path.join(folder, name)
                    if name.lower().endswith(".zip") and zipfile.is_zipfile(full):
                        yield from once(_iter_zip(full))
                    elif _is_candidate(name) and os.path.isfile(full):
                        yield from once([FileRef.for_path(full)])
        elif os.path.isfile(path):
            if path.lower().endswith(".zip") and zipfile.is_zipfile(path):
                yield from once(_iter_zip(path))
            elif os.path.basename(path).upper() == "DICOMDIR":
                yield from once(_iter_dicomdir(path))
            else:
                yield from once([FileRef.for_path(path)])
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")

"""Enumerate the image files behind what a user hands us: files, folders, zips, DICOMDIRs.

A :class:`FileRef` names one file either on disk or inside a zip archive, so
the rest of the code can open either the same way.  Zip members are named
``archive.zip!member/path.dcm`` in reports and in the library.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from medviewer.errors import ImageReadError

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
        return io.BytesIO(read_member(self.path, self.member))

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
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise NotAnImageFileError("a folder, not an image file", path=path,
                                      hint="name one file, or import the folder")
        if not stat.S_ISREG(info.st_mode):
            # Opening a pipe would wait forever for a writer.
            raise NotAnImageFileError("not a regular file (a pipe, socket or device)",
                                      path=path, hint="name an image file")
        return cls(path=path, size=info.st_size, mtime=info.st_mtime)

    @classmethod
    def for_zip_member(cls, archive: str | os.PathLike, member: str) -> FileRef:
        """Return a reference to a member of a zip archive."""
        archive = os.path.abspath(archive)
        with zipfile.ZipFile(archive) as zf:
            info = zf.getinfo(member)
        return cls(path=archive, member=member, size=info.file_size,
                   mtime=os.stat(archive).st_mtime)


# Bounds on what one zip member may make us read (a "zip bomb" is refused, not inflated):
# its uncompressed size (a member is read into memory whole), and how much larger than its
# compressed size it may be.
MAX_MEMBER_BYTES = 256 << 20
MAX_MEMBER_RATIO = 200
_RATIO_FLOOR = 1 << 20  # small members may compress as well as they like

SkipSink = Callable[[str, str, str], None]
"""Receives ``(name, reason, detail)`` for each input that :func:`iter_files` does not yield."""


class NotAnImageFileError(ImageReadError):
    """A path names a folder, a pipe or a device where an image file is needed."""

    reason = "not a file"


class ZipMemberError(ImageReadError):
    """A zip member cannot be read safely (too large, too compressed, or damaged)."""

    def __init__(self, message: str, *, path: str, reason: str, hint: str = "") -> None:
        self.reason = reason
        super().__init__(message, path=path, hint=hint)


def _is_candidate(name: str) -> bool:
    """Tell whether a file name may hold an image (DICOM often has no suffix at all)."""
    base = os.path.basename(name).lower()
    if base in IGNORED_NAMES or base.startswith("._"):
        return False
    return Path(base).suffix not in IGNORED_SUFFIXES


def _not_candidate_reason(name: str) -> tuple[str, str]:
    base = os.path.basename(name).lower()
    if base.endswith(".gz"):
        return "not an image", "a gzip file: unpack it first (gunzip) and import what it holds"
    if base in IGNORED_NAMES or base.startswith("._"):
        return "not an image", "a system file (desktop or file-manager metadata)"
    return "not an image", f"a {Path(base).suffix or 'plain'} file, not DICOM, PNG or JPEG"


def _printable(name: str) -> str:
    """Return a name that can be stored and shown: undecodable bytes become escapes."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")


def _unsafe_member(info: zipfile.ZipInfo) -> str | None:
    """Return why a member name or type is refused, or None when it is safe to read."""
    name = info.filename
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if ".." in parts:
        return "a path that climbs out of the archive ('..')"
    if "\x00" in name:
        return "a name with a NUL byte"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "a symbolic link"
    return None


def _iter_zip(path: str, skip: SkipSink) -> Iterator[FileRef]:
    archive = os.path.abspath(path)
    try:
        mtime = os.stat(archive).st_mtime
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        skip(_printable(archive), "damaged zip",
             f"the archive cannot be listed ({_words(exc)}); repair or re-create it")
        return
    counts: dict[str, int] = {}
    for info in infos:
        counts[info.filename] = counts.get(info.filename, 0) + 1
    for info in infos:
        display = f"{_printable(archive)}{ZIP_SEPARATOR}{_printable(info.filename)}"
        if info.is_dir() or info.filename.startswith("__MACOSX/"):
            continue
        problem = _unsafe_member(info)
        if problem:
            skip(display, "unsafe zip member", f"{problem}; not read")
            continue
        if counts[info.filename] > 1:
            # Readers disagree on which of two same-named members a name means: read neither.
            skip(display, "duplicate zip member",
                 f"the archive holds {counts[info.filename]} members of this name; none is read")
            continue
        if not _is_candidate(info.filename):
            skip(display, *_not_candidate_reason(info.filename))
            continue
        yield FileRef(path=archive, member=info.filename, size=info.file_size, mtime=mtime)


def read_member(archive: str, member: str) -> bytes:
    """Return one zip member's bytes, refusing members too large or too compressed.

    Raises
    ------
    ZipMemberError
        Declared or actual size over :data:`MAX_MEMBER_BYTES`, a compression ratio over
        :data:`MAX_MEMBER_RATIO`, or a damaged member.
    """
    display = f"{archive}{ZIP_SEPARATOR}{member}"
    try:
        with zipfile.ZipFile(archive) as zf:
            info = zf.getinfo(member)
            if info.file_size > MAX_MEMBER_BYTES:
                raise ZipMemberError(f"the member is {info.file_size >> 20} MB, over the "
                                     f"{MAX_MEMBER_BYTES >> 20} MB read from an archive",
                                     path=display, reason="too large",
                                     hint="unpack the archive and import the file itself")
            if info.file_size > _RATIO_FLOOR and info.file_size > MAX_MEMBER_RATIO * max(
                    1, info.compress_size):
                raise ZipMemberError(
                    f"the member would inflate {info.file_size // max(1, info.compress_size)} "
                    f"times (limit {MAX_MEMBER_RATIO}): a zip bomb or a damaged archive",
                    path=display, reason="zip bomb")
            with zf.open(info) as handle:
                # Never trust the declared size: stop one byte past it.
                data = handle.read(info.file_size + 1)
    except ZipMemberError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError,
            NotImplementedError, RuntimeError) as exc:
        raise ZipMemberError(f"the member cannot be read ({_words(exc)})", path=display,
                             reason="damaged zip") from exc
    if len(data) > info.file_size:
        raise ZipMemberError("the member is larger than the archive says", path=display,
                             reason="damaged zip")
    return data


def _words(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def _iter_dicomdir(path: str, skip: SkipSink) -> Iterator[FileRef]:
    """Yield the files a DICOMDIR references, all inside the DICOMDIR's own folder.

    A reference that is absolute, climbs out with ``..`` or leads out through a link is
    refused: a DICOMDIR on a disc must not make us read the rest of the machine.
    """
    from pydicom import dcmread

    from medviewer.fileio import PathOutsideRootError, resolve_inside

    try:
        ds = dcmread(path)
        records = list(ds.get("DirectoryRecordSequence", []))
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds on damaged files
        skip(_printable(path), "unreadable DICOMDIR", f"it cannot be parsed ({_words(exc)})")
        return
    if "PixelData" in ds:
        yield FileRef.for_path(path)  # a DICOMDIR that is also an image is imported
    root = Path(path).parent
    for record in records:
        ref = record.get("ReferencedFileID")
        if not ref:
            continue
        parts = [str(ref)] if isinstance(ref, str) else [str(p) for p in ref]
        name = "\\".join(parts)
        try:
            candidate = resolve_inside(root, *parts)
            if not candidate.exists():
                # DICOMDIRs are written in upper case; file systems may hold lower case.
                lowered = resolve_inside(root, *[p.lower() for p in parts])
                candidate = lowered if lowered.exists() else candidate
        except PathOutsideRootError:
            skip(f"{_printable(path)}: {_printable(name)}", "outside the media folder",
                 "the DICOMDIR refers to a file outside its own folder; not read")
            continue
        if not candidate.is_file():
            skip(_printable(str(candidate)), "missing",
                 "the DICOMDIR refers to this file, but it is not on the media")
            continue
        yield FileRef.for_path(candidate)


def _file_ref(full: str, skip: SkipSink) -> FileRef | None:
    """Return a reference to a regular file, or report why ``full`` is not one."""
    shown = _printable(full)
    if shown != full:
        skip(shown, "unusable file name",
             "the name is not valid UTF-8 text; rename the file and import it again")
        return None
    try:
        info = os.stat(full)
    except OSError as exc:
        if os.path.islink(full):
            reason = "link loop" if exc.errno == errno.ELOOP else "broken link"
            skip(full, reason, "the symbolic link leads nowhere readable")
        else:
            skip(full, "unreadable", exc.strerror or _words(exc))
        return None
    if stat.S_ISDIR(info.st_mode):
        skip(full, "link to a folder", "links to folders are not followed; import the "
             "folder itself")
        return None
    if not stat.S_ISREG(info.st_mode):
        skip(full, "not a regular file", "a pipe, socket or device; not read")
        return None
    if not os.access(full, os.R_OK):
        skip(full, "unreadable", "permission denied")
        return None
    return FileRef(path=full, size=info.st_size, mtime=info.st_mtime)


def _ignore(_name: str, _reason: str, _detail: str) -> None:
    pass


def iter_files(inputs: Iterable[str | os.PathLike],
               on_skip: SkipSink | None = None) -> Iterator[FileRef]:
    """Yield every candidate image file under the given paths, each once.

    Folders are walked recursively in sorted order; zip archives are opened and
    their members listed; a path named ``DICOMDIR`` yields the files it
    references.  Missing paths raise :class:`FileNotFoundError`.

    Parameters
    ----------
    inputs : iterable of path-like
        Files, folders, zip archives or DICOMDIR files.
    on_skip : callable, optional
        Called with ``(name, reason, detail)`` for every file under the inputs that is
        not yielded: links that lead nowhere, pipes, unreadable folders, unsafe or
        duplicate zip members, DICOMDIR references outside the media or missing, files
        that are not images by name.  So every file appears in an import report.

    Yields
    ------
    FileRef
        One reference per file, deduplicated by display name.
    """
    skip = on_skip or _ignore
    seen: set[str] = set()

    def once(refs: Iterable[FileRef | None]) -> Iterator[FileRef]:
        for ref in refs:
            if ref is not None and ref.display not in seen:
                seen.add(ref.display)
                yield ref

    def walk_error(exc: OSError) -> None:
        skip(_printable(str(exc.filename or "")), "unreadable folder",
             exc.strerror or _words(exc))

    def one_file(full: str) -> Iterator[FileRef]:
        name = os.path.basename(full)
        # A DICOMDIR met in a folder walk is listed as a file (its scan says what it is):
        # the files it references lie in the same tree and are listed anyway.
        if name.lower().endswith(".zip") and os.path.isfile(full) and _is_zip(full):
            yield from once(_iter_zip(full, skip))
        elif not _is_candidate(name):
            skip(_printable(full), *_not_candidate_reason(name))
        else:
            yield from once([_file_ref(full, skip)])

    for item in inputs:
        path = os.path.abspath(os.fspath(item))
        if os.path.isdir(path):
            for folder, dirs, files in os.walk(path, onerror=walk_error):
                dirs.sort()
                for name in sorted(dirs):
                    full = os.path.join(folder, name)
                    if os.path.islink(full):
                        skip(_printable(full), "link to a folder",
                             "links to folders are not followed; import the folder itself")
                for name in sorted(files):
                    yield from one_file(os.path.join(folder, name))
        elif os.path.lexists(path):
            if os.path.basename(path).upper() == "DICOMDIR" and os.path.isfile(path):
                yield from once(_iter_dicomdir(path, skip))
            elif path.lower().endswith(".zip") and os.path.isfile(path) and _is_zip(path):
                yield from once(_iter_zip(path, skip))
            else:
                # Named explicitly: read it whatever its suffix says.
                yield from once([_file_ref(path, skip)])
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")


def _is_zip(path: str) -> bool:
    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False

"""What retrieval needs to know about a library's cases, read in one query.

A :class:`Catalog` is an in-memory snapshot: searching with it touches no
SQLite connection, so a searcher built on a worker thread can serve any
thread (a :class:`~medviewer.store.Library` connection may not).  Take a new
snapshot after an import or a label edit (:func:`read_catalog`).

Each case carries a *content key*: a 64-bit hash of its file location, frame,
size, modification time and content hash (header and pixel samples, taken at import).  The index stores the key of every case it
embedded, so a case whose file changed is noticed and re-embedded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from medviewer.dicom.sources import FileRef
from medviewer.store.library import Library

NO_FINDING = "No Finding"


@dataclass(frozen=True)
class CaseInfo:
    """One case as retrieval sees it.

    Attributes
    ----------
    id : int
        The case id in the library.
    location : str
        The file as shown to users (``archive.zip!member`` for zip members).
    path, member : str
        How to open the file (see :class:`~medviewer.dicom.sources.FileRef`).
    frame : int
        The frame of the instance that is the case.
    size : int
        File size in bytes.
    mtime : float
        File modification time.
    patient_id : str
        (0010,0020) Patient ID, or the label table's patient.
    patient_ref : int
        The library's patient row (two cases of one patient share it even when
        the Patient ID is empty).
    study_uid : str
        (0020,000D) Study Instance UID.
    study_date : str
        (0008,0020) Study Date, ``YYYYMMDD`` or empty.
    modality : str
        (0008,0060) Modality.
    body_part : str
        (0018,0015) Body Part Examined.
    labels : tuple of str
        Dataset and user labels (not model predictions), sorted.
    """

    id: int
    location: str
    path: str
    member: str
    frame: int
    size: int
    mtime: float
    patient_id: str
    patient_ref: int
    study_uid: str
    study_date: str
    modality: str
    body_part: str
    labels: tuple[str, ...]
    content_hash: str = ""

    @property
    def ref(self) -> FileRef:
        """Return a reference for opening the file."""
        return FileRef(path=self.path, member=self.member, size=self.size, mtime=self.mtime)

    @property
    def content_key(self) -> int:
        """Return a 63-bit hash of location, frame, size, mtime and content hash (changes when
        the file does, even rewritten with its old size and time)."""
        text = f"{self.location}\x00{self.frame}\x00{self.size}\x00{self.mtime!r}".encode()
        if self.content_hash:
            text += b"\x00" + self.content_hash.encode()
        return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


@dataclass
class Catalog:
    """A snapshot of a library's cases, in case-id order.

    Attributes
    ----------
    library_path : str
        The library file.
    cases : list of CaseInfo
    """

    library_path: str
    cases: list[CaseInfo]
    _by_id: dict[int, CaseInfo] = field(default_factory=dict, repr=False)
    _keys: dict[int, int] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {c.id: c for c in self.cases}

    def __len__(self) -> int:
        return len(self.cases)

    def get(self, case_id: int) -> CaseInfo | None:
        """Return the case with this id, or None."""
        return self._by_id.get(int(case_id))

    def by_location(self, location: str) -> CaseInfo | None:
        """Return the first case stored at ``location`` (a file path), or None."""
        return next((c for c in self.cases if c.location == location), None)

    def ids(self) -> np.ndarray:
        """Return the case ids as int64, ascending."""
        return np.fromiter((c.id for c in self.cases), dtype=np.int64, count=len(self.cases))

    def content_keys(self) -> dict[int, int]:
        """Return ``{case id: content key}`` (computed once per snapshot; do not modify it)."""
        if self._keys is None:
            self._keys = {c.id: c.content_key for c in self.cases}
        return self._keys


def read_catalog(library: Library) -> Catalog:
    """Read every case of ``library`` with its file, patient, study, series and labels.

    Call on the thread that owns ``library``.
    """
    rows = library.catalog_rows()
    cases = [
        CaseInfo(int(r[0]), r[1], r[2], r[3] or "", int(r[4]), int(r[5]), float(r[6]), r[7] or "",
                 int(r[8]), r[9] or "", r[10] or "", r[11] or "", r[12] or "",
                 tuple(r[13].split("|")) if r[13] else (), r[14] or "")
        for r in rows
    ]
    return Catalog(str(library.path), cases)

"""The index on disk: one folder per (library, model sha256) beside the library.

Layout::

    <library file>.indexes/
        <model sha256>/
            manifest.json     what was built, with what, over which cases (below)
            embeddings.npy    (N, D) float32, L2-normalised for the cosine metric
            ids.npy           (N,) int64 case ids, row i of embeddings = case ids[i]
            keys.npy          (N,) int64 content keys of the embedded cases
            index.faiss       the HNSW or IVF structure (absent for exact search,
                              whose flat index is rebuilt from embeddings.npy)

``manifest.json`` holds the format and version, the model's sha256 and name,
the metric, kind, count and embedding dimension, the library path, the
content fingerprint of the embedded cases (sha256 over sorted ``(id, key)``),
cases that could not be read (with their keys, so they count as accounted
for until their file changes), the structure's parameters, the measured
recall@10 and each file's size and sha256.

Writes are atomic: everything goes to a temporary sibling folder that then
replaces the old one, so a killed process leaves the old index or the new
one, never a mixture.  The library file itself is never written here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from medviewer.fileio import atomic_write_json, sha256_file
from medviewer.retrieval.errors import (
    IndexCorruptError,
    IndexMismatchError,
    IndexMissingError,
)

FORMAT = "medviewer-retrieval-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
EMBEDDINGS = "embeddings.npy"
IDS = "ids.npy"
KEYS = "keys.npy"
STRUCTURE = "index.faiss"
#: Files are checksummed on every load up to this total size; larger ones on request.
VERIFY_AUTO_MAX_BYTES = 256 * 1024 * 1024


def now() -> str:
    """Return the current UTC time as ISO 8601 (seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def index_root(library_path: str | os.PathLike) -> Path:
    """Return the folder holding every index of a library (``<library>.indexes``)."""
    path = Path(library_path)
    return path.with_name(path.name + ".indexes")


def index_dir(library_path: str | os.PathLike, model_sha256: str) -> Path:
    """Return the folder of the index of one model."""
    return index_root(library_path) / model_sha256.lower()


def fingerprint(ids: np.ndarray, keys: np.ndarray, unreadable: dict[int, int] | None = None) -> str:
    """Return the sha256 over ``(case id, content key)`` pairs, sorted by id, of the accounted-for cases.

    Accounted for: the embedded cases (``ids``, ``keys``) and the unreadable ones.
    """
    extra = unreadable or {}
    all_ids = np.concatenate([np.asarray(ids, np.int64), np.fromiter(extra.keys(), np.int64, len(extra))])
    all_keys = np.concatenate([np.asarray(keys, np.int64), np.fromiter(extra.values(), np.int64, len(extra))])
    order = np.argsort(all_ids, kind="stable")
    pairs = np.stack([all_ids[order], all_keys[order]], axis=1)
    return hashlib.sha256(np.ascontiguousarray(pairs).tobytes()).hexdigest()


@dataclass
class Manifest:
    """The description of a stored index (``manifest.json``)."""

    model_sha256: str
    model_name: str
    metric: str
    kind: str
    count: int
    dim: int
    library: str
    fingerprint: str
    requested_kind: str = "auto"
    params: dict[str, int] = field(default_factory=dict)
    recall: dict[str, Any] | None = None
    unreadable: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """Return the manifest as JSON-friendly data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """Parse a manifest; raise KeyError/TypeError/ValueError when malformed."""
        known = set(cls.__dataclass_fields__)
        missing = {"model_sha256", "metric", "kind", "count", "dim", "fingerprint"} - set(data)
        if missing:
            raise KeyError(", ".join(sorted(missing)))
        manifest = cls(**{k: v for k, v in data.items() if k in known})
        manifest.count, manifest.dim = int(manifest.count), int(manifest.dim)
        return manifest

    def unreadable_keys(self) -> dict[int, int]:
        """Return ``{case id: content key}`` of the cases that could not be read."""
        return {int(k): int(v["key"]) for k, v in self.unreadable.items()}


def read_manifest(folder: Path) -> Manifest:
    """Read and parse ``manifest.json`` of an index folder.

    Raises
    ------
    IndexMissingError
        The folder or its manifest does not exist.
    IndexCorruptError
        The manifest is unreadable, malformed, or of an unknown format.
    """
    path = folder / MANIFEST
    if not path.is_file():
        raise IndexMissingError("no index for this library and model", path=folder)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        manifest = Manifest.from_dict(data)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise IndexCorruptError(f"the index manifest is unreadable ({type(exc).__name__}: {exc})",
                                path=folder) from exc
    if manifest.format != FORMAT or manifest.format_version > FORMAT_VERSION:
        raise IndexCorruptError(
            f"unknown index format {manifest.format!r} version {manifest.format_version}", path=folder)
    return manifest


def check_model(manifest: Manifest, folder: Path, model_sha256: str, metric: str, dim: int) -> None:
    """Raise :class:`IndexMismatchError` unless the index was built with this model."""
    problems = []
    if manifest.model_sha256.lower() != model_sha256.lower():
        problems.append(f"it was built with model {manifest.model_sha256[:12]}..., not {model_sha256[:12]}...")
    if manifest.metric != metric:
        problems.append(f"its metric is {manifest.metric}, the model declares {metric}")
    if manifest.dim != dim:
        problems.append(f"its vectors have {manifest.dim} dimensions, the model's {dim}")
    if problems:
        raise IndexMismatchError("the index does not belong to this model: " + "; ".join(problems),
                                 path=folder)


def check_files(manifest: Manifest, folder: Path, verify: str = "auto") -> None:
    """Check that every file of the manifest exists with its size (and, per ``verify``, sha256).

    Parameters
    ----------
    verify : {"auto", "full", "size"}
        ``full`` checksums every file; ``auto`` does so when they total at most
        :data:`VERIFY_AUTO_MAX_BYTES`; ``size`` only compares sizes.

    Raises
    ------
    IndexCorruptError
    """
    if verify not in ("auto", "full", "size"):
        raise ValueError(f"verify must be auto, full or size, not {verify!r}")
    required = {EMBEDDINGS, IDS, KEYS} | ({STRUCTURE} if manifest.kind != "exact" else set())
    if not required <= set(manifest.files):
        raise IndexCorruptError(f"the manifest does not list {sorted(required - set(manifest.files))}",
                                path=folder)
    total = sum(int(info.get("size", 0)) for info in manifest.files.values())
    checksum = verify == "full" or (verify == "auto" and total <= VERIFY_AUTO_MAX_BYTES)
    for name, info in manifest.files.items():
        path = folder / name
        if not path.is_file():
            raise IndexCorruptError(f"{name} is missing", path=folder)
        size = path.stat().st_size
        if size != int(info["size"]):
            raise IndexCorruptError(f"{name} has {size} bytes, the manifest records {info['size']}",
                                    path=folder)
        if checksum and sha256_file(path) != info["sha256"]:
            raise IndexCorruptError(f"{name} has changed since it was written (sha256 differs)",
                                    path=folder)


def check_vectors(vectors: np.ndarray, manifest: Manifest, folder: Path,
                  verify: str = "auto") -> None:
    """Refuse stored vectors with NaN or infinite values (checked as often as checksums).

    Raises
    ------
    IndexCorruptError
    """
    total = sum(int(info.get("size", 0)) for info in manifest.files.values())
    if verify == "size" or (verify == "auto" and total > VERIFY_AUTO_MAX_BYTES):
        return
    if len(vectors) and not np.isfinite(vectors).all():
        raise IndexCorruptError("the index holds vectors that are not finite (NaN or infinity)",
                                path=folder)


def read_arrays(folder: Path, manifest: Manifest, mmap: bool = False
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (embeddings, ids, keys), checked against the manifest.

    Raises
    ------
    IndexCorruptError
        A file is unreadable or its shape or type disagrees with the manifest.
    """
    try:
        emb = np.load(folder / EMBEDDINGS, mmap_mode="r" if mmap else None, allow_pickle=False)
        ids = np.load(folder / IDS, allow_pickle=False)
        keys = np.load(folder / KEYS, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise IndexCorruptError(f"the index arrays cannot be read ({exc})", path=folder) from exc
    n, d = manifest.count, manifest.dim
    if emb.shape != (n, d) or emb.dtype != np.float32:
        raise IndexCorruptError(f"{EMBEDDINGS} is {emb.dtype} {emb.shape}, expected float32 ({n}, {d})",
                                path=folder)
    if ids.shape != (n,) or keys.shape != (n,) or ids.dtype != np.int64 or keys.dtype != np.int64:
        raise IndexCorruptError(f"{IDS}/{KEYS} do not hold {n} int64 values", path=folder)
    if len(np.unique(ids)) != n:
        raise IndexCorruptError(f"{IDS} lists a case twice", path=folder)
    if fingerprint(ids, keys, manifest.unreadable_keys()) != manifest.fingerprint:
        raise IndexCorruptError("the case list does not match the manifest's fingerprint", path=folder)
    return emb, ids, keys


def read_structure(folder: Path, manifest: Manifest) -> Any:
    """Read ``index.faiss`` and check it holds ``count`` vectors of the right size."""
    import faiss

    try:
        index = faiss.read_index(str(folder / STRUCTURE))
    except Exception as exc:  # FAISS raises RuntimeError with C++ text
        raise IndexCorruptError(f"{STRUCTURE} cannot be read ({str(exc).splitlines()[0][:200]})",
                                path=folder) from exc
    if index.ntotal != manifest.count or index.d != manifest.dim:
        raise IndexCorruptError(
            f"{STRUCTURE} holds {index.ntotal} vectors of {index.d} dimensions, the manifest "
            f"{manifest.count} of {manifest.dim}", path=folder)
    return index


def write_index(folder: Path, manifest: Manifest, embeddings: np.ndarray, ids: np.ndarray,
                keys: np.ndarray, structure: Any | None) -> None:
    """Write an index folder atomically (replacing any previous one)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f"{folder.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        files = {}
        for name, array in ((EMBEDDINGS, np.asarray(embeddings, np.float32)),
                            (IDS, np.asarray(ids, np.int64)), (KEYS, np.asarray(keys, np.int64))):
            with _HashingWriter(tmp / name) as writer:
                writer.write_npy(np.ascontiguousarray(array))
            files[name] = writer.entry()
        if structure is not None and manifest.kind != "exact":
            import faiss

            with _HashingWriter(tmp / STRUCTURE) as writer:
                faiss.write_index(structure, faiss.PyCallbackIOWriter(writer.write))
            files[STRUCTURE] = writer.entry()
        manifest.files = dict(sorted(files.items()))
        manifest.updated_at = now()
        # The manifest is written last: a folder without one is an unfinished write.
        _write_json(tmp / MANIFEST, manifest.to_dict())
        old = None
        if folder.exists():
            old = folder.with_name(f"{folder.name}.old-{uuid.uuid4().hex[:8]}")
            folder.rename(old)
        tmp.rename(folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def update_manifest(folder: Path, manifest: Manifest) -> None:
    """Rewrite only ``manifest.json`` (atomically), e.g. after a recall measurement."""
    _write_json(folder / MANIFEST, manifest.to_dict())


def remove_index(folder: Path) -> bool:
    """Delete an index folder; return whether there was one."""
    if not folder.exists():
        return False
    shutil.rmtree(folder)
    return True


def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_json(path, data)


class _HashingWriter:
    """A file written once, hashed as it is written (no second read of a large file), then fsynced."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._digest = hashlib.sha256()
        self._size = 0
        self._handle: Any = None

    def __enter__(self) -> _HashingWriter:
        self._handle = open(self.path, "wb")
        return self

    def write(self, data: bytes) -> int:
        """Write ``data`` and add it to the hash (numpy and FAISS call this with chunks)."""
        self._digest.update(data)
        self._size += len(data)
        return self._handle.write(data)

    def write_npy(self, array: np.ndarray) -> None:
        """Write ``array`` as a ``.npy`` file (what ``np.save`` writes), in slices of its own memory.

        ``np.save`` to a file-like object copies the data 16 MiB at a time
        (a full copy of a small index); this writes views instead.
        """
        from numpy.lib import format as npy

        npy.write_array_header_1_0(self, npy.header_data_from_array_1_0(array))
        flat = memoryview(array.reshape(-1).view(np.uint8)) if array.size else memoryview(b"")
        for start in range(0, len(flat), 1 << 22):
            self.write(flat[start:start + (1 << 22)])

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self._handle.flush()
                os.fsync(self._handle.fileno())
        finally:
            self._handle.close()

    def entry(self) -> dict[str, Any]:
        """Return the manifest's record of the file: size and sha256."""
        return {"size": self._size, "sha256": self._digest.hexdigest()}

"""Small file mechanisms shared by every package: atomic writes, file hashes, contained paths.

Everything that writes a user's data (settings, indexes, audits, exports, reports) writes
through :func:`atomic_write_bytes` so a crash or a kill leaves either the old file or the new
one, never half of either. Every path built from outside data (a UID from a PACS, a DICOMDIR
reference, a zip member name) goes through :func:`resolve_inside` so it cannot leave its root.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from medviewer.errors import MedViewerError

_HASH_CHUNK = 1 << 20


class PathOutsideRootError(MedViewerError):
    """A path built from outside data would leave the folder it must stay in."""

    def __init__(self, name: str, root: Path):
        self.name = name
        self.root = Path(root)
        super().__init__(
            f"refused the name {name!r}: it would lead outside this folder",
            path=self.root,
            hint="the file or server that supplied this name is damaged or hostile",
        )


def _fsync_dir(folder: Path) -> None:
    """Flush a folder's entry table so a rename survives a power cut (POSIX only)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably.

    The bytes go to a temporary file in the same folder, are flushed to disk, and the
    temporary file then replaces ``path`` in one rename.

    Parameters
    ----------
    path
        Destination file; its folder must exist.
    data
        The whole new content.

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.
    """
    target = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        # Never leave a half-written temporary beside the user's file.
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return target


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike, value: Any, *, indent: int | None = 2) -> Path:
    """Write ``value`` as strict JSON (no NaN or Infinity) to ``path`` atomically."""
    text = json.dumps(value, indent=indent, allow_nan=False, ensure_ascii=False)
    return atomic_write_text(path, text + "\n")


def sha256_file(path: str | os.PathLike) -> str:
    """Return the hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_inside(root: str | os.PathLike, *parts: str) -> Path:
    """Join ``parts`` under ``root`` and refuse a result that leaves ``root``.

    Absolute parts, ``..`` components and symbolic links that point elsewhere are all
    caught, because the check compares fully resolved paths.

    Parameters
    ----------
    root
        The folder the result must stay inside.
    *parts
        Path pieces from outside data (a UID, a member name, a DICOMDIR reference).

    Raises
    ------
    PathOutsideRootError
        When the resolved path is not ``root`` itself or below it, or a part is empty,
        absolute or contains a NUL byte.
    """
    base = Path(root).resolve()
    name = "/".join(parts)
    for part in parts:
        if not part or "\x00" in part or os.path.isabs(part) or Path(part).drive:
            raise PathOutsideRootError(name, base)
    candidate = base.joinpath(*parts).resolve()
    if candidate != base and base not in candidate.parents:
        raise PathOutsideRootError(name, base)
    return candidate

"""A cheap content hash of an image file: its header and samples of its pixel data.

Size and modification time miss a file rewritten in place (a copy tool that keeps
times, a damaged disk); hashing whole files of a big library at every re-import costs
too much.  :func:`sample_hash` reads the first 8 KiB (where a DICOM header starts, with
its UIDs) and four 1 KiB samples spread over the rest (the pixel data): a few buffered
reads per file whatever its size.
"""

from __future__ import annotations

import hashlib

from medviewer.dicom.sources import FileRef

HEAD_BYTES = 8 * 1024
SAMPLES = 4
SAMPLE_BYTES = 1024


def sample_hash(ref: FileRef) -> str:
    """Return a 128-bit hex digest of ``ref``'s size, first 8 KiB and 4 spread samples."""
    digest = hashlib.blake2b(digest_size=16)
    with ref.open() as handle:
        size = handle.seek(0, 2)
        digest.update(size.to_bytes(8, "little"))
        handle.seek(0)
        digest.update(handle.read(HEAD_BYTES))
        rest = size - HEAD_BYTES
        if rest > 0:
            step = max(SAMPLE_BYTES, rest // SAMPLES)
            for offset in range(HEAD_BYTES, size, step)[:SAMPLES]:
                handle.seek(offset)
                digest.update(handle.read(SAMPLE_BYTES))
    return digest.hexdigest()

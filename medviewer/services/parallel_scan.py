"""Header scans of many files over worker processes, results in input order.

The import's time is almost all pydicom parsing headers (CPU-bound Python,
so threads do not help), while its SQLite writes are a few percent: worker
processes scan, the importer's own thread stays the one writer.  Results
come back in the order of the files, so an import in parallel does exactly
what the same import does in one process (same duplicates found first, same
batches committed).

A pool costs its start-up (a fresh interpreter per worker, or a fork of the
``forkserver`` on Linux, which preloads the scanner once per app run), so
imports of fewer than :data:`POOL_MIN_FILES` files are scanned in-process.
The threshold is measured by ``benchmarks/bench_header_scan.py --startup``.

Cancellation is checked by the caller between results; when it stops
reading, the chunks not yet started are dropped and the running ones (at
most :data:`CHUNK` files per worker) finish first, so a cancel takes effect
within a chunk's time.  A worker that dies (a crash in a native decoder)
breaks the pool; the remaining files are then scanned in-process, as they
were before parallel scans existed.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from medviewer.dicom.scan import InstanceHeader, scan
from medviewer.dicom.sources import FileRef
from medviewer.errors import ImageReadError, PixelDecodeError, unexpected_words

#: Below this many files to scan, a pool costs more than it saves (bench_header_scan.py --startup).
POOL_MIN_FILES = 200
#: Files per task sent to a worker: large enough to amortise the hand-off, small enough to cancel fast.
CHUNK = 16
#: At most this many worker processes.
MAX_WORKERS = 8
#: Images whose decoded pixels exceed this are not test-decoded at import (a worker holds
#: one decoded image at a time, so import memory stays well under 500 MB).
VERIFY_MAX_BYTES = 128 << 20

# (header, None) or (None, (reason, detail)): plain data, so it pickles across processes.
Outcome = tuple[InstanceHeader | None, tuple[str, str] | None]


def _decoded_bytes(header: InstanceHeader) -> int:
    return (header.rows * header.columns * max(1, header.frames)
            * max(1, header.samples_per_pixel) * max(8, header.bits_allocated) // 8)


def scan_one(ref: FileRef, verify: str) -> Outcome:
    """Scan one file (and test-decode it when ``verify`` asks); a failure becomes a skip reason.

    Parameters
    ----------
    verify : {"compressed", "all", "none"}
        Which files to test-decode (see :func:`medviewer.services.importer.import_paths`).
    """
    try:
        header = scan(ref)
        wanted = verify == "all" or (verify == "compressed" and _is_compressed(header))
        if wanted and _decoded_bytes(header) <= VERIFY_MAX_BYTES:
            # Larger images are decoded when shown, not here: import memory stays bounded.
            _verify_pixels(ref)
    except ImageReadError as exc:
        return None, (exc.reason, exc.message + (f" ({exc.hint})" if exc.hint else ""))
    except Exception as exc:  # noqa: BLE001 - an unexpected failure skips one file only
        return None, ("unreadable", unexpected_words(exc))
    return header, None


def _scan_chunk(refs: Sequence[FileRef], verify: str) -> list[Outcome]:
    return [scan_one(ref, verify) for ref in refs]


def worker_count(files: int) -> int:
    """Return how many worker processes scan ``files`` files (0: scan in-process)."""
    if files < POOL_MIN_FILES:
        return 0
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    workers = min(cores, MAX_WORKERS, -(-files // CHUNK))
    return workers if workers >= 2 else 0


def scan_files(refs: Sequence[FileRef], verify: str, workers: int | None = None) -> Iterator[Outcome]:
    """Yield the outcome of :func:`scan_one` for each of ``refs``, in order.

    Parameters
    ----------
    refs : sequence of FileRef
    verify : {"compressed", "all", "none"}
    workers : int, optional
        Worker processes; default :func:`worker_count`; 0 scans in-process.
    """
    workers = worker_count(len(refs)) if workers is None else workers
    if workers <= 0:
        for ref in refs:
            yield scan_one(ref, verify)
        return
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_context())
    chunks = [refs[i:i + CHUNK] for i in range(0, len(refs), CHUNK)]
    window: deque[Future] = deque()
    done = 0
    try:
        submitted = 0
        for _ in range(min(len(chunks), 3 * workers)):  # bounded read-ahead
            window.append(pool.submit(_scan_chunk, chunks[submitted], verify))
            submitted += 1
        while window:
            try:
                outcomes = window.popleft().result()
            except BrokenProcessPool:
                break
            if submitted < len(chunks):
                window.append(pool.submit(_scan_chunk, chunks[submitted], verify))
                submitted += 1
            yield from outcomes
            done += 1
    finally:
        # The caller stopped (cancel, error) or all is done: drop what has not started.
        pool.shutdown(wait=True, cancel_futures=True)
    for chunk in chunks[done:]:  # only after a broken pool: the rest in-process, as before
        for ref in chunk:
            yield scan_one(ref, verify)


def _context():
    """Return the process start method: a preloaded forkserver on Linux, else spawn.

    Never plain fork: the GUI calls this from a worker thread, and forking a
    threaded process can copy a held lock into the child.
    """
    if sys.platform.startswith("linux"):
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["medviewer.services.parallel_scan"])
        return context
    return multiprocessing.get_context("spawn")


def _is_compressed(header: InstanceHeader) -> bool:
    if header.kind != "dicom":
        return False
    from pydicom.uid import UID

    return UID(header.transfer_syntax).is_compressed


def _verify_pixels(ref: FileRef) -> None:
    from medviewer.dicom.pixels import decode

    try:
        decode(ref)
    except ImageReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - decoders raise many kinds of errors
        raise PixelDecodeError(f"pixel data could not be decoded: {exc}", path=ref.display) from exc

"""Import speed: MedViewer's import against a one-process pydicom loop doing the same reading.

Writes N synthetic CT slices (512x512 uint16, seeded; 20 series of N/20 slices) as real
DICOM files, then times over the same files, interleaved over ``--rounds`` rounds (medians):

1. the peer: one process, ``pydicom.dcmread(path, stop_before_pixels=True)`` and reading the
   ~30 header values the import stores (``Dataset.get``), nothing written;
2. ``medviewer.dicom.scan.scan`` in one process (header with the pixel data deferred, the
   checks, the same values);
3. ``import_paths`` into a fresh library: the scan over worker processes (one writer), series
   sorting, SQLite writes: the user-facing import;

and once, an incremental re-import of the unchanged folder.  It prints one table: goal, peer,
ours, ratio, met (import >= 1.5x the peer; with ``--busy``, >= 1,000 files/s while a CPU-bound
process runs beside).  ``--startup`` also times small scans in-process against a 2-worker pool
(where a pool starts paying: ``POOL_MIN_FILES``).  By default the files are read once before
each loop so every loop sees the same warm page cache; ``--cold`` evicts them instead
(``posix_fadvise(DONTNEED)``, Linux).

Usage: python benchmarks/bench_header_scan.py [--files 2000] [--rounds 3] [--busy] [--startup]
       [--dir DIR] [--size 512] [--cold]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def write_files(folder: Path, count: int, size: int, seed: int) -> list[Path]:
    """Write ``count`` CT slices in 20 series; reuse them if a previous run left them."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    marker = folder / f"complete-{count}-{size}-{seed}.json"  # .json: not listed by iter_files
    if marker.exists():
        return sorted(p for p in folder.rglob("*.dcm"))
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    series_count = 20 if count >= 20 else 1
    per_series = -(-count // series_count)
    prefix = "1.2.826.0.1.3680043.8.498."
    paths = []
    for index in range(count):
        series, slice_no = divmod(index, per_series)
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = generate_uid(prefix, [str(seed), str(index)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientID = f"BENCH-{series // 4:03d}"
        ds.PatientName = f"Bench^Patient{series // 4}"
        ds.PatientBirthDate = "19600101"
        ds.PatientSex = "O"
        ds.StudyInstanceUID = generate_uid(prefix, [str(seed), "study", str(series // 2)])
        ds.StudyDate, ds.StudyTime, ds.StudyID = "20240101", "120000", "1"
        ds.StudyDescription = "benchmark"
        ds.AccessionNumber = f"A{series // 2}"
        ds.SeriesInstanceUID = generate_uid(prefix, [str(seed), "series", str(series)])
        ds.SeriesNumber = series + 1
        ds.SeriesDescription = "axial"
        ds.Modality = "CT"
        ds.InstanceNumber = slice_no + 1
        ds.ImagePositionPatient = [-180.0, -180.0, -200.0 + 1.25 * slice_no]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.7, 0.7]
        ds.SliceThickness = 1.25
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.PixelData = rng.integers(0, 4096, (size, size), dtype=np.uint16).tobytes()
        path = folder / f"s{series:02d}" / f"IM{slice_no:05d}.dcm"
        path.parent.mkdir(exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    marker.touch()
    return paths


HEADER_KEYWORDS = (
    "SOPClassUID", "SOPInstanceUID", "PatientID", "PatientName", "PatientBirthDate", "PatientSex",
    "StudyInstanceUID", "StudyDate", "StudyTime", "StudyDescription", "AccessionNumber",
    "SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "Modality", "BodyPartExamined",
    "InstanceNumber", "Rows", "Columns", "NumberOfFrames", "SamplesPerPixel",
    "PhotometricInterpretation", "BitsAllocated", "PixelSpacing", "SliceThickness",
    "ImagePositionPatient", "ImageOrientationPatient", "BurnedInAnnotation",
)


def evict(paths: list[Path]) -> None:
    """Drop the files' pages from the page cache (no-op where posix_fadvise is missing)."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            advise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:9.1f} files/s  ({seconds:6.2f} s)"


def busy_loop(stop) -> None:
    """Burn one core until ``stop`` is set (the "machine is busy" condition)."""
    x = 0
    while not stop.is_set():
        for i in range(100_000):
            x += i * i


def baseline_loop(paths: list[Path]) -> None:
    """The peer: one process, ``dcmread(stop_before_pixels=True)``, the same values read."""
    import warnings

    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for p in paths:
            ds = pydicom.dcmread(p, stop_before_pixels=True)
            for keyword in HEADER_KEYWORDS:
                ds.get(keyword)


def startup_table(refs, rounds: int) -> None:
    """Print in-process vs 2-worker scan times for small imports (sets POOL_MIN_FILES)."""
    from medviewer.services.parallel_scan import scan_files

    print("pool start-up: seconds to scan the first N files, in-process vs 2 worker processes")
    print(f"{'files':>6} {'in-process':>11} {'2 workers':>10} {'pool:in':>8}")
    for n in (25, 50, 100, 200, 400, 800):
        if n > len(refs):
            break
        serial, pooled = [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            list(scan_files(refs[:n], "compressed", workers=0))
            serial.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            list(scan_files(refs[:n], "compressed", workers=2))
            pooled.append(time.perf_counter() - t0)
        a, b = float(np.median(serial)), float(np.median(pooled))
        print(f"{n:>6} {a:>10.3f}s {b:>9.3f}s {b / a:>7.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000, help="number of files (default 2000)")
    parser.add_argument("--dir", type=Path, help="folder for the files (kept; reused next time)")
    parser.add_argument("--size", type=int, default=512, help="rows and columns (default 512)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are printed")
    parser.add_argument("--cold", action="store_true",
                        help="evict the files from the page cache before each loop")
    parser.add_argument("--busy", action="store_true",
                        help="run a CPU-bound process beside every timed loop (a busy machine)")
    parser.add_argument("--startup", action="store_true",
                        help="also time small scans in-process vs over a pool (the pool threshold)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mv-bench-scan-"))
    os.environ.setdefault("MEDVIEWER_CONFIG_DIR", str(work / "config"))
    os.environ.setdefault("MEDVIEWER_DATA_DIR", str(work / "data"))
    folder = args.dir or work / "files"
    burner = None
    try:
        import multiprocessing

        import pydicom

        from medviewer.dicom.scan import scan
        from medviewer.dicom.sources import iter_files
        from medviewer.services.importer import import_paths
        from medviewer.services.parallel_scan import POOL_MIN_FILES, worker_count
        from medviewer.store import Library

        t0 = time.perf_counter()
        paths = write_files(folder, args.files, args.size, args.seed)
        total = sum(p.stat().st_size for p in paths)
        print(f"{len(paths)} files, {total / 2**20:.0f} MiB, {args.size}x{args.size} uint16, in "
              f"{folder} (ready in {time.perf_counter() - t0:.1f} s)")

        def prepare() -> None:
            if args.cold:
                evict(paths)
            else:  # the same warm page cache for every loop
                for p in paths:
                    p.read_bytes()

        refs = list(iter_files([folder]))
        assert len(refs) == len(paths)
        if args.busy:
            stop = multiprocessing.Event()
            burner = (multiprocessing.Process(target=busy_loop, args=(stop,), daemon=True), stop)
            burner[0].start()
        if args.startup:
            startup_table(refs, args.rounds)

        def our_scan() -> None:
            headers = [scan(ref) for ref in refs]
            assert all(h.rows == args.size for h in headers)

        def our_import() -> None:
            library_path = work / f"bench-{time.perf_counter_ns()}.sqlite"
            with Library(library_path) as library:
                report = import_paths(library, [folder])
                # The folder's own marker file is listed as "not an image"; nothing else may be skipped.
                skipped = [k for k in report.skipped if not k.path.endswith(".json")]
                assert report.instances == len(paths) and not skipped, skipped[:3]
            for suffix in ("", "-wal", "-shm"):
                Path(str(library_path) + suffix).unlink(missing_ok=True)

        lines = {"peer: dcmread(stop_before_pixels) + values": lambda: baseline_loop(paths),
                 "medviewer scan, one process": our_scan,
                 "medviewer import_paths (new library)": our_import}
        times: dict[str, list[float]] = {name: [] for name in lines}
        for _ in range(args.rounds):  # interleaved: each round times every line once
            for name, run in lines.items():
                prepare()
                t0 = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - t0)
        with Library(work / "again.sqlite") as library:
            import_paths(library, [folder])
            prepare()
            t0 = time.perf_counter()
            again = import_paths(library, [folder])
            t_reimport = time.perf_counter() - t0
        assert again.unchanged == len(paths) and again.instances == 0

        n = len(paths)
        med = {name: float(np.median(v)) for name, v in times.items()}
        peer = med["peer: dcmread(stop_before_pixels) + values"]
        workers = worker_count(n)
        print(f"{'line':<44} {'files/s':>9} {'s (median of ' + str(args.rounds) + ')':>16} {'vs peer':>8}")
        for name, seconds in med.items():
            print(f"{name:<44} {n / seconds:>9.0f} {seconds:>16.2f} {peer / seconds:>7.2f}x")
        print(f"{'import_paths, re-import (nothing changed)':<44} {n / t_reimport:>9.0f} {t_reimport:>16.2f}")
        ours = med["medviewer import_paths (new library)"]
        condition = "busy (one CPU-bound process beside)" if args.busy else "quiet"
        print()
        print(f"{'goal':<44} {'peer':>9} {'ours':>9} {'ratio':>7} met")
        print(f"{'import >= 1.5x the peer':<44} {n / peer:>9.0f} {n / ours:>9.0f} {peer / ours:>6.2f}x "
              f"{'yes' if peer / ours >= 1.5 else 'NO'}")
        if args.busy:
            print(f"{'import >= 1,000 files/s, machine busy':<44} {'-':>9} {n / ours:>9.0f} {'-':>7} "
                  f"{'yes' if n / ours >= 1000 else 'NO'}")
        print(f"condition: {condition}; page cache {'cold' if args.cold else 'warm'}; {workers} scan workers "
              f"(pool from {POOL_MIN_FILES} files); load average {os.getloadavg()[0]:.1f}")
        print(f"python {sys.version.split()[0]}, pydicom {pydicom.__version__}, "
              f"numpy {np.__version__}, {os.cpu_count()} CPUs")
    finally:
        if burner is not None:
            burner[1].set()
            burner[0].join(5)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

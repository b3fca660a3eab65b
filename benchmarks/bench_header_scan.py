"""Header scan speed: files/s of MedViewer's header-only scan against a plain pydicom loop.

Writes N synthetic CT slices (512x512 uint16, seeded; 20 series of N/20 slices) as real
DICOM files, then times, over the same files:

1. ``medviewer.dicom.scan.scan`` (header only, pixel data deferred, checks included),
2. a plain loop of full ``pydicom.dcmread`` (what a naive importer does),
3. for information, ``pydicom.dcmread`` + ``.pixel_array`` (a full decode),
4. for information, ``pydicom.dcmread`` + reading the same header values the scan reads
   (pydicom converts values lazily, so a bare ``dcmread`` has not parsed them yet),
5. ``import_paths`` into a fresh library (scan + sort + write, the user-facing import),
6. the same import again with nothing changed (incremental re-import).

Prints files/s for each and the scan : dcmread ratio.  By default the files are read once
before the timings so every loop sees the same warm page cache; ``--cold`` instead evicts
the files from the page cache (``posix_fadvise(DONTNEED)``, Linux) before each loop, which
is closer to a first import from disk.

Usage: python benchmarks/bench_header_scan.py [--files 2000] [--dir DIR] [--size 512] [--cold]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000, help="number of files (default 2000)")
    parser.add_argument("--dir", type=Path, help="folder for the files (kept; reused next time)")
    parser.add_argument("--size", type=int, default=512, help="rows and columns (default 512)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cold", action="store_true",
                        help="evict the files from the page cache before each loop")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mv-bench-scan-"))
    os.environ.setdefault("MEDVIEWER_CONFIG_DIR", str(work / "config"))
    os.environ.setdefault("MEDVIEWER_DATA_DIR", str(work / "data"))
    folder = args.dir or work / "files"
    try:
        import warnings

        import pydicom

        from medviewer.dicom.scan import scan
        from medviewer.dicom.sources import FileRef, iter_files
        from medviewer.services.importer import import_paths
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

        prepare()
        t0 = time.perf_counter()
        headers = [scan(ref) for ref in refs]
        t_scan = time.perf_counter() - t0
        assert all(h.rows == args.size for h in headers)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prepare()
            t0 = time.perf_counter()
            for p in paths:
                pydicom.dcmread(p)
            t_read = time.perf_counter() - t0

            prepare()
            t0 = time.perf_counter()
            for p in paths:
                ds = pydicom.dcmread(p)
                for keyword in HEADER_KEYWORDS:
                    ds.get(keyword)
            t_values = time.perf_counter() - t0

            prepare()
            t0 = time.perf_counter()
            for p in paths:
                pydicom.dcmread(p).pixel_array  # noqa: B018 - the decode is the point
            t_pixels = time.perf_counter() - t0

        with Library(work / "bench.sqlite") as library:
            prepare()
            t0 = time.perf_counter()
            first = import_paths(library, [folder])
            t_import = time.perf_counter() - t0
            prepare()
            t0 = time.perf_counter()
            again = import_paths(library, [folder])
            t_reimport = time.perf_counter() - t0
        assert first.instances == len(paths) and not first.skipped, first.skipped[:3]
        assert again.unchanged == len(paths) and again.instances == 0

        n = len(paths)
        print(f"medviewer scan (header only)     {rate(n, t_scan)}")
        print(f"pydicom.dcmread (full file)      {rate(n, t_read)}")
        print(f"pydicom.dcmread + header values  {rate(n, t_values)}")
        print(f"pydicom.dcmread + .pixel_array   {rate(n, t_pixels)}")
        print(f"import_paths (new library)       {rate(n, t_import)}")
        print(f"import_paths (re-import, same)   {rate(n, t_reimport)}")
        print(f"ratio scan : dcmread = {t_read / t_scan:.2f}x  "
              f"(scan : dcmread+values = {t_values / t_scan:.2f}x, "
              f"scan : dcmread+pixels = {t_pixels / t_scan:.2f}x)")
        print(f"page cache: {'cold (evicted before each loop)' if args.cold else 'warm'}")
        print(f"python {sys.version.split()[0]}, pydicom {pydicom.__version__}, "
              f"numpy {np.__version__}, {os.cpu_count()} CPUs")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

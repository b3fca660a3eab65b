"""Imports scanned over worker processes do exactly what the same import does in one process."""

from __future__ import annotations

import shutil

import pytest

import helpers_dicom as h
from medviewer.errors import TaskCancelled
from medviewer.services import importer, parallel_scan
from medviewer.services.importer import import_paths
from medviewer.store import Library
from medviewer.tasks import TaskState


def _library_rows(library):
    rows = library.conn.execute(
        "SELECT location, sop_uid, transfer_syntax, instance_number, slice_index, rows, columns, position "
        "FROM instances ORDER BY location").fetchall()
    series = library.conn.execute(
        "SELECT series_uid, sorted_by, spacing, warnings FROM series ORDER BY series_uid").fetchall()
    return rows, series, sorted(c.location for c in library.cases())


def _folder(tmp_path):
    root = tmp_path / "in"
    h.write_ct_series(root / "ct", n=30, rows=8, cols=8, seed=3)
    h.write_ct_series(root / "ct2", n=9, rows=8, cols=8, seed=4, series_description="B")
    shutil.copytree(root / "ct", root / "copy")  # duplicates of every file of ct: found in order
    (root / "junk.dcm").write_bytes(b"not dicom at all")
    h.write_png(root / "png" / "x.png", seed=1)
    return root


def test_parallel_import_equals_the_in_process_import(tmp_path, monkeypatch):
    root = _folder(tmp_path)
    with Library(tmp_path / "serial.sqlite") as serial:
        monkeypatch.setattr(parallel_scan, "POOL_MIN_FILES", 10**9)
        want = import_paths(serial, [root])
        want_rows = _library_rows(serial)
    with Library(tmp_path / "parallel.sqlite") as parallel:
        monkeypatch.setattr(parallel_scan, "POOL_MIN_FILES", 1)
        monkeypatch.setattr(parallel_scan, "CHUNK", 4)
        assert parallel_scan.worker_count(80) >= 2 or pytest.skip("one CPU: no pool to test")
        got = import_paths(parallel, [root])
        assert _library_rows(parallel) == want_rows
    assert got.as_dict() == want.as_dict()
    assert sum(s.reason == "duplicate" for s in got.skipped) == 30
    assert [s.path for s in got.skipped if s.reason != "duplicate"] == [str(root / "junk.dcm")]


def test_small_imports_never_start_a_pool():
    assert parallel_scan.worker_count(parallel_scan.POOL_MIN_FILES - 1) == 0
    assert parallel_scan.worker_count(0) == 0


class _CancelAfter(TaskState):
    """Ask for cancellation once the importer has reported ``files`` scanned."""

    def __init__(self, files):
        super().__init__()
        self.files = files

    def set_progress(self, fraction, status=None):
        super().set_progress(fraction, status)
        if status and status.startswith("Scanning") and int(status.split()[1]) >= self.files:
            self.request_cancel()


def test_cancel_during_a_parallel_scan_keeps_committed_batches_and_stops(tmp_path, monkeypatch):
    monkeypatch.setattr(parallel_scan, "POOL_MIN_FILES", 1)
    monkeypatch.setattr(parallel_scan, "CHUNK", 4)
    monkeypatch.setattr(importer, "BATCH", 10)
    h.write_ct_series(tmp_path / "in" / "a", n=120, rows=8, cols=8, seed=21)
    with Library(tmp_path / "lib.sqlite") as library:
        with pytest.raises(TaskCancelled):
            import_paths(library, [tmp_path / "in"], state=_CancelAfter(0))
        # Asked at the first progress report, noticed at the next check (file 50): the five
        # batches of 10 before it are committed, nothing after, with scans still in flight.
        assert library.counts()["instances"] == 50
        report = import_paths(library, [tmp_path / "in"])
        assert (report.instances, report.unchanged) == (70, 50)
        assert all(r.slice_index is not None for r in library.instances(library.series()[0].id))

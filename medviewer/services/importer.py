"""Import files, folders, zips and DICOMDIRs into a case library, with a report.

One bad file never stops an import: each file is scanned on its own and a
failure becomes a line of the :class:`ImportReport`.  Unchanged files (same
location, size and modification time) are skipped without being read, so a
re-import of a big folder is quick.  Work is committed in batches, so a crash
loses at most the batch in flight, never earlier imports.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from medviewer.dicom.content import sample_hash
from medviewer.dicom.geometry import sort_series
from medviewer.dicom.scan import InstanceHeader
from medviewer.dicom.sources import FileRef, iter_files
from medviewer.errors import ImageReadError
from medviewer.labels.table import LabelTable, read_label_table
from medviewer.services.parallel_scan import scan_files
from medviewer.store.library import Library, dicom_copy_key
from medviewer.tasks import TaskState, ensure_state

BATCH = 200
# Compressed pixel data can fail to decode even when the header is fine; those
# files are decoded once at import so the report, not the viewer, tells the user.
VERIFY_MODES = ("compressed", "all", "none")


@dataclass(frozen=True)
class SkippedFile:
    """A file that was not imported, and why."""

    path: str
    reason: str
    detail: str = ""


@dataclass
class ImportReport:
    """What an import did.

    Counts are of the patients, studies and series that received at least one
    new or changed instance in this import; ``instances`` counts those instances.
    """

    patients: int = 0
    studies: int = 0
    series: int = 0
    instances: int = 0
    unchanged: int = 0
    labelled_cases: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    warnings: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Return the report as JSON-able data (the CLI's ``--json`` output)."""
        return {
            "patients": self.patients, "studies": self.studies, "series": self.series,
            "instances": self.instances, "unchanged": self.unchanged,
            "labelled_cases": self.labelled_cases,
            "skipped": [{"path": s.path, "reason": s.reason, "detail": s.detail}
                        for s in self.skipped],
            "geometry_warnings": self.warnings,
        }


def import_paths(library: Library, inputs: Iterable[str | os.PathLike], *,
                 labels: str | os.PathLike | LabelTable | None = None,
                 verify: str = "compressed", state: TaskState | None = None) -> ImportReport:
    """Import images into ``library``.

    Parameters
    ----------
    library : Library
    inputs : iterable of path-like
        Files, folders (recursive), zip archives, DICOMDIR files.
    labels : path-like or LabelTable, optional
        A label table applied to the imported images (source ``dataset``).
    verify : {"compressed", "all", "none"}
        Which files to test-decode during import.
    state : TaskState, optional
        Progress and cancellation.

    Returns
    -------
    ImportReport
    """
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {VERIFY_MODES}")
    state = ensure_state(state)
    inputs = [os.fspath(p) for p in inputs]
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    table = read_label_table(labels) if isinstance(labels, (str, os.PathLike)) else labels
    state.set_progress(0.0, "Listing files")
    report = ImportReport()

    def listed_skip(name: str, reason: str, detail: str) -> None:
        report.skipped.append(SkippedFile(name, reason, detail))

    refs = list(iter_files(inputs, on_skip=listed_skip))
    known = library.known_files()
    hashes = library.content_hashes()
    # (SOP Instance UID, content hash) -> location: the same file twice (a folder and a zip
    # of it) is one image.  Sharing an instance UID alone is not being the same file: a copy
    # with other pixels, or the instance in another encoding, is kept.
    seen_copies = library.dicom_copies()
    touched_series: set[int] = set()
    touched_instances: list[tuple[int, InstanceHeader]] = []
    pending: list[tuple[InstanceHeader, str | None]] = []

    def flush() -> None:
        with library.transaction():
            for header, patient in pending:
                key = ("id:" + patient) if patient else None
                instance, series = library.upsert_instance(header, patient_key=key,
                                                           patient_id=patient)
                touched_series.add(series)
                touched_instances.append((instance, header))
        pending.clear()

    def take(header: InstanceHeader, ref) -> None:
        if header.kind == "dicom":
            copy_key = dicom_copy_key(header.sop_instance_uid, header.content_hash,
                                      header.transfer_syntax, ref.size)
            original = seen_copies.setdefault(copy_key, ref.display)
            if original != ref.display:
                report.skipped.append(SkippedFile(ref.display, "duplicate",
                                                  f"the same file as {original}"))
                return
        entry = table.lookup(ref.display) if table is not None else None
        patient = entry.patient_id if entry is not None and entry.patient_id else None
        if header.kind == "dicom" and header.patient_id:
            patient = None  # the DICOM header's own patient wins over a table
        elif header.kind == "raster" and not patient:
            patient = raster_patient_id(ref.display)  # not one "(no name), no ID" per file
        pending.append((header, patient))
        if len(pending) >= BATCH:
            flush()

    to_scan = []
    for ref in refs:
        if known.get(ref.display) == (ref.size, ref.mtime) and not _rewritten(
                ref, hashes.get(ref.display, "")):
            report.unchanged += 1
        else:
            to_scan.append(ref)
    # Headers are scanned over worker processes for large imports; this thread is the one writer.
    outcomes = scan_files(to_scan, verify)
    try:
        for done, (ref, (header, skipped)) in enumerate(zip(to_scan, outcomes)):
            if done % 50 == 0:
                state.check()
                state.set_progress(0.9 * (done + report.unchanged) / max(1, len(refs)),
                                   f"Scanning {done + report.unchanged} of {len(refs)} files")
            if header is None:
                report.skipped.append(SkippedFile(ref.display, *skipped))
                continue
            take(header, ref)
    finally:
        outcomes.close()  # a cancel stops the workers before the last batch is committed
    if pending:
        flush()
    state.set_progress(0.92, "Sorting series")
    # Series left unsorted by an import that was cancelled or killed after a batch commit.
    touched_series |= library.unsorted_series()
    _finish_series(library, touched_series, report)
    if table is not None:
        state.set_progress(0.96, "Applying labels")
        report.labelled_cases = apply_labels(library, table)
    report.instances = len(touched_instances)
    _count_parents(library, touched_series, report)
    library.record_import(inputs, started, report.instances, report.unchanged,
                          [(s.path, s.reason, s.detail) for s in report.skipped])
    state.set_progress(1.0, f"Imported {report.instances} images, skipped {len(report.skipped)}")
    return report


def _rewritten(ref: FileRef, stored: str) -> bool:
    """Tell whether a file with its old size and time has other content than at import."""
    if not stored:
        return False  # imported before content hashes were taken
    try:
        return sample_hash(ref) != stored
    except (OSError, ImageReadError):
        return True  # scan it again: the scan says in words what is wrong


def raster_patient_id(display: str) -> str:
    """Return the patient ID a PNG/JPEG without a label-table row gets: its file name's stem.

    A radiograph file carries no patient; its name (``00000013_005.png``) is the
    only thing a reader can find it by, and it keeps each file its own patient.
    """
    name = display.replace("\\", "/").rsplit("/", 1)[-1].rsplit("!", 1)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return stem or name


def _finish_series(library: Library, series_ids: set[int], report: ImportReport) -> None:
    """Sort every touched series, store its warnings, and make sure its cases exist."""
    with library.transaction():
        for series_id in sorted(series_ids):
            slices = [_SliceRow(r) for r in library.slice_rows(series_id)]
            geometry = sort_series(slices)
            library.set_series_geometry(series_id, geometry, [s.id for s in slices])
            if geometry.warnings:
                name = library.series(series_id=series_id)[0].description or f"series {series_id}"
                report.warnings[f"{name} [{series_id}]"] = [w.message for w in geometry.warnings]
            _ensure_cases(library, slices, geometry.order)


def _ensure_cases(library: Library, slices: list, order: list[int]) -> None:
    """Make the cases of a series: every single-frame 2-D image, or one key slice of a stack.

    A stack of slices (CT, MR) is one case at its middle slice; a multi-frame
    image is one case at its middle frame; radiographs are one case each.
    """
    if len(slices) == 1 or all(s.position is None for s in slices) and len(slices) < 4:
        for s in slices:
            library.ensure_case(s.id, s.frames // 2 if s.frames > 1 else 0)
        return
    middle = slices[order[len(order) // 2]]
    if not library.count_cases_of([s.id for s in slices]):
        library.ensure_case(middle.id, 0)


class _SliceRow:
    """Adapter from an instances row to what :func:`sort_series` reads."""

    def __init__(self, row) -> None:
        self.id = row[0]
        self.image_position = tuple(json.loads(row[1])) if row[1] else None
        self.image_orientation = tuple(json.loads(row[2])) if row[2] else None
        self.instance_number = row[3]
        self.rows = row[4]
        self.columns = row[5]
        self.frames = row[6]
        self.position = self.image_position


def apply_labels(library: Library, table: LabelTable) -> int:
    """Attach a table's labels (and masks) to the library's cases; return cases labelled."""
    detail = str(table.source)
    labelled = 0
    rows = library.case_locations()
    with library.transaction():
        for case_id, location in rows:
            entry = table.lookup(location)
            if entry is None:
                continue
            library.set_labels(case_id, entry.labels, "dataset", detail)
            if entry.mask_path:
                library.set_case_mask(case_id, entry.mask_path)
            labelled += 1
    return labelled


def _count_parents(library: Library, series_ids: set[int], report: ImportReport) -> None:
    if not series_ids:
        return
    ids = sorted(series_ids)
    report.series = len(ids)
    report.studies, report.patients = library.parent_counts(ids)


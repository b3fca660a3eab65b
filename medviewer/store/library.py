"""The case library: patients > studies > series > instances, cases and their labels.

One SQLite file per library, in WAL mode so a worker thread can write while
the GUI reads.  A :class:`Library` object holds one connection and must be
used from the thread that opened it; open one per thread.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from medviewer.dicom.geometry import GeometryWarning, SeriesGeometry
from medviewer.dicom.scan import InstanceHeader
from medviewer.dicom.sources import FileRef
from medviewer.errors import LibraryError, SchemaVersionError
from medviewer.store import schema

LABEL_SOURCES = ("dataset", "user", "model")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class PatientRow:
    """A patient as listed in the library browser."""

    id: int
    patient_id: str
    name: str
    birth_date: str
    sex: str
    studies: int


@dataclass(frozen=True)
class StudyRow:
    """A study of one patient."""

    id: int
    patient_ref: int
    study_uid: str
    study_date: str
    description: str
    accession: str
    series: int


@dataclass(frozen=True)
class SeriesRow:
    """A series with its geometry summary."""

    id: int
    study_ref: int
    series_uid: str
    modality: str
    series_number: int | None
    description: str
    body_part: str
    instances: int
    frames: int
    spacing: float | None
    tilt_degrees: float | None
    sorted_by: str
    warnings: list[GeometryWarning]


@dataclass(frozen=True)
class InstanceRow:
    """One image file in the library, in its series' spatial order."""

    id: int
    series_ref: int
    location: str
    path: str
    member: str
    kind: str
    sop_uid: str
    instance_number: int | None
    rows: int
    columns: int
    frames: int
    photometric: str
    transfer_syntax: str
    pixel_spacing: tuple[float, float] | None
    slice_index: int | None
    # (0020,0032) and (0020,0037) as imported: for position-based scroll sync.
    image_position: tuple[float, float, float] | None = None
    image_orientation: tuple[float, ...] | None = None

    @property
    def ref(self) -> FileRef:
        """Return a reference for opening the file."""
        return FileRef(path=self.path, member=self.member)


@dataclass(frozen=True)
class CaseRow:
    """A case: the unit that is classified and retrieved (an image or one frame)."""

    id: int
    instance_ref: int
    frame: int
    location: str
    patient_id: str
    modality: str
    mask_path: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class StudyHeader:
    """What the viewer's corner text says about a study and its patient."""

    study_date: str
    description: str
    accession: str
    patient_name: str
    patient_id: str
    birth_date: str
    sex: str


def _json_tuple(text: str | None) -> tuple | None:
    """Return a stored JSON list of numbers as a tuple (``None`` when absent or unreadable)."""
    if not text:
        return None
    try:
        return tuple(float(v) for v in json.loads(text))
    except (ValueError, TypeError):
        return None


class Library:
    """A case library backed by one SQLite file.

    Parameters
    ----------
    path : str or Path
        The library file; created (with its folder) if missing.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).expanduser().resolve()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we open transactions ourselves, explicitly.
            self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            schema.migrate(self.conn, str(self.path))
        except SchemaVersionError:
            self.conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            raise LibraryError(f"cannot open the library ({exc})", path=self.path,
                               hint="check that the file is a MedViewer library and not damaged"
                               ) from exc
        self.conn.row_factory = sqlite3.Row

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block in one write transaction; roll back on any error."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextmanager
    def durable_transaction(self) -> Iterator[sqlite3.Connection]:
        """Run one write transaction with ``synchronous=FULL`` (user answers, marks, notes)."""
        previous = self.conn.execute("PRAGMA synchronous").fetchone()[0]
        self.conn.execute("PRAGMA synchronous=FULL")
        try:
            with self.transaction() as conn:
                yield conn
        finally:
            self.conn.execute(f"PRAGMA synchronous={int(previous)}")

    @property
    def schema_version(self) -> int:
        """Return the schema version of the file."""
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    # -- writing ----------------------------------------------------------------------------
    def known_files(self) -> dict[str, tuple[int, float]]:
        """Return ``{location: (size, mtime)}`` of every instance, for incremental import."""
        rows = self.conn.execute("SELECT location, size, mtime FROM instances")
        return {r["location"]: (r["size"], r["mtime"]) for r in rows}

    def content_hashes(self) -> dict[str, str]:
        """Return ``{location: content hash}`` of every instance ("" where none was taken)."""
        rows = self.conn.execute("SELECT location, content_hash FROM instances")
        return {r["location"]: r["content_hash"] for r in rows}

    def upsert_instance(self, header: InstanceHeader, patient_key: str | None = None,
                        patient_id: str | None = None) -> tuple[int, int]:
        """Insert or update one instance and its parents; return (instance id, series id).

        Call inside :meth:`transaction`.  ``patient_key``/``patient_id`` override the
        header's patient (raster images take theirs from a label table).
        """
        pid = header.patient_id if patient_id is None else patient_id
        key = patient_key or _patient_key(pid, header)
        conn = self.conn
        conn.execute(
            "INSERT INTO patients (patient_key, patient_id, name, birth_date, sex) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(patient_key) DO UPDATE SET "
            "name = CASE WHEN excluded.name != '' THEN excluded.name ELSE name END",
            (key, pid, header.patient_name, header.patient_birth_date, header.patient_sex))
        patient = conn.execute("SELECT id FROM patients WHERE patient_key = ?", (key,)).fetchone()[0]
        conn.execute(
            "INSERT INTO studies (patient_ref, study_uid, study_date, study_time, description, "
            "accession) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(study_uid) DO NOTHING",
            (patient, header.study_uid, header.study_date, header.study_time,
             header.study_description, header.accession_number))
        study = conn.execute("SELECT id FROM studies WHERE study_uid = ?",
                             (header.study_uid,)).fetchone()[0]
        conn.execute(
            "INSERT INTO series (study_ref, series_uid, modality, series_number, description, "
            "body_part) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(series_uid) DO NOTHING",
            (study, header.series_uid, header.modality, header.series_number,
             header.series_description, header.body_part))
        series = conn.execute("SELECT id FROM series WHERE series_uid = ?",
                              (header.series_uid,)).fetchone()[0]
        spacing = header.pixel_spacing or (None, None)
        values = (
            series, header.ref.display, header.ref.path, header.ref.member, header.kind,
            header.ref.size, header.ref.mtime, header.sop_instance_uid, header.sop_class_uid,
            header.transfer_syntax, header.instance_number, header.rows, header.columns,
            header.frames, header.samples_per_pixel, header.photometric, spacing[0], spacing[1],
            header.slice_thickness,
            json.dumps(header.image_position) if header.image_position else None,
            json.dumps(header.image_orientation) if header.image_orientation else None,
            header.burned_in_annotation, _now(),
        )
        conn.execute(
            "INSERT INTO instances (series_ref, location, path, member, kind, size, mtime, "
            "sop_uid, sop_class, transfer_syntax, instance_number, rows, columns, frames, samples, "
            "photometric, spacing_row, spacing_col, slice_thickness, position, orientation, "
            "burned_in, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?, ?, ?) ON CONFLICT(location) DO UPDATE SET series_ref = excluded.series_ref, "
            "size = excluded.size, mtime = excluded.mtime, sop_uid = excluded.sop_uid, "
            "sop_class = excluded.sop_class, transfer_syntax = excluded.transfer_syntax, "
            "instance_number = excluded.instance_number, rows = excluded.rows, "
            "columns = excluded.columns, frames = excluded.frames, samples = excluded.samples, "
            "photometric = excluded.photometric, spacing_row = excluded.spacing_row, "
            "spacing_col = excluded.spacing_col, slice_thickness = excluded.slice_thickness, "
            "position = excluded.position, orientation = excluded.orientation, "
            "burned_in = excluded.burned_in, imported_at = excluded.imported_at",
            values)
        instance = conn.execute("SELECT id FROM instances WHERE location = ?",
                                (header.ref.display,)).fetchone()[0]
        conn.execute("UPDATE instances SET content_hash = ? WHERE id = ?",
                     (header.content_hash, instance))
        return instance, series

    def set_series_geometry(self, series_id: int, geometry: SeriesGeometry,
                            instance_ids: list[int]) -> None:
        """Store a series' spatial order and warnings (``instance_ids`` in input order)."""
        for rank, index in enumerate(geometry.order):
            self.conn.execute("UPDATE instances SET slice_index = ? WHERE id = ?",
                              (rank, instance_ids[index]))
        self.conn.execute(
            "UPDATE series SET spacing = ?, tilt_degrees = ?, sorted_by = ?, warnings = ? "
            "WHERE id = ?",
            (geometry.spacing, geometry.tilt_degrees, geometry.sorted_by,
             json.dumps([[w.code, w.message] for w in geometry.warnings]), series_id))

    def ensure_case(self, instance_id: int, frame: int = 0) -> int:
        """Return the id of the case for (instance, frame), creating it if needed."""
        self.conn.execute("INSERT OR IGNORE INTO cases (instance_ref, frame) VALUES (?, ?)",
                          (instance_id, frame))
        return self.conn.execute("SELECT id FROM cases WHERE instance_ref = ? AND frame = ?",
                                 (instance_id, frame)).fetchone()[0]

    def set_case_mask(self, case_id: int, mask_path: str) -> None:
        """Record the lesion mask file of a case."""
        self.conn.execute("UPDATE cases SET mask_path = ? WHERE id = ?", (mask_path, case_id))

    def set_labels(self, case_id: int, names: Iterable[str], source: str,
                   detail: str = "", values: Iterable[float] | None = None) -> None:
        """Replace the labels a given source (and detail) gave a case."""
        if source not in LABEL_SOURCES:
            raise ValueError(f"label source must be one of {LABEL_SOURCES}, not {source!r}")
        names = list(names)
        values = [1.0] * len(names) if values is None else list(values)
        self.conn.execute("DELETE FROM labels WHERE case_ref = ? AND source = ? AND "
                          "source_detail = ?", (case_id, source, detail))
        now = _now()
        self.conn.executemany(
            "INSERT INTO labels (case_ref, name, value, source, source_detail, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(case_id, n, float(v), source, detail, now)
             for n, v in zip(names, values, strict=True)])

    def remove_locations(self, locations: Iterable[str]) -> int:
        """Remove instances (and their cases and labels) by location; return how many."""
        count = 0
        for location in locations:
            count += self.conn.execute("DELETE FROM instances WHERE location = ?",
                                       (location,)).rowcount
        return count

    def prune_empty(self) -> None:
        """Drop series, studies and patients left without instances."""
        self.conn.execute("DELETE FROM series WHERE id NOT IN (SELECT series_ref FROM instances)")
        self.conn.execute("DELETE FROM studies WHERE id NOT IN (SELECT study_ref FROM series)")
        self.conn.execute("DELETE FROM patients WHERE id NOT IN (SELECT patient_ref FROM studies)")

    def record_import(self, inputs: list[str], started_at: str, imported: int, unchanged: int,
                      skipped: list[tuple[str, str, str]]) -> int:
        """Store one import run and its skipped files; return the run id."""
        with self.transaction():
            run = self.conn.execute(
                "INSERT INTO import_runs (started_at, finished_at, inputs, imported, unchanged, "
                "skipped) VALUES (?, ?, ?, ?, ?, ?)",
                (started_at, _now(), json.dumps(inputs), imported, unchanged, len(skipped))
            ).lastrowid
            self.conn.executemany(
                "INSERT INTO import_skips (run_ref, location, reason, detail) VALUES (?, ?, ?, ?)",
                [(run, loc, reason, detail) for loc, reason, detail in skipped])
        return int(run)

    # -- reading ----------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Return the number of patients, studies, series, instances, cases and labels."""
        out = {}
        for table in ("patients", "studies", "series", "instances", "cases", "labels"):
            out[table] = int(self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        return out

    def patients(self, search: str = "") -> list[PatientRow]:
        """Return patients, optionally only those matching ``search``.

        The search matches patient ID or name, study description or accession,
        series description, modality, body part, or a label name.
        """
        sql = ("SELECT p.id, p.patient_id, p.name, p.birth_date, p.sex, "
               "(SELECT COUNT(*) FROM studies s WHERE s.patient_ref = p.id) AS n FROM patients p")
        params: tuple = ()
        if search:
            like = f"%{search}%"
            sql += (" WHERE p.patient_id LIKE ? OR p.name LIKE ? OR p.id IN ("
                    "SELECT st.patient_ref FROM studies st JOIN series se ON se.study_ref = st.id "
                    "WHERE st.description LIKE ? OR st.accession LIKE ? OR se.description LIKE ? "
                    "OR se.modality LIKE ? OR se.body_part LIKE ?) OR p.id IN ("
                    "SELECT st.patient_ref FROM labels l JOIN cases c ON c.id = l.case_ref "
                    "JOIN instances i ON i.id = c.instance_ref JOIN series se ON se.id = "
                    "i.series_ref JOIN studies st ON st.id = se.study_ref WHERE l.name LIKE ?) "
                    # The file name (after the last "/"), for PNG/JPEG radiographs above all.
                    "OR p.id IN (SELECT st.patient_ref FROM instances i JOIN series se ON se.id = "
                    "i.series_ref JOIN studies st ON st.id = se.study_ref WHERE replace(i.location, "
                    "rtrim(i.location, replace(i.location, '/', '')), '') LIKE ?)")
            params = (like,) * 9
        sql += " ORDER BY p.patient_id, p.name, p.id"
        return [PatientRow(r[0], r[1], r[2], r[3], r[4], r[5])
                for r in self.conn.execute(sql, params)]

    def studies(self, patient_ref: int) -> list[StudyRow]:
        """Return the studies of a patient, newest first."""
        rows = self.conn.execute(
            "SELECT s.id, s.patient_ref, s.study_uid, s.study_date, s.description, s.accession, "
            "(SELECT COUNT(*) FROM series x WHERE x.study_ref = s.id) FROM studies s "
            "WHERE s.patient_ref = ? ORDER BY s.study_date DESC, s.id", (patient_ref,))
        return [StudyRow(*r) for r in rows]

    def series(self, study_ref: int | None = None, series_id: int | None = None) -> list[SeriesRow]:
        """Return the series of a study (or one series by id), by series number."""
        sql = ("SELECT s.id, s.study_ref, s.series_uid, s.modality, s.series_number, "
               "s.description, s.body_part, COUNT(i.id), COALESCE(SUM(i.frames), 0), s.spacing, "
               "s.tilt_degrees, s.sorted_by, s.warnings FROM series s "
               "LEFT JOIN instances i ON i.series_ref = s.id ")
        if series_id is not None:
            sql += "WHERE s.id = ? GROUP BY s.id"
            params: tuple = (series_id,)
        elif study_ref is not None:
            sql += "WHERE s.study_ref = ? GROUP BY s.id ORDER BY s.series_number, s.id"
            params = (study_ref,)
        else:
            sql += "GROUP BY s.id ORDER BY s.id"
            params = ()
        out = []
        for r in self.conn.execute(sql, params):
            warnings = [GeometryWarning(code, msg) for code, msg in json.loads(r[12] or "[]")]
            out.append(SeriesRow(*r[:12], warnings=warnings))
        return out

    def instances(self, series_ref: int) -> list[InstanceRow]:
        """Return the instances of a series in spatial order."""
        rows = self.conn.execute(
            "SELECT id, series_ref, location, path, member, kind, sop_uid, instance_number, rows, "
            "columns, frames, photometric, transfer_syntax, spacing_row, spacing_col, slice_index, "
            "position, orientation FROM instances WHERE series_ref = ? "
            "ORDER BY COALESCE(slice_index, 1e9), instance_number, location", (series_ref,))
        out = []
        for r in rows:
            spacing = (r[13], r[14]) if r[13] is not None else None
            out.append(InstanceRow(*r[:13], pixel_spacing=spacing, slice_index=r[15],
                                   image_position=_json_tuple(r[16]),
                                   image_orientation=_json_tuple(r[17])))
        return out

    def instance_by_location(self, location: str) -> InstanceRow | None:
        """Return the instance stored at a location, if any."""
        row = self.conn.execute("SELECT series_ref FROM instances WHERE location = ?",
                                (location,)).fetchone()
        if row is None:
            return None
        return next(i for i in self.instances(row[0]) if i.location == location)

    def cases(self, label: str | None = None) -> list[CaseRow]:
        """Return cases with their dataset/user labels, optionally only those with ``label``."""
        rows = self.conn.execute(
            "SELECT c.id, c.instance_ref, c.frame, i.location, p.patient_id, se.modality, "
            "c.mask_path, (SELECT GROUP_CONCAT(name, '|') FROM (SELECT DISTINCT name FROM labels "
            "l WHERE l.case_ref = c.id AND l.source != 'model' ORDER BY name)) FROM cases c "
            "JOIN instances i ON i.id = c.instance_ref JOIN series se ON se.id = i.series_ref "
            "JOIN studies st ON st.id = se.study_ref JOIN patients p ON p.id = st.patient_ref "
            "ORDER BY c.id")
        out = []
        for r in rows:
            labels = tuple(r[7].split("|")) if r[7] else ()
            if label is None or label in labels:
                out.append(CaseRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], labels))
        return out

    def labels(self, case_id: int) -> list[tuple[str, float, str, str]]:
        """Return ``(name, value, source, detail)`` of every label of a case."""
        rows = self.conn.execute("SELECT name, value, source, source_detail FROM labels "
                                 "WHERE case_ref = ? ORDER BY source, name", (case_id,))
        return [tuple(r) for r in rows]

    def series_label_names(self, series_ref: int) -> list[str]:
        """Return the distinct non-model label names of a series' cases."""
        rows = self.conn.execute(
            "SELECT DISTINCT l.name FROM labels l JOIN cases c ON c.id = l.case_ref JOIN "
            "instances i ON i.id = c.instance_ref WHERE i.series_ref = ? AND l.source != 'model' "
            "ORDER BY l.name", (series_ref,))
        return [r[0] for r in rows]

    def case_at(self, instance_id: int, frame: int = 0) -> int | None:
        """Return the case of one plane (instance, frame), or None when it is not a case."""
        row = self.conn.execute("SELECT id FROM cases WHERE instance_ref = ? AND frame = ?",
                                (instance_id, frame)).fetchone()
        return None if row is None else int(row[0])

    def case_map(self, series_ref: int) -> dict[tuple[int, int], int]:
        """Return ``{(instance id, frame): case id}`` of every case of a series."""
        rows = self.conn.execute(
            "SELECT c.instance_ref, c.frame, c.id FROM cases c JOIN instances i ON "
            "i.id = c.instance_ref WHERE i.series_ref = ?", (series_ref,))
        return {(int(i), int(f)): int(c) for i, f, c in rows}

    def case_plane(self, case_id: int) -> tuple[int, int, int] | None:
        """Return ``(series id, instance id, frame)`` of a case, or None if it is gone."""
        row = self.conn.execute(
            "SELECT i.series_ref, i.id, c.frame FROM cases c JOIN instances i ON "
            "i.id = c.instance_ref WHERE c.id = ?", (case_id,)).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), int(row[2]))

    def instance_cases(self, instance_id: int) -> list[tuple[int, int, str]]:
        """Return ``(case id, frame, mask path)`` of the cases of one instance."""
        rows = self.conn.execute("SELECT id, frame, mask_path FROM cases WHERE instance_ref = ? "
                                 "ORDER BY frame", (instance_id,))
        return [(int(c), int(f), m or "") for c, f, m in rows]

    def study_header(self, study_id: int) -> StudyHeader | None:
        """Return the study's date, description and accession with its patient's details."""
        row = self.conn.execute(
            "SELECT st.study_date, st.description, st.accession, p.name, p.patient_id, "
            "p.birth_date, p.sex FROM studies st JOIN patients p ON p.id = st.patient_ref "
            "WHERE st.id = ?", (study_id,)).fetchone()
        return None if row is None else StudyHeader(*(r or "" for r in row))

    def patient_of_study(self, study_id: int) -> int | None:
        """Return the patient (row id) a study belongs to."""
        row = self.conn.execute("SELECT patient_ref FROM studies WHERE id = ?",
                                (study_id,)).fetchone()
        return int(row[0]) if row else None

    def first_series_of_study(self, study_uid: str) -> int | None:
        """Return the first series (by id) of a study given its Study Instance UID."""
        row = self.conn.execute(
            "SELECT se.id FROM series se JOIN studies st ON st.id = se.study_ref "
            "WHERE st.study_uid = ? ORDER BY se.id LIMIT 1", (study_uid,)).fetchone()
        return None if row is None else int(row[0])

    def label_names(self, *, include_model: bool = False) -> list[str]:
        """Return the distinct label names of the library (dataset/user ones unless asked)."""
        sql = "SELECT DISTINCT name FROM labels" + ("" if include_model else
                                                    " WHERE source != 'model'") + " ORDER BY name"
        return [r[0] for r in self.conn.execute(sql)]

    def modalities(self) -> list[str]:
        """Return the distinct modalities of the library's series."""
        rows = self.conn.execute(
            "SELECT DISTINCT modality FROM series WHERE modality != '' ORDER BY modality")
        return [r[0] for r in rows]

    def most_labelled_case(self, modalities: tuple[str, ...], *, source: str = "dataset",
                           ignore: tuple[str, ...] = ("No Finding",)) -> int | None:
        """Return the case of these modalities with the most labels of ``source`` (ties: lowest id)."""
        marks = ",".join("?" * len(modalities))
        skip = ",".join("?" * len(ignore)) or "''"
        row = self.conn.execute(
            "SELECT c.id FROM cases c JOIN instances i ON i.id = c.instance_ref "
            "JOIN series s ON s.id = i.series_ref "
            f"LEFT JOIN labels l ON l.case_ref = c.id AND l.source = ? AND l.name NOT IN ({skip}) "
            f"WHERE s.modality IN ({marks}) GROUP BY c.id "
            "ORDER BY COUNT(l.name) DESC, c.id LIMIT 1",
            (source, *ignore, *modalities)).fetchone()
        return None if row is None else int(row[0])

    def case_location(self, case_id: int) -> tuple[str, int] | None:
        """Return ``(display location, frame)`` of a case, or None if it is gone."""
        row = self.conn.execute("SELECT i.location, c.frame FROM cases c JOIN instances i ON "
                                "i.id = c.instance_ref WHERE c.id = ?", (case_id,)).fetchone()
        return None if row is None else (row[0], int(row[1]))

    def case_locations(self) -> list[tuple[int, str]]:
        """Return ``(case id, display location)`` of every case."""
        return [(int(c), loc) for c, loc in self.conn.execute(
            "SELECT c.id, i.location FROM cases c JOIN instances i ON i.id = c.instance_ref")]

    def study_sop_uids(self, study_uid: str) -> set[str]:
        """Return the SOP Instance UIDs the library holds for a study."""
        rows = self.conn.execute(
            "SELECT i.sop_uid FROM instances i JOIN series se ON se.id = i.series_ref JOIN "
            "studies st ON st.id = se.study_ref WHERE st.study_uid = ?", (study_uid,))
        return {r[0] for r in rows}

    def dicom_copies(self) -> dict[tuple, str]:
        """Return ``{copy key: location}`` of DICOM instances (see :func:`dicom_copy_key`)."""
        return {dicom_copy_key(r[0], r[1], r[2], r[3]): r[4] for r in self.conn.execute(
            "SELECT sop_uid, content_hash, transfer_syntax, size, location FROM instances "
            "WHERE kind = 'dicom'")}

    def unsorted_series(self) -> set[int]:
        """Return the series with instances not yet in spatial order (an interrupted import)."""
        return {int(r[0]) for r in self.conn.execute(
            "SELECT DISTINCT series_ref FROM instances WHERE slice_index IS NULL")}

    def slice_rows(self, series_ref: int) -> list[tuple]:
        """Return ``(id, position, orientation, instance number, rows, columns, frames,
        location)`` of a series' instances, as the geometry sort reads them."""
        return self.conn.execute(
            "SELECT id, position, orientation, instance_number, rows, columns, frames, "
            "location FROM instances WHERE series_ref = ?", (series_ref,)).fetchall()

    def count_cases_of(self, instance_ids: list[int]) -> int:
        """Return how many cases these instances have."""
        if not instance_ids:
            return 0
        marks = ",".join("?" * len(instance_ids))
        return int(self.conn.execute(f"SELECT COUNT(*) FROM cases WHERE instance_ref IN ({marks})",
                                     list(instance_ids)).fetchone()[0])

    def parent_counts(self, series_ids: list[int]) -> tuple[int, int]:
        """Return ``(studies, patients)`` the given series belong to."""
        if not series_ids:
            return 0, 0
        marks = ",".join("?" * len(series_ids))
        studies = self.conn.execute(
            f"SELECT COUNT(DISTINCT study_ref) FROM series WHERE id IN ({marks})",
            list(series_ids)).fetchone()[0]
        patients = self.conn.execute(
            "SELECT COUNT(DISTINCT st.patient_ref) FROM series se JOIN studies st ON "
            f"st.id = se.study_ref WHERE se.id IN ({marks})", list(series_ids)).fetchone()[0]
        return int(studies), int(patients)

    def export_instances(self, *, series_ids: list[int] | None = None,
                         study_ids: list[int] | None = None) -> list:
        """Return the instances of some series, some studies, or (neither) the whole library.

        Rows have ``path, member, size, mtime, series_ref, study_ref, patient_ref``, in
        patient, study, series and spatial order.
        """
        if series_ids is not None:
            where, ids = "i.series_ref IN ({})", list(series_ids)
        elif study_ids is not None:
            where, ids = "se.study_ref IN ({})", list(study_ids)
        else:
            where, ids = "1", []
        sql = ("SELECT i.path, i.member, i.size, i.mtime, i.series_ref, se.study_ref, "
               "st.patient_ref FROM instances i JOIN series se ON se.id = i.series_ref "
               "JOIN studies st ON st.id = se.study_ref WHERE "
               + where.format(", ".join("?" * len(ids))) +
               " ORDER BY st.patient_ref, se.study_ref, se.series_number, i.series_ref, "
               "COALESCE(i.slice_index, 1e9), i.instance_number, i.location")
        return self.conn.execute(sql, ids).fetchall()

    def source_files(self) -> list[str]:
        """Return the distinct files the instances are read from."""
        return [r[0] for r in self.conn.execute("SELECT DISTINCT path FROM instances")]

    def import_inputs(self) -> list[list[str]]:
        """Return the inputs (files and folders) of every import run."""
        return [json.loads(r[0]) for r in self.conn.execute("SELECT inputs FROM import_runs")]

    def catalog_rows(self) -> list[tuple]:
        """Return every case with its file, patient, study, series and labels, by case id.

        Columns: case id, location, path, member, frame, size, mtime, patient ID, patient
        row id, Study Instance UID, study date, modality, body part, ``|``-joined
        dataset/user label names, the content hash taken at import.
        """
        return self.conn.execute(
            "SELECT c.id, i.location, i.path, i.member, c.frame, i.size, i.mtime, p.patient_id, "
            "p.id, st.study_uid, st.study_date, se.modality, se.body_part, "
            "(SELECT GROUP_CONCAT(name, '|') FROM (SELECT DISTINCT name FROM labels l "
            " WHERE l.case_ref = c.id AND l.source != 'model' ORDER BY name)), i.content_hash "
            "FROM cases c JOIN instances i ON i.id = c.instance_ref "
            "JOIN series se ON se.id = i.series_ref JOIN studies st ON st.id = se.study_ref "
            "JOIN patients p ON p.id = st.patient_ref ORDER BY c.id").fetchall()

    def last_import_skips(self) -> list[tuple[str, str, str]]:
        """Return (location, reason, detail) of the files the latest import skipped."""
        run = self.conn.execute("SELECT MAX(id) FROM import_runs").fetchone()[0]
        if run is None:
            return []
        rows = self.conn.execute("SELECT location, reason, detail FROM import_skips "
                                 "WHERE run_ref = ? ORDER BY location", (run,))
        return [tuple(r) for r in rows]


def _patient_key(patient_id: str, header: InstanceHeader) -> str:
    """Identify a patient: by ID where there is one, else by name and birth date, else study."""
    if patient_id:
        return "id:" + patient_id
    if header.patient_name:
        return f"name:{header.patient_name}|{header.patient_birth_date}"
    return "study:" + header.study_uid


def dicom_copy_key(sop_uid: str, content_hash: str, transfer_syntax: str, size: int) -> tuple:
    """Return what makes two DICOM files one image: instance UID and content hash.

    Sharing an instance UID is not enough (a copy with other pixels is another image).
    Rows imported before content hashes were taken fall back to syntax and size.
    """
    return (sop_uid, content_hash) if content_hash else (sop_uid, transfer_syntax, size)

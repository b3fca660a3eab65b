"""Measurements and key image marks in the case library (the only SQL of this package).

Each row belongs to one instance (by the library's instance id) and one frame;
points are stored as JSON ``[[column, row], ...]`` in stored-frame coordinates.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from medviewer.measurements.model import Measurement
from medviewer.store.library import Library

_COLUMNS = "m.id, m.instance_ref, m.frame, m.kind, m.points, m.label, m.uid, m.source, i.sop_uid"


def _row(r) -> Measurement:
    return Measurement(id=r[0], instance_ref=r[1], frame=r[2], kind=r[3],
                       points=[tuple(p) for p in json.loads(r[4])], label=r[5], uid=r[6],
                       source=r[7], sop_uid=r[8])


def add_measurement(library: Library, instance_ref: int, measurement: Measurement) -> int:
    """Store a measurement on an instance; return its id (an existing UID is updated)."""
    with library.transaction():
        library.conn.execute(
            "INSERT INTO measurements (instance_ref, frame, kind, points, label, uid, source, "
            "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(uid) DO UPDATE SET "
            "points = excluded.points, label = excluded.label, kind = excluded.kind",
            (instance_ref, measurement.frame, measurement.kind,
             json.dumps([list(p) for p in measurement.points]), measurement.label,
             measurement.uid, measurement.source,
             datetime.now(timezone.utc).isoformat(timespec="seconds")))
        row = library.conn.execute("SELECT id FROM measurements WHERE uid = ?",
                                   (measurement.uid,)).fetchone()
    measurement.id, measurement.instance_ref = int(row[0]), instance_ref
    return int(row[0])


def measurements_for_series(library: Library, series_ref: int) -> list[Measurement]:
    """Return every measurement on the images of one series."""
    rows = library.conn.execute(
        f"SELECT {_COLUMNS} FROM measurements m JOIN instances i ON i.id = m.instance_ref "
        "WHERE i.series_ref = ? ORDER BY m.id", (series_ref,))
    return [_row(r) for r in rows]


def list_measurements(library: Library) -> list[tuple[Measurement, str, str]]:
    """Return every measurement with its image's location and its series' description."""
    rows = library.conn.execute(
        f"SELECT {_COLUMNS}, i.location, se.modality || ' ' || se.description FROM measurements m "
        "JOIN instances i ON i.id = m.instance_ref JOIN series se ON se.id = i.series_ref "
        "ORDER BY m.id")
    return [(_row(r), r[9], r[10].strip()) for r in rows]


def measurement_exists(library: Library, uid: str) -> bool:
    """Return whether the library holds a measurement with this tracking UID."""
    return library.conn.execute("SELECT 1 FROM measurements WHERE uid = ?",
                                (uid,)).fetchone() is not None


def delete_measurement(library: Library, measurement_id: int) -> bool:
    """Delete one measurement; return whether it existed."""
    with library.transaction():
        cur = library.conn.execute("DELETE FROM measurements WHERE id = ?", (measurement_id,))
    return cur.rowcount > 0


def update_label(library: Library, measurement_id: int, label: str) -> None:
    """Change a measurement's text."""
    with library.transaction():
        library.conn.execute("UPDATE measurements SET label = ? WHERE id = ?",
                             (label, measurement_id))


def instance_ref_for_sop(library: Library, sop_uid: str) -> int | None:
    """Return the library's instance id of a SOP Instance UID, if the library holds it."""
    row = library.conn.execute("SELECT id FROM instances WHERE sop_uid = ? ORDER BY id LIMIT 1",
                               (sop_uid,)).fetchone()
    return int(row[0]) if row else None


def toggle_key_image(library: Library, instance_ref: int, frame: int = 0) -> bool:
    """Mark a frame as a key image, or unmark it if it was one; return whether it is one now."""
    with library.transaction():
        cur = library.conn.execute(
            "DELETE FROM key_image_marks WHERE instance_ref = ? AND frame = ?",
            (instance_ref, frame))
        if cur.rowcount:
            return False
        library.conn.execute(
            "INSERT INTO key_image_marks (instance_ref, frame, created) VALUES (?, ?, ?)",
            (instance_ref, frame, datetime.now(timezone.utc).isoformat(timespec="seconds")))
    return True


def is_key_image(library: Library, instance_ref: int, frame: int = 0) -> bool:
    """Return whether a frame is marked as a key image."""
    return library.conn.execute(
        "SELECT 1 FROM key_image_marks WHERE instance_ref = ? AND frame = ?",
        (instance_ref, frame)).fetchone() is not None


def list_key_images(library: Library) -> list[tuple[int, int, str, str]]:
    """Return every key image as (instance id, frame, image location, series description)."""
    rows = library.conn.execute(
        "SELECT k.instance_ref, k.frame, i.location, se.modality || ' ' || se.description "
        "FROM key_image_marks k JOIN instances i ON i.id = k.instance_ref "
        "JOIN series se ON se.id = i.series_ref ORDER BY k.id")
    return [(int(r[0]), int(r[1]), r[2], r[3].strip()) for r in rows]

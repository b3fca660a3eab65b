"""The reader-study tables' SQL: every read and write of the study package, in one place.

The functions take a ``sqlite3.Connection`` (a library's, or a reading package's:
both hold the same tables, see :mod:`medviewer.study.tables`).  Callers own the
transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable


def list_studies(conn: sqlite3.Connection) -> list[tuple[int, str]]:
    """Return ``(id, name)`` of every reader study, oldest first."""
    return [(int(i), n) for i, n in conn.execute("SELECT id, name FROM reader_studies ORDER BY id")]


def only_study_id(conn: sqlite3.Connection) -> int | None:
    """Return the id of a reading package's one study (None when it holds none)."""
    row = conn.execute("SELECT id FROM reader_studies ORDER BY id LIMIT 1").fetchone()
    return None if row is None else int(row[0])


def study_named(conn: sqlite3.Connection, name_or_id: str | int) -> int | None:
    """Return the id of the study with this name (or id), or None."""
    row = conn.execute("SELECT id FROM reader_studies WHERE name = ? OR CAST(id AS TEXT) = ?",
                       (str(name_or_id), str(name_or_id))).fetchone()
    return None if row is None else int(row[0])


def name_taken(conn: sqlite3.Connection, name: str) -> bool:
    """Whether a study of this name exists."""
    return conn.execute("SELECT 1 FROM reader_studies WHERE name = ?", (name,)).fetchone() is not None


def study_name(conn: sqlite3.Connection, study_id: int) -> str:
    """Return a study's name."""
    return conn.execute("SELECT name FROM reader_studies WHERE id = ?", (study_id,)).fetchone()[0]


def insert_study(conn: sqlite3.Connection, *, name: str, uid: str, created_at: str,
                 bundle_sha256: str, index_version: str, seed: int, k: int, picks_required: int,
                 design: str) -> int:
    """Insert a study row; return its id."""
    return int(conn.execute(
        "INSERT INTO reader_studies (name, uid, created_at, bundle_sha256, index_version, seed, "
        "k, picks_required, design) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (name, uid, created_at, bundle_sha256, index_version, seed, k, picks_required,
         design)).lastrowid)


def insert_query(conn: sqlite3.Connection, study_id: int, position: int, case_id: int,
                 modality: str, label_group: str) -> int:
    """Insert one query of a study; return its id."""
    return int(conn.execute(
        "INSERT INTO study_queries (study_ref, position, case_ref, modality, label_group) "
        "VALUES (?, ?, ?, ?, ?)", (study_id, position, case_id, modality, label_group)).lastrowid)


def insert_candidates(conn: sqlite3.Connection,
                      rows: Iterable[tuple[int, int, int, int, float]]) -> None:
    """Insert ``(query id, case id, model_closest, rank, distance)`` candidate rows."""
    conn.executemany("INSERT INTO study_candidates (query_ref, case_ref, model_closest, rank, "
                     "distance) VALUES (?, ?, ?, ?, ?)", rows)


def study_candidates(conn: sqlite3.Connection, study_id: int) -> list[tuple]:
    """Return ``(query id, case id, model_closest, rank, distance)`` of a study's candidates."""
    return conn.execute(
        "SELECT c.query_ref, c.case_ref, c.model_closest, c.rank, c.distance FROM "
        "study_candidates c JOIN study_queries q ON q.id = c.query_ref WHERE q.study_ref = ? "
        "ORDER BY c.id", (study_id,)).fetchall()


def study_queries(conn: sqlite3.Connection, study_id: int) -> dict[int, tuple[int, str, str]]:
    """Return ``{query id: (case id, modality, label group)}`` of a study."""
    return {int(q): (c, m, g) for q, c, m, g in conn.execute(
        "SELECT id, case_ref, modality, label_group FROM study_queries WHERE study_ref = ?",
        (study_id,))}


def finished_responses(conn: sqlite3.Connection, study_id: int) -> list[tuple]:
    """Return ``(reader name, query id, status, picked json, seconds)`` of finished responses."""
    return conn.execute(
        "SELECT r.name, s.query_ref, s.status, s.picked, s.seconds FROM study_responses s "
        "JOIN study_readers r ON r.id = s.reader_ref WHERE r.study_ref = ? AND "
        "s.status != 'in_progress' ORDER BY r.name, s.query_ref", (study_id,)).fetchall()


def candidate_cases(conn: sqlite3.Connection, query_id: int) -> dict[int, int]:
    """Return ``{candidate id: case id}`` of one query."""
    return {int(c): int(case) for c, case in conn.execute(
        "SELECT id, case_ref FROM study_candidates WHERE query_ref = ?", (query_id,))}


def query_count(conn: sqlite3.Connection, study_id: int) -> int:
    """Return the number of queries of a study."""
    return int(conn.execute("SELECT COUNT(*) FROM study_queries WHERE study_ref = ?",
                            (study_id,)).fetchone()[0])


def study_readers(conn: sqlite3.Connection, study_id: int) -> list[tuple[int, str]]:
    """Return ``(reader id, name)`` of a study's readers, by name."""
    return [(int(i), n) for i, n in conn.execute(
        "SELECT id, name FROM study_readers WHERE study_ref = ? ORDER BY name", (study_id,))]


def reader_times(conn: sqlite3.Connection, reader_id: int) -> list[tuple[str, float]]:
    """Return ``(status, seconds)`` of every response of one reader."""
    return [(s, float(t)) for s, t in conn.execute(
        "SELECT status, seconds FROM study_responses WHERE reader_ref = ?", (reader_id,))]

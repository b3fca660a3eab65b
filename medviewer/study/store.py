"""The reader-study tables' SQL: every read and write of the study package, in one place.

The functions take a ``sqlite3.Connection`` (a library's, or a reading package's:
both hold the same tables, see :mod:`medviewer.study.tables`).  Callers own the
transaction, except where a function says it opens or commits one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from medviewer.study.tables import STUDY_SQL


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


# -- connections and transactions ----------------------------------------------------------------
def open_study_db(path: str | Path) -> sqlite3.Connection:
    """Open a study database (a library or a reading package) for durable writes."""
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk when it returns, even if the machine loses power.
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def open_read_only(path: Path) -> sqlite3.Connection:
    """Open a database read-only: it is never modified (or created) by reading it."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """Hold SQLite's write lock (``BEGIN IMMEDIATE``) from the first read of a change to its commit.

    Reads made inside see the state the write will replace, so a read-modify-write
    never computes a change from a state another process has since replaced.  The
    connection must be in autocommit mode (``isolation_level=None``).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# -- a reader's session -----------------------------------------------------------------------
def study_seed_and_picks(conn: sqlite3.Connection, study_id: int) -> tuple[int, int] | None:
    """Return ``(seed, picks_required)`` of a study, or None when there is no such study."""
    row = conn.execute("SELECT seed, picks_required FROM reader_studies WHERE id = ?",
                       (study_id,)).fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def reader_row(conn: sqlite3.Connection, study_id: int, name: str) -> tuple[int, int] | None:
    """Return ``(reader id, seed)`` of a study's reader of this name, or None."""
    row = conn.execute("SELECT id, seed FROM study_readers WHERE study_ref = ? AND name = ?",
                       (study_id, name)).fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def register_reader(conn: sqlite3.Connection, study_id: int, name: str, seed: int,
                    created_at: str) -> None:
    """Insert a reader unless one of this name is there already (a concurrent registration)."""
    conn.execute("INSERT OR IGNORE INTO study_readers (study_ref, name, seed, created_at) "
                 "VALUES (?, ?, ?, ?)", (study_id, name, seed, created_at))


def queries_by_position(conn: sqlite3.Connection, study_id: int) -> list[tuple[int, int]]:
    """Return ``(query id, case id)`` of a study's queries in their designed order."""
    return conn.execute("SELECT id, case_ref FROM study_queries WHERE study_ref = ? "
                        "ORDER BY position", (study_id,)).fetchall()


def query_candidates(conn: sqlite3.Connection, query_id: int) -> list[tuple[int, int]]:
    """Return ``(candidate id, case id)`` of one query's candidates, by candidate id."""
    return conn.execute("SELECT id, case_ref FROM study_candidates WHERE query_ref = ? "
                        "ORDER BY id", (query_id,)).fetchall()


def response_row(conn: sqlite3.Connection, reader_id: int,
                 query_id: int) -> tuple[str, str, str, float] | None:
    """Return ``(status, picked json, skip reason, seconds)`` of a reader's response, or None."""
    return conn.execute("SELECT status, picked, skip_reason, seconds FROM study_responses "
                        "WHERE reader_ref = ? AND query_ref = ?", (reader_id, query_id)).fetchone()


def finished_queries(conn: sqlite3.Connection, reader_id: int) -> set[int]:
    """Return the ids of the queries a reader answered or skipped."""
    return {r[0] for r in conn.execute(
        "SELECT query_ref FROM study_responses WHERE reader_ref = ? AND status != 'in_progress'",
        (reader_id,))}


def status_counts(conn: sqlite3.Connection, reader_id: int) -> dict[str, int]:
    """Return ``{status: number of responses}`` of one reader."""
    return dict(conn.execute(
        "SELECT status, COUNT(*) FROM study_responses WHERE reader_ref = ? GROUP BY status",
        (reader_id,)).fetchall())


def upsert_response(conn: sqlite3.Connection, reader_id: int, query_id: int, status: str,
                    picked_json: str, skip_reason: str, seconds: float, updated_at: str) -> None:
    """Store a reader's response to a query, replacing the one stored before."""
    conn.execute(
        "INSERT INTO study_responses (reader_ref, query_ref, status, picked, skip_reason, "
        "seconds, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(reader_ref, query_ref) "
        "DO UPDATE SET status = excluded.status, picked = excluded.picked, "
        "skip_reason = excluded.skip_reason, seconds = excluded.seconds, "
        "updated_at = excluded.updated_at",
        (reader_id, query_id, status, picked_json, skip_reason, seconds, updated_at))


def insert_audit(conn: sqlite3.Connection, reader_id: int, query_id: int, at: str, action: str,
                 before_json: str, after_json: str) -> None:
    """Append one row to the audit trail."""
    conn.execute("INSERT INTO study_audit (reader_ref, query_ref, at, action, before, after) "
                 "VALUES (?, ?, ?, ?, ?, ?)",
                 (reader_id, query_id, at, action, before_json, after_json))


# -- reading packages ---------------------------------------------------------------------------
def package_study(conn: sqlite3.Connection, study_id: int) -> tuple | None:
    """Return ``(id, name, uid, created_at, seed, k, picks_required)`` of a study, or None."""
    return conn.execute("SELECT id, name, uid, created_at, seed, k, picks_required FROM "
                        "reader_studies WHERE id = ?", (study_id,)).fetchone()


def package_queries(conn: sqlite3.Connection, study_id: int) -> list[tuple]:
    """Return ``(id, study id, position, case id)`` of a study's queries (no modality, no label)."""
    return conn.execute("SELECT id, study_ref, position, case_ref FROM study_queries WHERE "
                        "study_ref = ?", (study_id,)).fetchall()


def package_candidates(conn: sqlite3.Connection, study_id: int) -> list[tuple]:
    """Return ``(id, query id, case id)`` of a study's candidates (no flag, rank or distance)."""
    return conn.execute(
        "SELECT c.id, c.query_ref, c.case_ref FROM study_candidates c JOIN study_queries q ON "
        "q.id = c.query_ref WHERE q.study_ref = ?", (study_id,)).fetchall()


def write_package_tables(conn: sqlite3.Connection, study: tuple, queries: list[tuple],
                         candidates: list[tuple]) -> None:
    """Create the study tables in a new package database and fill them in one transaction.

    Takes the rows of :func:`package_study`, :func:`package_queries` and
    :func:`package_candidates`; every candidate is stored blinded (flag, rank and
    distance 0).
    """
    for statement in STUDY_SQL.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("BEGIN")
    conn.execute("INSERT INTO reader_studies (id, name, uid, created_at, seed, k, picks_required) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)", study)
    conn.executemany("INSERT INTO study_queries (id, study_ref, position, case_ref) "
                     "VALUES (?, ?, ?, ?)", queries)
    conn.executemany("INSERT INTO study_candidates (id, query_ref, case_ref, model_closest, rank, "
                     "distance) VALUES (?, ?, ?, 0, 0, 0)", candidates)
    conn.execute("COMMIT")


def study_uids(conn: sqlite3.Connection) -> list[str]:
    """Return the uid of every study in the database (a package holds exactly one)."""
    return [row[0] for row in conn.execute("SELECT uid FROM reader_studies").fetchall()]


def reader_named(conn: sqlite3.Connection, name: str) -> tuple | None:
    """Return ``(reader id, seed, created_at)`` of the reader of this name, or None."""
    return conn.execute("SELECT id, seed, created_at FROM study_readers WHERE name = ?",
                        (name,)).fetchone()


def reader_responses(conn: sqlite3.Connection, reader_id: int) -> list[tuple]:
    """Return ``(query id, status, picked json, skip reason, seconds, updated_at)`` of a reader."""
    return conn.execute("SELECT query_ref, status, picked, skip_reason, seconds, updated_at FROM "
                        "study_responses WHERE reader_ref = ?", (reader_id,)).fetchall()


def study_by_uid(conn: sqlite3.Connection, uid: str) -> tuple[int, int] | None:
    """Return ``(study id, picks_required)`` of the study with this uid, or None."""
    row = conn.execute("SELECT id, picks_required FROM reader_studies WHERE uid = ?",
                       (uid,)).fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def candidates_by_query(conn: sqlite3.Connection, study_id: int) -> dict[int, set[int]]:
    """Return ``{query id: candidate ids}`` of a study."""
    queries: dict[int, set[int]] = {}
    for query_id, candidate in conn.execute(
            "SELECT q.id, c.id FROM study_queries q JOIN study_candidates c ON "
            "c.query_ref = q.id WHERE q.study_ref = ?", (study_id,)):
        queries.setdefault(int(query_id), set()).add(int(candidate))
    return queries


def insert_package_reader(conn: sqlite3.Connection, study_id: int, name: str, seed: int,
                          created_at: str) -> int:
    """Insert a reader who came from a package; return the reader id."""
    return int(conn.execute("INSERT INTO study_readers (study_ref, name, seed, created_at, origin) "
                            "VALUES (?, ?, ?, ?, 'package')",
                            (study_id, name, seed, created_at)).lastrowid)

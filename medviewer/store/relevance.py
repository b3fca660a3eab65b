"""The ``relevance_marks`` table: a reader's "relevant / not relevant" for a search hit."""

from __future__ import annotations

import sqlite3

MARK_COLUMNS = ("query_case, query_location, query_region, result_case, result_location, "
                "relevant, model_sha256, reader, rank, distance, created_at, updated_at")


def upsert_mark(conn: sqlite3.Connection, *, query_case: int | None, query_location: str,
                query_region: str, result_case: int, result_location: str, relevant: bool,
                model_sha256: str, reader: str, rank: int | None, distance: float | None,
                now: str) -> None:
    """Store a mark, replacing the reader's earlier mark of the same pair under the same model."""
    conn.execute(
        f"INSERT INTO relevance_marks ({MARK_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (query_location, query_region, "
        "result_location, model_sha256, reader) DO UPDATE SET relevant = excluded.relevant, "
        "query_case = excluded.query_case, result_case = excluded.result_case, "
        "rank = excluded.rank, distance = excluded.distance, updated_at = excluded.updated_at",
        (query_case, query_location, query_region, int(result_case), result_location,
         1 if relevant else 0, model_sha256.lower(), reader, rank, distance, now, now))


def select_marks(conn: sqlite3.Connection, **equal: str | None) -> list[tuple]:
    """Return mark rows (:data:`MARK_COLUMNS`) whose columns equal the given non-None values."""
    allowed = {"query_location", "model_sha256", "reader", "result_location", "query_region"}
    where, params = [], []
    for column, value in equal.items():
        if column not in allowed:
            raise ValueError(f"not a mark filter: {column}")
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = f"SELECT {MARK_COLUMNS} FROM relevance_marks"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return conn.execute(sql + " ORDER BY id", params).fetchall()

"""Read a library's identifying values (names, IDs, dates, odd UIDs) without changing it.

The problem report masks these in the log it saves; the file is opened read-only
(``mode=ro``), so making a report can never change or lock a library.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path


def identifier_queries(min_uid_chars: int) -> tuple[tuple[str, str], ...]:
    """Return ``(kind, SQL)`` of the identifier reads; kinds: names, ids, dates."""
    return (
        ("names", "SELECT name FROM patients"),
        ("ids", "SELECT patient_id FROM patients"),
        ("dates", "SELECT birth_date FROM patients"),
        ("ids", "SELECT accession FROM studies"),
        # Only UIDs that the UID rule misses (too short, odd root, not digits and dots): a
        # library of a million instances would otherwise fill memory with strings the rule
        # catches anyway.
        *[("ids", (f"SELECT {column} FROM {table} WHERE length({column}) < {int(min_uid_chars)} "
                   f"OR NOT ({column} GLOB '[12].*') OR {column} GLOB '*[^0-9.]*' "
                   f"OR NOT ({column} GLOB '*.*.*')"))
          for table, column in (("studies", "study_uid"), ("series", "series_uid"),
                                ("instances", "sop_uid"))],
    )


def open_read_only(path: str | Path) -> sqlite3.Connection:
    """Open a library file read-only (raises ``sqlite3.Error``)."""
    return sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)


def iter_identifiers(conn: sqlite3.Connection, min_uid_chars: int,
                     problems: list[str]) -> Iterator[tuple[str, str]]:
    """Yield ``(kind, value)`` of every non-empty identifying value; read errors go to ``problems``."""
    for kind, sql in identifier_queries(min_uid_chars):
        try:
            for (value,) in conn.execute(sql):
                if value:
                    yield kind, str(value).strip()
        except sqlite3.Error as exc:
            problems.append(f"could not read the library ({exc})")

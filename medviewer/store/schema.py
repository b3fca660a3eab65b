"""Versioned schema migrations of the case library.

Each migration is a module ``medviewer/store/migrations/vNNN_<topic>.py`` with
``VERSION`` (its number) and ``SQL`` (statements separated by ``;``).  They
are applied once, in order, inside a transaction, and recorded in
``PRAGMA user_version``.  Never edit a released migration: add a new module.
"""

from __future__ import annotations

import importlib
import pkgutil
import sqlite3

from medviewer.errors import SchemaVersionError
from medviewer.store import migrations as _migrations_package


def _load_migrations() -> list[tuple[int, str]]:
    found = []
    for info in pkgutil.iter_modules(_migrations_package.__path__):
        if info.name.startswith("v"):
            module = importlib.import_module(f"{_migrations_package.__name__}.{info.name}")
            found.append((int(module.VERSION), str(module.SQL)))
    found.sort()
    versions = [v for v, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two schema migrations share a version number: {versions}")
    # Gaps are refused by the test suite (test_library), not here, so work on
    # one migration is not blocked while another is being written.
    return found


MIGRATIONS: list[tuple[int, str]] = _load_migrations()

LATEST_VERSION = MIGRATIONS[-1][0]


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Bring the schema of ``conn`` up to :data:`LATEST_VERSION`; return the version found.

    Raises
    ------
    SchemaVersionError
        When the file was written by a newer MedViewer.
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > LATEST_VERSION:
        raise SchemaVersionError(
            f"library schema version {version} is newer than this MedViewer supports "
            f"({LATEST_VERSION})", path=path, hint="update MedViewer to open this library")
    for target, script in MIGRATIONS:
        if target <= version:
            continue
        # executescript commits first, so run the statements in our own transaction.
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {int(target)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return version


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]

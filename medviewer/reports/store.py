"""Reports of a case library, and their words split by negation (SQLite FTS5 table).

:class:`ReportStore` works on an open :class:`~medviewer.store.library.Library`
(schema :mod:`medviewer.store.migrations.v005_reports`) and, like it, must be
used from the thread that opened the library.  Each report's row in
``reports`` and its row in the FTS5 table ``report_terms`` are written in one
transaction, with ``synchronous=FULL`` (a typed report is a user's work), and
every change sets a new ``reports_version`` in ``meta``, so the BM25 index
built from these words (:mod:`medviewer.reports.ranker`) knows when it is stale.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone

from medviewer.reports.errors import ReportError, ReportTargetError
from medviewer.reports.models import SOURCES, Report
from medviewer.reports.negation import RULES_VERSION, analyse
from medviewer.reports.sections import searchable_text, split_sections
from medviewer.store.library import Library

STUDY, CASE = "study", "case"
_REPORT_COLUMNS = ("id, study_ref, case_ref, source, source_detail, text, sections, created_at, "
                   "updated_at")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def index_columns(sections: dict[str, str]) -> tuple[str, str]:
    """Return the (affirmed, negated) word strings that the FTS5 index holds for a report."""
    affirmed, negated = [], []
    for sentence in analyse(searchable_text(sections)):
        affirmed.extend(sentence.affirmed)
        negated.extend(sentence.negated)
    return " ".join(affirmed), " ".join(negated)


class ReportStore:
    """The report tables of one library.

    Parameters
    ----------
    library : Library
        An open library (its connection is used, not copied).
    """

    def __init__(self, library: Library) -> None:
        self.library = library
        self.conn = library.conn

    @contextmanager
    def durable(self):
        """Run one write transaction with ``synchronous=FULL``, then restore the setting."""
        previous = self.conn.execute("PRAGMA synchronous").fetchone()[0]
        self.conn.execute("PRAGMA synchronous=FULL")
        try:
            with self.library.transaction() as conn:
                yield conn
        finally:
            self.conn.execute(f"PRAGMA synchronous={int(previous)}")

    # -- writing ------------------------------------------------------------------------------
    def attach(self, kind: str, target: int, text: str, source: str, detail: str = "") -> int:
        """Attach ``text`` to a study or case, replacing its report from the same source.

        Returns the report id.
        """
        return self.attach_many([(kind, target, text, source, detail)])[0][0]

    def attach_many(self, items: Iterable[tuple[str, int, str, str, str]]) -> list[tuple[int, bool]]:
        """Attach many reports in one transaction; return ``(report id, replaced)`` for each.

        Each item is ``(kind, target id, text, source, source detail)`` with ``kind``
        ``"study"`` or ``"case"``.  Nothing is written when one item is invalid.
        """
        items = list(items)
        for kind, target, text, source, _detail in items:
            self._check(kind, target, text, source)
        now = _now()
        out = []
        with self.durable() as conn:
            for kind, target, text, source, detail in items:
                column = "study_ref" if kind == STUDY else "case_ref"
                old = [r[0] for r in conn.execute(
                    f"SELECT id FROM reports WHERE {column} = ? AND source = ?", (target, source))]
                for report_id in old:
                    self._delete(conn, report_id)
                sections = split_sections(text)
                cur = conn.execute(
                    f"INSERT INTO reports ({column}, source, source_detail, text, sections, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (target, source, detail, text, json.dumps(sections), now, now))
                report_id = int(cur.lastrowid)
                affirmed, negated = index_columns(sections)
                conn.execute("INSERT INTO report_terms (rowid, affirmed, negated) VALUES (?, ?, ?)",
                             (report_id, affirmed, negated))
                out.append((report_id, bool(old)))
            self._bump_version(conn)
            if conn.execute("SELECT COUNT(*) FROM reports").fetchone()[0] == len(out):
                # Every report was written by the current rules (the first import).
                conn.execute("INSERT INTO meta (key, value) VALUES ('report_terms_rules', ?) "
                             "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                             (str(RULES_VERSION),))
        return out

    def remove(self, report_id: int) -> None:
        """Delete one report and its index row."""
        with self.durable() as conn:
            self._delete(conn, int(report_id))
            self._bump_version(conn)

    def refresh_terms(self) -> bool:
        """Re-split every report's words when they were split by older negation rules.

        Returns True when the words were rewritten (the BM25 index is then rebuilt, as
        after any change).  A library opened read-only keeps its old words.
        """
        import sqlite3

        row = self.conn.execute(
            "SELECT value FROM meta WHERE key = 'report_terms_rules'").fetchone()
        if row is not None and row[0] == str(RULES_VERSION):
            return False
        try:
            with self.library.transaction() as conn:
                rows = conn.execute("SELECT id, sections FROM reports").fetchall()
                for report_id, sections in rows:
                    affirmed, negated = index_columns(json.loads(sections or "{}"))
                    conn.execute("DELETE FROM report_terms WHERE rowid = ?", (report_id,))
                    conn.execute("INSERT INTO report_terms (rowid, affirmed, negated) "
                                 "VALUES (?, ?, ?)", (report_id, affirmed, negated))
                conn.execute("INSERT INTO meta (key, value) VALUES ('report_terms_rules', ?) "
                             "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                             (str(RULES_VERSION),))
                if rows:
                    self._bump_version(conn)
        except sqlite3.OperationalError:
            return False  # read-only: search the words as they are
        return bool(rows)

    def prune(self) -> int:
        """Drop index rows whose report is gone (its study or case was removed); return how many."""
        with self.library.transaction() as conn:
            cur = conn.execute("DELETE FROM report_terms WHERE rowid NOT IN (SELECT id FROM reports)")
            self._bump_version(conn)
        return int(cur.rowcount)

    @staticmethod
    def _bump_version(conn) -> None:
        # A new random token on every change: the saved BM25 index of another library file, or
        # of this one before the change, can never pass for the current one.
        conn.execute("INSERT INTO meta (key, value) VALUES ('reports_version', ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (uuid.uuid4().hex,))

    @staticmethod
    def _delete(conn, report_id: int) -> None:
        conn.execute("DELETE FROM reports WHERE id = ?", (report_id,))
        conn.execute("DELETE FROM report_terms WHERE rowid = ?", (report_id,))

    def _check(self, kind: str, target: int, text: str, source: str) -> None:
        if source not in SOURCES:
            raise ReportError(f"unknown report source {source!r}", hint=f"use one of {SOURCES}")
        if not (text or "").strip():
            raise ReportError("a report needs some text", path=str(self.library.path),
                              hint="type or paste the report first")
        table = {STUDY: "studies", CASE: "cases"}.get(kind)
        if table is None:
            raise ReportError(f"a report belongs to a study or a case, not {kind!r}")
        if not self.conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (int(target),)).fetchone():
            raise ReportTargetError(f"no {kind} {target} in the library", path=str(self.library.path),
                                    hint="import the images first, then their reports")

    # -- reading ------------------------------------------------------------------------------
    def count(self) -> int:
        """Return the number of reports."""
        return int(self.conn.execute("SELECT COUNT(*) FROM reports").fetchone()[0])

    def report(self, report_id: int) -> Report:
        """Return one report by id."""
        row = self.conn.execute(f"SELECT {_REPORT_COLUMNS} FROM reports WHERE id = ?",
                                (int(report_id),)).fetchone()
        if row is None:
            raise ReportError(f"no report {report_id}", path=str(self.library.path))
        return _report(row)

    def reports_for_case(self, case_id: int) -> list[Report]:
        """Return the case's own reports, then its study's, newest first within each."""
        rows = self.conn.execute(
            f"SELECT {_REPORT_COLUMNS}, 0 AS level FROM reports WHERE case_ref = :c UNION ALL "
            f"SELECT r.{_REPORT_COLUMNS.replace(', ', ', r.')}, 1 FROM reports r "
            "JOIN series se ON se.study_ref = r.study_ref JOIN instances i ON i.series_ref = se.id "
            "JOIN cases c ON c.instance_ref = i.id WHERE c.id = :c ORDER BY level, updated_at DESC, id DESC",
            {"c": int(case_id)}).fetchall()
        return [_report(r) for r in rows]

    def case_reports(self) -> dict[int, Report]:
        """Return ``{case id: its report}`` for every case that has one (own before study's)."""
        out: dict[int, Report] = {}
        rows = self.conn.execute(
            f"SELECT c.id, r.{_REPORT_COLUMNS.replace(', ', ', r.')}, 1 FROM reports r JOIN series se "
            "ON se.study_ref = r.study_ref JOIN instances i ON i.series_ref = se.id JOIN cases c ON "
            f"c.instance_ref = i.id UNION ALL SELECT case_ref, {_REPORT_COLUMNS}, 0 FROM reports "
            "WHERE case_ref IS NOT NULL ORDER BY 11 DESC")
        for row in rows:  # study-level first, so a case's own report overwrites it
            out[int(row[0])] = _report(row[1:10])
        return out

    def reports_version(self) -> str:
        """Return a token that changes whenever any report is added, replaced or removed."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'reports_version'").fetchone()
        return row[0] if row else "none"

    def index_rows(self):
        """Yield ``(report id, affirmed words, negated words)`` of every report, from the FTS5 table."""
        yield from self.conn.execute(
            "SELECT t.rowid, t.affirmed, t.negated FROM report_terms t JOIN reports r ON r.id = t.rowid "
            "ORDER BY t.rowid")

    def cases_of_reports(self, report_ids: Sequence[int]) -> dict[int, list[tuple[int, str, tuple]]]:
        """Return ``{report id: [(case id, location, labels)]}`` (a study's report: all its cases)."""
        out: dict[int, list[tuple[int, str, tuple]]] = {int(r): [] for r in report_ids}
        labels = ("(SELECT GROUP_CONCAT(name, '|') FROM (SELECT DISTINCT name FROM labels l "
                  "WHERE l.case_ref = c.id AND l.source != 'model' ORDER BY name))")
        for chunk in _chunks(list(out), 500):
            marks = ",".join("?" * len(chunk))
            # Two indexed joins (a case's own report; a study's report to its cases), not one
            # OR-join, which SQLite can only answer by scanning every case.
            rows = self.conn.execute(
                f"SELECT r.id, c.id, i.location, {labels} FROM reports r JOIN cases c ON c.id = "
                f"r.case_ref JOIN instances i ON i.id = c.instance_ref WHERE r.id IN ({marks}) "
                f"UNION ALL SELECT r.id, c.id, i.location, {labels} FROM reports r JOIN series se ON "
                "se.study_ref = r.study_ref JOIN instances i ON i.series_ref = se.id JOIN cases c ON "
                f"c.instance_ref = i.id WHERE r.id IN ({marks}) ORDER BY 2", chunk + chunk)
            for report_id, case_id, location, names in rows:
                out[int(report_id)].append((int(case_id), location,
                                            tuple(names.split("|")) if names else ()))
        return out

    # -- finding what a report belongs to ---------------------------------------------------
    def study_by_uid(self, study_uid: str) -> int | None:
        """Return the id of the study with this (0020,000D) Study Instance UID."""
        row = self.conn.execute("SELECT id FROM studies WHERE study_uid = ?", (study_uid.strip(),)).fetchone()
        return None if row is None else int(row[0])

    def studies_by_accession(self, accession: str) -> list[int]:
        """Return the ids of the studies with this (0008,0050) Accession Number."""
        rows = self.conn.execute("SELECT id FROM studies WHERE accession = ? AND accession != ''",
                                 (accession.strip(),))
        return [int(r[0]) for r in rows]

    def cases_by_path(self, path: str) -> list[int]:
        """Return the case ids of the instance stored at ``path`` (a file path or location)."""
        rows = self.conn.execute(
            "SELECT c.id FROM cases c JOIN instances i ON i.id = c.instance_ref "
            "WHERE i.path = :p OR i.location = :p ORDER BY c.id", {"p": path})
        return [int(r[0]) for r in rows]

    def cases_by_stem(self) -> dict[str, list[int]]:
        """Return ``{file name without extension: [case ids]}`` of every instance."""
        import os

        out: dict[str, list[int]] = {}
        for case_id, path in self.conn.execute(
                "SELECT c.id, i.path FROM cases c JOIN instances i ON i.id = c.instance_ref"):
            out.setdefault(os.path.splitext(os.path.basename(path))[0], []).append(int(case_id))
        return out

    def study_keys(self) -> dict[str, int]:
        """Return ``{study UID: id}`` and ``{accession: id}`` (unique accessions only), merged."""
        keys: dict[str, int] = {}
        seen: dict[str, int] = {}
        for sid, uid, accession in self.conn.execute("SELECT id, study_uid, accession FROM studies"):
            keys[uid] = int(sid)
            if accession:
                seen[accession] = seen.get(accession, 0) + 1
                keys.setdefault(accession, int(sid))
        return {k: v for k, v in keys.items() if seen.get(k, 1) == 1}


def _report(row) -> Report:
    return Report(id=int(row[0]), study_ref=row[1], case_ref=row[2], source=row[3],
                  source_detail=row[4], text=row[5], sections=json.loads(row[6] or "{}"),
                  created_at=row[7], updated_at=row[8])


def _chunks(values: list, size: int):
    for start in range(0, len(values), size):
        yield values[start:start + size]

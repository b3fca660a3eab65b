"""One reader's reading session: blinded order, durable picks, audit trail, resume.

Every change a reader makes (a pick, an unpick, finishing or skipping a query)
is one SQLite transaction committed with ``synchronous=FULL`` in WAL mode
before the method returns; the screen shows a change only after that.  A crash
or a kill at any moment therefore loses nothing the screen acknowledged.
Every change also appends a row to the audit trail (who, when, before, after).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from medviewer.errors import MedViewerError
from medviewer.study import store
# Opening a study database is the store's; callers find it here beside the session.
from medviewer.study.store import open_study_db

__all__ = ["QueryView", "ReadingError", "ReadingSession", "Response", "open_study_db",
           "reader_seed"]


class ReadingError(MedViewerError):
    """A reading action is not allowed (e.g. going on without exactly five picks)."""


@dataclass(frozen=True)
class QueryView:
    """What the reading screen may know of one query: no distances, ranks or labels.

    ``candidates`` are (candidate id, case id) pairs in this reader's shuffled order.
    """

    query_id: int
    case_id: int
    candidates: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Response:
    """A reader's stored answer to a query."""

    status: str
    picked: frozenset[int]
    skip_reason: str = ""
    seconds: float = 0.0


def reader_seed(study_seed: int, reader: str) -> int:
    """Derive a reader's own shuffle seed from the study seed and the reader's name."""
    digest = hashlib.sha256(f"{study_seed}:{reader}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class ReadingSession:
    """A reader's view of a study.

    Parameters
    ----------
    conn : sqlite3.Connection
        From :func:`open_study_db` (library file or package database).
    study_id : int
    reader : str
        The reader's name; registered on first use.
    """

    def __init__(self, conn: sqlite3.Connection, study_id: int, reader: str) -> None:
        if not reader.strip():
            raise ReadingError("a reader name is needed", hint="enter your name or initials")
        self.conn = conn
        self.study_id = study_id
        self.reader = reader.strip()
        study = store.study_seed_and_picks(conn, study_id)
        if study is None:
            raise ReadingError(f"no reader study with id {study_id}")
        study_seed, self.picks_required = study
        found = store.reader_row(conn, study_id, self.reader)
        if found is None:
            # Another process may register the same reader at the same moment: insert if
            # still absent inside one write transaction, then read back whichever row won.
            with store.write_transaction(conn):
                store.register_reader(conn, study_id, self.reader,
                                      reader_seed(study_seed, self.reader), _now())
            found = store.reader_row(conn, study_id, self.reader)
        self.reader_id, self.seed = found
        self.queries = self._ordered_queries()
        self._started: dict[int, float] = {}

    def _ordered_queries(self) -> list[QueryView]:
        rows = store.queries_by_position(self.conn, self.study_id)
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(rows))
        views = []
        for index in order:
            query_id, case_id = rows[index]
            cands = store.query_candidates(self.conn, query_id)
            shuffled = [tuple(cands[i]) for i in rng.permutation(len(cands))]
            views.append(QueryView(int(query_id), int(case_id), tuple(shuffled)))
        return views

    # -- reading state ----------------------------------------------------------------------
    def response(self, query_id: int) -> Response | None:
        """Return the stored response to a query, if any."""
        row = store.response_row(self.conn, self.reader_id, query_id)
        if row is None:
            return None
        return Response(row[0], frozenset(json.loads(row[1])), row[2], float(row[3]))

    def first_unanswered(self) -> int:
        """Return the index (in this reader's order) of the first query not answered or skipped."""
        done = store.finished_queries(self.conn, self.reader_id)
        for index, view in enumerate(self.queries):
            if view.query_id not in done:
                return index
        return len(self.queries)

    def progress(self) -> tuple[int, int, int]:
        """Return (answered, skipped, total)."""
        counts = store.status_counts(self.conn, self.reader_id)
        return counts.get("answered", 0), counts.get("skipped", 0), len(self.queries)

    def start_timer(self, query_id: int) -> None:
        """Note when the query appeared on screen (time per query is recorded)."""
        self._started.setdefault(query_id, time.monotonic())

    def _elapsed(self, query_id: int, previous: Response | None) -> float:
        started = self._started.pop(query_id, None)
        spent = 0.0 if started is None else time.monotonic() - started
        return (previous.seconds if previous else 0.0) + spent

    # -- durable changes ----------------------------------------------------------------------
    # Each change reads the stored response, decides and writes inside one BEGIN IMMEDIATE
    # transaction, so the same reader open in two processes never computes a change from a
    # state the other process has since replaced (a lost pick).
    def toggle_pick(self, query_id: int, candidate_id: int) -> frozenset[int]:
        """Pick or unpick a candidate; return the picked set once it is on disk."""
        view = self._view(query_id)
        if candidate_id not in {c for c, _ in view.candidates}:
            raise ReadingError(f"candidate {candidate_id} is not part of query {query_id}")
        with store.write_transaction(self.conn):
            current = self.response(query_id)
            picked = set(current.picked) if current else set()
            if candidate_id in picked:
                picked.remove(candidate_id)
            elif len(picked) >= self.picks_required:
                raise ReadingError(f"{self.picks_required} cases are picked already",
                                   hint="unpick one first")
            else:
                picked.add(candidate_id)
            status = current.status if current and current.status == "answered" else "in_progress"
            if status == "answered" and len(picked) != self.picks_required:
                status = "in_progress"
            self._write(query_id, current, status, picked, "",
                        current.seconds if current else 0.0,
                        "unpick" if candidate_id not in picked else "pick")
        return frozenset(picked)

    def finish(self, query_id: int) -> None:
        """Mark a query answered; needs exactly ``picks_required`` picks."""
        with store.write_transaction(self.conn):
            current = self.response(query_id)
            picked = set(current.picked) if current else set()
            if len(picked) != self.picks_required:
                raise ReadingError(f"pick exactly {self.picks_required} cases to go on "
                                   f"({len(picked)} picked)")
            self._write(query_id, current, "answered", picked, "",
                        self._elapsed(query_id, current), "answer")

    def skip(self, query_id: int, reason: str) -> None:
        """Skip a query with a reason (its picks are kept in the audit trail, not counted)."""
        if not reason.strip():
            raise ReadingError("a reason is needed to skip", hint="e.g. 'image quality'")
        with store.write_transaction(self.conn):
            current = self.response(query_id)
            picked = set(current.picked) if current else set()
            self._write(query_id, current, "skipped", picked, reason.strip(),
                        self._elapsed(query_id, current), "skip")

    def _view(self, query_id: int) -> QueryView:
        for view in self.queries:
            if view.query_id == query_id:
                return view
        raise ReadingError(f"query {query_id} is not part of this study")

    def _write(self, query_id: int, before: Response | None, status: str, picked: set[int],
               reason: str, seconds: float, action: str) -> None:
        """Store a response and its audit row; call inside :func:`store.write_transaction`."""
        before_json = json.dumps(None if before is None else {
            "status": before.status, "picked": sorted(before.picked), "skip_reason": before.skip_reason})
        after_json = json.dumps({"status": status, "picked": sorted(picked), "skip_reason": reason})
        now = _now()
        store.upsert_response(self.conn, self.reader_id, query_id, status,
                              json.dumps(sorted(picked)), reason, seconds, now)
        store.insert_audit(self.conn, self.reader_id, query_id, now, f"{self.reader}: {action}",
                           before_json, after_json)

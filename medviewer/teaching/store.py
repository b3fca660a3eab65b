"""Collections, items, key images, exemplars, tags and notes in the case library.

:class:`TeachingStore` works on an open :class:`~medviewer.store.library.Library`
(schema version 3, :mod:`medviewer.store.migrations.v003_teaching`) and, like it,
must be used from the thread that opened the library.  Writes of what a user
typed (notes, tags, key images) run with ``synchronous=FULL`` so that a crash
right after "save" loses nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone

from medviewer.store.library import Library
from medviewer.teaching.errors import CaseNotFoundError, CollectionNotFoundError, TeachingError
from medviewer.teaching.models import (
    EXEMPLAR_ROLES,
    NOTE_FIELDS,
    Collection,
    CollectionItem,
    KeyImage,
    TeachingNote,
)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class TeachingStore:
    """The teaching-file tables of one library.

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

    # -- collections --------------------------------------------------------------------------
    def create_collection(self, name: str, description: str = "") -> Collection:
        """Create a collection; raise :class:`TeachingError` if the name is taken."""
        name = name.strip()
        if not name:
            raise TeachingError("a collection needs a name", hint="give a non-empty name")
        if self.conn.execute("SELECT 1 FROM collections WHERE name = ?", (name,)).fetchone():
            raise TeachingError(f"a collection named {name!r} exists already",
                                hint="choose another name, or add cases to that one")
        now = _now()
        with self.durable() as conn:
            conn.execute("INSERT INTO collections (name, description, created_at, updated_at) "
                         "VALUES (?, ?, ?, ?)", (name, description, now, now))
        return self.collection(name)

    def collection(self, key: str | int) -> Collection:
        """Return a collection by name or id."""
        row = None if isinstance(key, int) else self._by_name(str(key))
        if row is None and (isinstance(key, int) or str(key).isdigit()):
            row = self.conn.execute(f"{_COLLECTION_SQL} WHERE c.id = ?", (int(key),)).fetchone()
        if row is None:
            raise CollectionNotFoundError(f"no collection {key!r}",
                                          path=str(self.library.path),
                                          hint="list them with 'medviewer teach list'")
        return Collection(*row)

    def _by_name(self, name: str):
        return self.conn.execute(f"{_COLLECTION_SQL} WHERE c.name = ?", (name,)).fetchone()

    def collections(self) -> list[Collection]:
        """Return every collection, by name."""
        return [Collection(*r) for r in self.conn.execute(f"{_COLLECTION_SQL} ORDER BY c.name")]

    def delete_collection(self, key: str | int) -> None:
        """Delete a collection, its items and key images (cases, tags and notes stay)."""
        collection = self.collection(key)
        with self.durable() as conn:
            conn.execute("DELETE FROM collections WHERE id = ?", (collection.id,))

    def _touch(self, conn, collection_id: int) -> None:
        conn.execute("UPDATE collections SET updated_at = ? WHERE id = ?", (_now(), collection_id))

    # -- items --------------------------------------------------------------------------------
    def add_cases(self, key: str | int, case_ids: Iterable[int], *,
                  source: str = "manual") -> list[CollectionItem]:
        """Add teaching cases to a collection (a case already in it is left as it is).

        Returns
        -------
        list of CollectionItem
            The items of ``case_ids``, in order, new or existing.
        """
        collection = self.collection(key)
        case_ids = [int(c) for c in case_ids]
        self._check_cases(case_ids)
        with self.durable() as conn:
            for case_id in case_ids:
                self._ensure_case_item(conn, collection.id, case_id, source)
            self._touch(conn, collection.id)
        return [self._case_item(collection.id, c) for c in case_ids]

    def _ensure_case_item(self, conn, collection_id: int, case_id: int, source: str) -> int:
        row = conn.execute("SELECT id FROM collection_items WHERE collection_ref = ? AND "
                           "case_ref = ? AND role = 'case'", (collection_id, case_id)).fetchone()
        if row:
            return int(row[0])
        position = conn.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM collection_items "
                                "WHERE collection_ref = ? AND role = 'case'",
                                (collection_id,)).fetchone()[0]
        return int(conn.execute(
            "INSERT INTO collection_items (collection_ref, case_ref, role, position, source, "
            "added_at) VALUES (?, ?, 'case', ?, ?, ?)",
            (collection_id, case_id, position, source, _now())).lastrowid)

    def add_exemplars(self, key: str | int, anchor_case: int, case_ids: Sequence[int],
                      role: str, *, source: str = "manual",
                      scores: Sequence[float | None] | None = None) -> list[CollectionItem]:
        """Attach similar or dissimilar exemplars to a teaching case.

        The anchor case becomes a teaching case of the collection if it is not one yet,
        so a retrieval result (query case, nearest and farthest hits) can be added as is.

        Parameters
        ----------
        key : str or int
            The collection.
        anchor_case : int
            The case the exemplars illustrate.
        case_ids : sequence of int
            The exemplar cases, in their order (e.g. retrieval rank).
        role : {"similar", "dissimilar"}
        source : str
            Where they came from, stored with each.
        scores : sequence of float, optional
            A distance per case.

        Returns
        -------
        list of CollectionItem
        """
        if role not in EXEMPLAR_ROLES:
            raise TeachingError(f"role must be one of {EXEMPLAR_ROLES}, not {role!r}")
        collection = self.collection(key)
        case_ids = [int(c) for c in case_ids]
        scores = list(scores) if scores is not None else [None] * len(case_ids)
        if len(scores) != len(case_ids):
            raise TeachingError("one score per exemplar case is needed")
        self._check_cases([anchor_case, *case_ids])
        if anchor_case in case_ids:
            raise TeachingError(f"case {anchor_case} cannot be its own exemplar",
                                hint="drop the query case from the result")
        with self.durable() as conn:
            anchor = self._ensure_case_item(conn, collection.id, int(anchor_case), source)
            start = conn.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM collection_items "
                                 "WHERE exemplar_of = ?", (anchor,)).fetchone()[0]
            for i, (case_id, score) in enumerate(zip(case_ids, scores, strict=True)):
                conn.execute(
                    "INSERT INTO collection_items (collection_ref, case_ref, role, exemplar_of, "
                    "position, source, score, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(exemplar_of, case_ref) WHERE role != 'case' DO UPDATE SET "
                    "role = excluded.role, source = excluded.source, score = excluded.score",
                    (collection.id, case_id, role, anchor, start + i, source,
                     None if score is None else float(score), _now()))
            self._touch(conn, collection.id)
        wanted = set(case_ids)
        return [i for i in self.items(collection.id)
                if i.exemplar_of == anchor and i.case_id in wanted]

    def remove_item(self, item_id: int) -> None:
        """Remove an item (and, for a teaching case, its exemplars)."""
        with self.durable() as conn:
            conn.execute("DELETE FROM collection_items WHERE id = ?", (int(item_id),))

    def move_item(self, item_id: int, position: int) -> None:
        """Move an item to ``position`` among its siblings (0 = first)."""
        row = self.conn.execute("SELECT collection_ref, role, exemplar_of FROM collection_items "
                                "WHERE id = ?", (int(item_id),)).fetchone()
        if row is None:
            raise TeachingError(f"no collection item {item_id}")
        collection_id, _role, anchor = row
        where, args = (("exemplar_of = ?", (anchor,)) if anchor is not None else
                       ("collection_ref = ? AND role = 'case'", (collection_id,)))
        with self.durable() as conn:
            # The sibling order is read under the write lock, so a concurrent move or add
            # is not undone by renumbering from a stale list.
            ids = [r[0] for r in conn.execute(
                f"SELECT id FROM collection_items WHERE {where} ORDER BY position, id", args)]
            if int(item_id) not in ids:
                raise TeachingError(f"no collection item {item_id}")
            ids.remove(int(item_id))
            ids.insert(max(0, min(int(position), len(ids))), int(item_id))
            for rank, item in enumerate(ids):
                conn.execute("UPDATE collection_items SET position = ? WHERE id = ?", (rank, item))

    def items(self, key: str | int, *, role: str | None = None) -> list[CollectionItem]:
        """Return a collection's items: each teaching case followed by its exemplars."""
        collection = self.collection(key)
        rows = self.conn.execute(
            "SELECT it.id, it.collection_ref, it.case_ref, it.role, it.exemplar_of, it.position, "
            "it.source, it.score, se.modality, i.location, p.patient_id, "
            "COALESCE(a.position, it.position) AS case_pos "
            "FROM collection_items it JOIN cases c ON c.id = it.case_ref "
            "JOIN instances i ON i.id = c.instance_ref JOIN series se ON se.id = i.series_ref "
            "JOIN studies st ON st.id = se.study_ref JOIN patients p ON p.id = st.patient_ref "
            "LEFT JOIN collection_items a ON a.id = it.exemplar_of "
            "WHERE it.collection_ref = ? ORDER BY case_pos, COALESCE(it.exemplar_of, it.id), "
            "it.role != 'case', it.role = 'dissimilar', it.position, it.id",
            (collection.id,)).fetchall()
        out = []
        for r in rows:
            if role is not None and r[3] != role:
                continue
            out.append(CollectionItem(
                id=r[0], collection_id=r[1], case_id=r[2], role=r[3], exemplar_of=r[4],
                position=r[5], source=r[6], score=r[7], key_images=tuple(self.key_images(r[0])),
                modality=r[8], location=r[9], patient_id=r[10],
                labels=tuple(self._labels(r[2]))))
        return out

    def item(self, item_id: int) -> CollectionItem:
        """Return one item by id."""
        row = self.conn.execute("SELECT collection_ref FROM collection_items WHERE id = ?",
                                (int(item_id),)).fetchone()
        if row is None:
            raise TeachingError(f"no collection item {item_id}")
        return next(i for i in self.items(int(row[0])) if i.id == int(item_id))

    def _case_item(self, collection_id: int, case_id: int) -> CollectionItem:
        return next(i for i in self.items(collection_id)
                    if i.case_id == case_id and i.role == "case")

    def item_for_case(self, key: str | int, case_id: int) -> CollectionItem:
        """Return the teaching-case item of ``case_id`` in a collection."""
        collection = self.collection(key)
        for item in self.items(collection.id, role="case"):
            if item.case_id == int(case_id):
                return item
        raise TeachingError(f"case {case_id} is not a teaching case of {collection.name!r}",
                            hint="add it first")

    # -- key images ---------------------------------------------------------------------------
    def set_key_image(self, item_id: int, *, instance_id: int | None = None,
                      frame: int | None = None,
                      window: tuple[float, float] | None = None, overlay: str = "",
                      caption: str = "", blackout: Sequence[Sequence[int]] = ()) -> KeyImage:
        """Add (or update) a key image of an item, as shown on screen.

        Parameters
        ----------
        item_id : int
        instance_id, frame : int, optional
            The image; by default the item's case image and frame.
        window : (center, width), optional
            The window/level as shown; ``None`` for the image's default.
        overlay : str
            Name of the overlay shown, "" for none.
        caption : str
        blackout : sequence of (x, y, width, height)
            Rectangles to black out before export (burned-in text).
        """
        row = self.conn.execute(
            "SELECT c.instance_ref, c.frame FROM collection_items it JOIN cases c ON "
            "c.id = it.case_ref WHERE it.id = ?", (int(item_id),)).fetchone()
        if row is None:
            raise TeachingError(f"no collection item {item_id}")
        instance_id = int(row[0] if instance_id is None else instance_id)
        frame = int(row[1] if frame is None else frame)
        frames = self.conn.execute("SELECT frames FROM instances WHERE id = ?",
                                   (instance_id,)).fetchone()
        if frames is None:
            raise TeachingError(f"no instance {instance_id} in the library")
        if not 0 <= frame < int(frames[0]):
            raise TeachingError(f"frame {frame} out of range (the image has {frames[0]})")
        rects = [tuple(int(v) for v in r) for r in blackout]
        if any(len(r) != 4 or r[2] <= 0 or r[3] <= 0 for r in rects):
            raise TeachingError("blackout rectangles are (x, y, width, height) with a positive "
                                "size")
        center, width = (None, None) if window is None else (float(window[0]), float(window[1]))
        if width is not None and width <= 0:
            raise TeachingError("a window width must be positive")
        with self.durable() as conn:
            position = conn.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM key_images "
                                    "WHERE item_ref = ?", (int(item_id),)).fetchone()[0]
            conn.execute(
                "INSERT INTO key_images (item_ref, instance_ref, frame, window_center, "
                "window_width, overlay, caption, blackout, position, created_at) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(item_ref, instance_ref, frame) DO "
                "UPDATE SET window_center = excluded.window_center, window_width = "
                "excluded.window_width, overlay = excluded.overlay, caption = excluded.caption, "
                "blackout = excluded.blackout",
                (int(item_id), instance_id, frame, center, width, overlay, caption,
                 json.dumps(rects), position, _now()))
        return next(k for k in self.key_images(item_id)
                    if k.instance_id == instance_id and k.frame == frame)

    def remove_key_image(self, key_image_id: int) -> None:
        """Remove a key image."""
        with self.durable() as conn:
            conn.execute("DELETE FROM key_images WHERE id = ?", (int(key_image_id),))

    def key_images(self, item_id: int) -> list[KeyImage]:
        """Return an item's key images in order (empty: the case image is used)."""
        rows = self.conn.execute(
            "SELECT k.id, k.instance_ref, k.frame, k.window_center, k.window_width, k.overlay, "
            "k.caption, k.blackout, i.location FROM key_images k JOIN instances i ON "
            "i.id = k.instance_ref WHERE k.item_ref = ? ORDER BY k.position, k.id",
            (int(item_id),))
        return [KeyImage(r[0], r[1], r[2], r[3], r[4], r[5], r[6],
                         tuple(tuple(x) for x in json.loads(r[7] or "[]")), r[8]) for r in rows]

    def shown_images(self, item: CollectionItem) -> list[KeyImage]:
        """Return the key images of ``item``, or its case image with the default window."""
        if item.key_images:
            return list(item.key_images)
        row = self.conn.execute("SELECT c.instance_ref, c.frame, i.location FROM cases c JOIN "
                                "instances i ON i.id = c.instance_ref WHERE c.id = ?",
                                (item.case_id,)).fetchone()
        return [KeyImage(0, row[0], row[1], None, None, "", "", (), row[2])]

    # -- tags ----------------------------------------------------------------------------------
    def tag_cases(self, case_ids: Iterable[int], tags: Iterable[str]) -> None:
        """Add tags to cases (tags compare without case; surrounding spaces dropped)."""
        case_ids = [int(c) for c in case_ids]
        tags = sorted({t.strip() for t in tags if t and t.strip()})
        self._check_cases(case_ids)
        now = _now()
        with self.durable() as conn:
            conn.executemany("INSERT OR IGNORE INTO case_tags (case_ref, tag, created_at) "
                             "VALUES (?, ?, ?)", [(c, t, now) for c in case_ids for t in tags])

    def untag_cases(self, case_ids: Iterable[int], tags: Iterable[str]) -> None:
        """Remove tags from cases."""
        with self.durable() as conn:
            conn.executemany("DELETE FROM case_tags WHERE case_ref = ? AND tag = ?",
                             [(int(c), t.strip()) for c in case_ids for t in tags])

    def tags(self, case_id: int) -> list[str]:
        """Return a case's tags, sorted."""
        rows = self.conn.execute("SELECT tag FROM case_tags WHERE case_ref = ? ORDER BY tag "
                                 "COLLATE NOCASE", (int(case_id),))
        return [r[0] for r in rows]

    def all_tags(self) -> list[tuple[str, int]]:
        """Return ``(tag, number of cases)`` for every tag in the library."""
        rows = self.conn.execute("SELECT tag, COUNT(*) FROM case_tags GROUP BY tag COLLATE NOCASE "
                                 "ORDER BY tag COLLATE NOCASE")
        return [(r[0], int(r[1])) for r in rows]

    # -- notes ---------------------------------------------------------------------------------
    def note(self, case_id: int) -> TeachingNote:
        """Return a case's note (empty if none was written)."""
        row = self.conn.execute(
            "SELECT history, findings, diagnosis, discussion, citations, free_text, updated_at "
            "FROM case_notes WHERE case_ref = ?", (int(case_id),)).fetchone()
        return TeachingNote(int(case_id), *row) if row else TeachingNote(int(case_id))

    def save_note(self, case_id: int, **fields: str) -> TeachingNote:
        """Update some fields of a case's note (history, findings, diagnosis, discussion,
        citations, free_text); the others keep their text."""
        unknown = set(fields) - set(NOTE_FIELDS)
        if unknown:
            raise TeachingError(f"unknown note fields {sorted(unknown)}",
                                hint=f"use {', '.join(NOTE_FIELDS)}")
        self._check_cases([int(case_id)])
        with self.durable() as conn:
            # Read the fields we keep inside the write transaction: another process saving
            # another field of this note meanwhile must not be overwritten with a stale copy.
            current = self.note(case_id)
            values = {f: str(fields.get(f, getattr(current, f))) for f in NOTE_FIELDS}
            conn.execute(
                "INSERT INTO case_notes (case_ref, history, findings, diagnosis, discussion, "
                "citations, free_text, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(case_ref) DO UPDATE SET history = excluded.history, findings = "
                "excluded.findings, diagnosis = excluded.diagnosis, discussion = "
                "excluded.discussion, citations = excluded.citations, free_text = "
                "excluded.free_text, updated_at = excluded.updated_at",
                (int(case_id), *[values[f] for f in NOTE_FIELDS], _now()))
        return self.note(case_id)

    # -- one-transaction edits of the Teaching panel -------------------------------------------
    # Each reads what it checks inside its own BEGIN IMMEDIATE transaction, so two windows
    # (or a window and the CLI) cannot interleave between the check and the write.
    def rename_collection(self, key: str | int, name: str,
                          description: str | None = None) -> Collection:
        """Rename a collection (and optionally change its description) in one transaction."""
        collection = self.collection(key)
        name = name.strip()
        if not name:
            raise TeachingError("a collection needs a name", hint="give a non-empty name")
        with self.durable() as conn:
            taken = conn.execute("SELECT 1 FROM collections WHERE name = ? AND id != ?",
                                 (name, collection.id)).fetchone()
            if taken:
                raise TeachingError(f"a collection named {name!r} exists already",
                                    hint="choose another name")
            conn.execute("UPDATE collections SET name = ?, description = ?, updated_at = ? "
                         "WHERE id = ?", (name, collection.description if description is None
                                          else description, _now(), collection.id))
        return self.collection(collection.id)

    def add_case_with_key_image(self, key: str | int, case_id: int, *,
                                window: tuple[float, float] | None = None, overlay: str = "",
                                caption: str = "", source: str = "viewer") -> KeyImage:
        """Add a teaching case and its key image as shown, in one transaction.

        The key image is the case's own image and frame, with the window (centre,
        width), the overlay's name and the caption; adding the same case again updates
        its key image.
        """
        collection = self.collection(key)
        self._check_cases([int(case_id)])
        row = self.conn.execute("SELECT instance_ref, frame FROM cases WHERE id = ?",
                                (int(case_id),)).fetchone()
        center, width = (None, None) if window is None else (float(window[0]), float(window[1]))
        if width is not None and width <= 0:
            raise TeachingError("a window width must be positive")
        with self.durable() as conn:
            item_id = self._ensure_case_item(conn, collection.id, int(case_id), source)
            position = conn.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM key_images "
                                    "WHERE item_ref = ?", (item_id,)).fetchone()[0]
            conn.execute(
                "INSERT INTO key_images (item_ref, instance_ref, frame, window_center, "
                "window_width, overlay, caption, blackout, position, created_at) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, '[]', ?, ?) ON CONFLICT(item_ref, instance_ref, frame) DO "
                "UPDATE SET window_center = excluded.window_center, window_width = "
                "excluded.window_width, overlay = excluded.overlay, caption = excluded.caption",
                (item_id, int(row[0]), int(row[1]), center, width, overlay, caption, position,
                 _now()))
            self._touch(conn, collection.id)
        return next(k for k in self.key_images(item_id)
                    if k.instance_id == int(row[0]) and k.frame == int(row[1]))

    def save_note_and_tags(self, case_id: int, tags: Iterable[str], **fields: str) -> TeachingNote:
        """Store a case's note fields and replace its tags, in one transaction."""
        unknown = set(fields) - set(NOTE_FIELDS)
        if unknown:
            raise TeachingError(f"unknown note fields {sorted(unknown)}",
                                hint=f"use {', '.join(NOTE_FIELDS)}")
        self._check_cases([int(case_id)])
        wanted = sorted({t.strip() for t in tags if t and t.strip()}, key=str.lower)
        now = _now()
        with self.durable() as conn:
            row = conn.execute("SELECT history, findings, diagnosis, discussion, citations, "
                               "free_text FROM case_notes WHERE case_ref = ?",
                               (int(case_id),)).fetchone()
            current = dict(zip(NOTE_FIELDS, row)) if row else dict.fromkeys(NOTE_FIELDS, "")
            values = {f: str(fields.get(f, current[f])) for f in NOTE_FIELDS}
            conn.execute(
                _NOTE_UPSERT,
                (int(case_id), *[values[f] for f in NOTE_FIELDS], now))
            conn.execute("DELETE FROM case_tags WHERE case_ref = ?", (int(case_id),))
            conn.executemany("INSERT OR IGNORE INTO case_tags (case_ref, tag, created_at) "
                             "VALUES (?, ?, ?)", [(int(case_id), t, now) for t in wanted])
        return self.note(case_id)

    def quiz_scores(self, collection_id: int) -> list[tuple]:
        """Return ``(trainee, sessions, answered, matched, correct, graded)`` per trainee."""
        return self.conn.execute(
            "SELECT s.trainee, COUNT(DISTINCT s.id), COUNT(a.case_ref), "
            "COALESCE(SUM(a.matched), 0), COALESCE(SUM(a.correct = 1), 0), "
            "COALESCE(SUM(a.correct IS NOT NULL), 0) FROM quiz_sessions s LEFT JOIN "
            "quiz_answers a ON a.session_ref = s.id WHERE s.collection_ref = ? "
            "GROUP BY s.trainee ORDER BY s.trainee COLLATE NOCASE", (int(collection_id),)).fetchall()

    # -- helpers --------------------------------------------------------------------------------
    def _check_cases(self, case_ids: Sequence[int]) -> None:
        if not case_ids:
            return
        marks = ",".join("?" * len(set(case_ids)))
        found = {r[0] for r in self.conn.execute(f"SELECT id FROM cases WHERE id IN ({marks})",
                                                 sorted(set(case_ids)))}
        missing = sorted(set(case_ids) - found)
        if missing:
            raise CaseNotFoundError(f"no case {', '.join(map(str, missing))} in the library",
                                    path=str(self.library.path),
                                    hint="case ids come from 'medviewer teach search' or "
                                    "the library browser")

    def label_names(self, case_id: int) -> list[str]:
        """Return a case's dataset and user label names (model labels left out)."""
        return self._labels(case_id)

    def _labels(self, case_id: int) -> list[str]:
        rows = self.conn.execute("SELECT DISTINCT name FROM labels WHERE case_ref = ? AND "
                                 "source != 'model' ORDER BY name", (case_id,))
        return [r[0] for r in rows]


# The note upsert of save_note_and_tags (save_note spells the same statement; issue 15
# reworks save_note's transaction, after which both can share this one).
_NOTE_UPSERT = (
    "INSERT INTO case_notes (case_ref, history, findings, diagnosis, discussion, citations, "
    "free_text, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(case_ref) DO UPDATE SET "
    "history = excluded.history, findings = excluded.findings, diagnosis = excluded.diagnosis, "
    "discussion = excluded.discussion, citations = excluded.citations, free_text = "
    "excluded.free_text, updated_at = excluded.updated_at")
_COLLECTION_SQL = (
    "SELECT c.id, c.name, c.description, "
    "(SELECT COUNT(*) FROM collection_items i WHERE i.collection_ref = c.id AND i.role = 'case'), "
    "(SELECT COUNT(*) FROM collection_items i WHERE i.collection_ref = c.id AND i.role != 'case'), "
    "c.created_at, c.updated_at FROM collections c")


# -- case search (teaching.search) ---------------------------------------------------------------
def find_case_rows(conn, *, label: str | None = None, tag: str | None = None,
                   text: str | None = None, modality: str | None = None,
                   date_from: str | None = None, date_to: str | None = None,
                   collection: int | None = None, limit: int = 500) -> tuple[list, list[str]]:
    """Return ``(case id, location, modality, study date, patient id)`` rows matching every
    criterion given, and the names of the criteria used (see :func:`teaching.search.search_cases`)."""
    where, params, matched = [], [], []
    if label:
        where.append("c.id IN (SELECT case_ref FROM labels WHERE name = ? COLLATE NOCASE AND "
                     "source != 'model')")
        params.append(label.strip())
        matched.append("label")
    if tag:
        where.append("c.id IN (SELECT case_ref FROM case_tags WHERE tag = ? COLLATE NOCASE)")
        params.append(tag.strip())
        matched.append("tag")
    if text:
        like = f"%{text.strip()}%"
        where.append("c.id IN (SELECT case_ref FROM case_notes WHERE history LIKE ? OR "
                     "findings LIKE ? OR diagnosis LIKE ? OR discussion LIKE ? OR citations "
                     "LIKE ? OR free_text LIKE ?)")
        params.extend([like] * 6)
        matched.append("note")
    if modality:
        where.append("se.modality = ? COLLATE NOCASE")
        params.append(modality.strip())
        matched.append("modality")
    if date_from:
        where.append("st.study_date >= ? AND st.study_date != ''")
        params.append(date_from.strip())
        matched.append("date")
    if date_to:
        where.append("st.study_date <= ? AND st.study_date != ''")
        params.append(date_to.strip())
        if "date" not in matched:
            matched.append("date")
    if collection is not None:
        where.append("c.id IN (SELECT case_ref FROM collection_items WHERE collection_ref = ?)")
        params.append(int(collection))
        matched.append("collection")
    sql = ("SELECT c.id, i.location, se.modality, st.study_date, p.patient_id FROM cases c "
           "JOIN instances i ON i.id = c.instance_ref JOIN series se ON se.id = i.series_ref "
           "JOIN studies st ON st.id = se.study_ref JOIN patients p ON p.id = st.patient_ref")
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY c.id LIMIT ?"
    params.append(int(limit))
    return conn.execute(sql, params).fetchall(), matched


# -- quizzes (teaching.quiz) -----------------------------------------------------------------
def insert_quiz_session(conn, collection_id: int, trainee: str, started_at: str) -> int:
    """Insert a quiz session; return its id."""
    return int(conn.execute("INSERT INTO quiz_sessions (collection_ref, trainee, started_at) "
                            "VALUES (?, ?, ?)", (collection_id, trainee, started_at)).lastrowid)


def quiz_session_row(conn, session_id: int):
    """Return ``(id, collection, trainee, started_at, finished_at)`` of a session, or None."""
    return conn.execute("SELECT id, collection_ref, trainee, started_at, finished_at FROM "
                        "quiz_sessions WHERE id = ?", (int(session_id),)).fetchone()


def quiz_answered_cases(conn, session_id: int) -> set[int]:
    """Return the cases answered in a session."""
    return {int(r[0]) for r in conn.execute(
        "SELECT case_ref FROM quiz_answers WHERE session_ref = ?", (int(session_id),))}


def finish_quiz_session(conn, session_id: int, finished_at: str) -> None:
    """Record when a session's last question was answered."""
    conn.execute("UPDATE quiz_sessions SET finished_at = ? WHERE id = ?",
                 (finished_at, int(session_id)))


def insert_quiz_answer(conn, session_id: int, case_id: int, answer: str, matched: bool,
                       answered_at: str) -> None:
    """Store a trainee's answer."""
    conn.execute("INSERT INTO quiz_answers (session_ref, case_ref, answer, matched, "
                 "answered_at) VALUES (?, ?, ?, ?, ?)",
                 (int(session_id), int(case_id), answer, int(matched), answered_at))


def set_quiz_answer_correct(conn, session_id: int, case_id: int, correct: bool) -> None:
    """Grade a stored answer."""
    conn.execute("UPDATE quiz_answers SET correct = ? WHERE session_ref = ? AND case_ref = ?",
                 (int(bool(correct)), int(session_id), int(case_id)))


def quiz_answer_row(conn, session_id: int, case_id: int):
    """Return ``(answer, matched, correct)`` of a stored answer, or None."""
    return conn.execute("SELECT answer, matched, correct FROM quiz_answers WHERE "
                        "session_ref = ? AND case_ref = ?", (int(session_id), int(case_id))).fetchone()

"""Schema version 4: reader studies, their queries, candidates, readers, responses, audit.

Frozen text: a migration says what version 4 was, forever.  It was written from
``medviewer.study.tables.STUDY_SQL`` of that time; a later change of the reading
package's schema needs a new migration (tests/test_library.py compares the two).
"""

VERSION = 4

SQL = """
CREATE TABLE reader_studies (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    uid TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    bundle_sha256 TEXT NOT NULL DEFAULT '',
    index_version TEXT NOT NULL DEFAULT '',
    seed INTEGER NOT NULL,
    k INTEGER NOT NULL DEFAULT 5,
    picks_required INTEGER NOT NULL DEFAULT 5,
    design TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE study_queries (
    id INTEGER PRIMARY KEY,
    study_ref INTEGER NOT NULL REFERENCES reader_studies(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    case_ref INTEGER NOT NULL,
    modality TEXT NOT NULL DEFAULT '',
    label_group TEXT NOT NULL DEFAULT '',
    UNIQUE (study_ref, case_ref)
);
CREATE TABLE study_candidates (
    id INTEGER PRIMARY KEY,
    query_ref INTEGER NOT NULL REFERENCES study_queries(id) ON DELETE CASCADE,
    case_ref INTEGER NOT NULL,
    model_closest INTEGER NOT NULL CHECK (model_closest IN (0, 1)),
    rank INTEGER NOT NULL,
    distance REAL NOT NULL,
    UNIQUE (query_ref, case_ref)
);
CREATE TABLE study_readers (
    id INTEGER PRIMARY KEY,
    study_ref INTEGER NOT NULL REFERENCES reader_studies(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    seed INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    origin TEXT NOT NULL DEFAULT 'local',
    UNIQUE (study_ref, name)
);
CREATE TABLE study_responses (
    id INTEGER PRIMARY KEY,
    reader_ref INTEGER NOT NULL REFERENCES study_readers(id) ON DELETE CASCADE,
    query_ref INTEGER NOT NULL REFERENCES study_queries(id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('in_progress', 'answered', 'skipped')),
    picked TEXT NOT NULL DEFAULT '[]',
    skip_reason TEXT NOT NULL DEFAULT '',
    seconds REAL NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    UNIQUE (reader_ref, query_ref)
);
CREATE TABLE study_audit (
    id INTEGER PRIMARY KEY,
    reader_ref INTEGER NOT NULL,
    query_ref INTEGER NOT NULL,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    before TEXT NOT NULL,
    after TEXT NOT NULL
);
CREATE INDEX study_audit_reader ON study_audit(reader_ref, query_ref)
"""

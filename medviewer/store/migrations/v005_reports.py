"""Schema version 5: report text of studies and cases, and its full-text index.

Frozen text: never edit once released; add a new migration instead.  (Numbered 5
while the measurements migration of another branch is not in main; the number is
set at merge.)

``report_terms`` is an SQLite FTS5 table whose rowid is ``reports.id``.  Its two
columns hold the report's words split by negation (``affirmed``: said to be
present; ``negated``: inside a negation's scope, "no pleural effusion"), so a
search for "effusion" does not find "no effusion".  It is written by
``medviewer.reports.store`` in the same transaction as ``reports`` (no
triggers: migrations are split on ``;``).
"""

VERSION = 5

SQL = """
    CREATE TABLE reports (
        id INTEGER PRIMARY KEY,
        study_ref INTEGER REFERENCES studies(id) ON DELETE CASCADE,
        case_ref INTEGER REFERENCES cases(id) ON DELETE CASCADE,
        source TEXT NOT NULL CHECK (source IN ('sr', 'csv', 'txt', 'typed', 'synthetic')),
        source_detail TEXT NOT NULL DEFAULT '',
        text TEXT NOT NULL,
        sections TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        CHECK ((study_ref IS NULL) != (case_ref IS NULL))
    );
    CREATE INDEX reports_study ON reports(study_ref);
    CREATE INDEX reports_case ON reports(case_ref);
    CREATE VIRTUAL TABLE report_terms USING fts5(affirmed, negated, tokenize = 'porter unicode61');
    """

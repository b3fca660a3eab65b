"""Schema version 2: relevance marks of retrieval results (relevant / not relevant).

A mark survives the removal and re-import of either case: it names both by
case id *and* file location, and has no foreign key that would cascade a
deletion into the reader's answers.  The query may be an image outside the
library (``query_case`` NULL) or a rectangle of one (``query_region``,
"x,y,width,height").  One mark per (query, region, result, model, reader);
marking again replaces it (``updated_at`` changes, ``created_at``
stays).
"""

VERSION = 2

SQL = """
    CREATE TABLE relevance_marks (
        id INTEGER PRIMARY KEY,
        query_case INTEGER,
        query_location TEXT NOT NULL,
        query_region TEXT NOT NULL DEFAULT '',
        result_case INTEGER NOT NULL,
        result_location TEXT NOT NULL,
        relevant INTEGER NOT NULL CHECK (relevant IN (0, 1)),
        model_sha256 TEXT NOT NULL,
        reader TEXT NOT NULL DEFAULT '',
        rank INTEGER,
        distance REAL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (query_location, query_region, result_location, model_sha256, reader)
    );
    CREATE INDEX relevance_marks_query ON relevance_marks(query_case);
    CREATE INDEX relevance_marks_model ON relevance_marks(model_sha256)
    """

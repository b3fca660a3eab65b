"""Schema version 3: teaching collections, key images, exemplars, tags, notes, quiz answers.

- ``collections``: a named, ordered set of cases to teach from.
- ``collection_items``: a case in a collection, as a teaching case (``role='case'``) or as a
  similar / dissimilar exemplar of another item (``exemplar_of``), with where it came from
  (``source``: "retrieval <model> rank 2 distance 0.12", "manual").
- ``key_images``: the images of an item to show and export, each with the window/level and
  overlay as shown, a caption, and blackout rectangles for burned-in text (JSON).
- ``case_tags``: free tags on cases (library-wide, searched).
- ``case_notes``: free text and the teaching template of a case (history, findings,
  diagnosis, discussion, references).
- ``quiz_sessions`` / ``quiz_answers``: "unknown case" quizzes and trainees' answers.
"""

VERSION = 3

SQL = """
    CREATE TABLE collections (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        description TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE collection_items (
        id INTEGER PRIMARY KEY,
        collection_ref INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        case_ref INTEGER NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
        role TEXT NOT NULL DEFAULT 'case' CHECK (role IN ('case', 'similar', 'dissimilar')),
        exemplar_of INTEGER REFERENCES collection_items(id) ON DELETE CASCADE,
        position INTEGER NOT NULL DEFAULT 0,
        source TEXT NOT NULL DEFAULT '',
        score REAL,
        added_at TEXT NOT NULL,
        CHECK ((role = 'case') = (exemplar_of IS NULL))
    );
    CREATE UNIQUE INDEX collection_items_case ON collection_items(collection_ref, case_ref)
        WHERE role = 'case';
    CREATE UNIQUE INDEX collection_items_exemplar ON collection_items(exemplar_of, case_ref)
        WHERE role != 'case';
    CREATE INDEX collection_items_collection ON collection_items(collection_ref, position);
    CREATE TABLE key_images (
        id INTEGER PRIMARY KEY,
        item_ref INTEGER NOT NULL REFERENCES collection_items(id) ON DELETE CASCADE,
        instance_ref INTEGER NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
        frame INTEGER NOT NULL DEFAULT 0,
        window_center REAL,
        window_width REAL,
        overlay TEXT NOT NULL DEFAULT '',
        caption TEXT NOT NULL DEFAULT '',
        blackout TEXT NOT NULL DEFAULT '[]',
        position INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        UNIQUE (item_ref, instance_ref, frame)
    );
    CREATE TABLE case_tags (
        case_ref INTEGER NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
        tag TEXT NOT NULL COLLATE NOCASE,
        created_at TEXT NOT NULL,
        PRIMARY KEY (case_ref, tag)
    );
    CREATE INDEX case_tags_tag ON case_tags(tag);
    CREATE TABLE case_notes (
        case_ref INTEGER PRIMARY KEY REFERENCES cases(id) ON DELETE CASCADE,
        history TEXT NOT NULL DEFAULT '',
        findings TEXT NOT NULL DEFAULT '',
        diagnosis TEXT NOT NULL DEFAULT '',
        discussion TEXT NOT NULL DEFAULT '',
        citations TEXT NOT NULL DEFAULT '',
        free_text TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL
    );
    CREATE TABLE quiz_sessions (
        id INTEGER PRIMARY KEY,
        collection_ref INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        trainee TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE TABLE quiz_answers (
        id INTEGER PRIMARY KEY,
        session_ref INTEGER NOT NULL REFERENCES quiz_sessions(id) ON DELETE CASCADE,
        case_ref INTEGER NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
        answer TEXT NOT NULL,
        matched INTEGER NOT NULL DEFAULT 0,
        correct INTEGER,
        answered_at TEXT NOT NULL,
        UNIQUE (session_ref, case_ref)
    )
    """

"""Schema version 7: measurements and annotations on images, kept per image (frozen text).

(Planned as 5; reports took 5 and content hashes 6 first.)
"""

VERSION = 7

SQL = """
CREATE TABLE measurements (
    id INTEGER PRIMARY KEY,
    instance_ref INTEGER NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    frame INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL,
    points TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    uid TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL DEFAULT 'user',
    created TEXT NOT NULL
);
CREATE INDEX measurements_instance ON measurements(instance_ref, frame);
"""

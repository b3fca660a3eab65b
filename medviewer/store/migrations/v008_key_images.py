"""Schema version 8: key images, the frames a reader marked as the ones that matter (frozen text).

Not ``key_images``: that is the teaching files' table (a key image of a teaching case,
with its window); these are the reader's marks on any image of the library.
"""

VERSION = 8

SQL = """
CREATE TABLE key_image_marks (
    id INTEGER PRIMARY KEY,
    instance_ref INTEGER NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    frame INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    UNIQUE (instance_ref, frame)
);
"""

"""Schema version 6: a cheap content hash of each instance, to notice files changed in place.

Frozen text: never edit once released; add a new migration instead.  (Numbered 6, after
the reports migration; if another branch takes 6 first, the number is set at merge.)

``content_hash`` is a digest of the file's first 8 KiB (the header) and of samples of
the rest (the pixel data), taken at import by :func:`medviewer.dicom.content.sample_hash`.
An image rewritten with the same size and modification time gets another hash, so a
re-import updates it and the retrieval index re-embeds it.  Empty for rows imported
before this version.
"""

VERSION = 6

SQL = """
    ALTER TABLE instances ADD COLUMN content_hash TEXT NOT NULL DEFAULT ''
"""

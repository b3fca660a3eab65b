"""The case library: one SQLite file per library, with explicit, versioned migrations."""

from medviewer.store.library import Library

__all__ = ["Library"]

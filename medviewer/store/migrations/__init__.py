"""Schema migrations, one module per version (see medviewer.store.schema)."""

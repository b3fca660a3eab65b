"""Reader studies: design, blinded reading with durable picks, packages, tidy export.

Definitions (item, agreement, consensus, kappas) follow ``DESIGN.md``; the
statistics themselves live in :mod:`medviewer.stats`.
"""

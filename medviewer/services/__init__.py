"""Orchestration over the domain packages: imports, viewer state, demo library. No Qt."""

"""Where MedViewer keeps its files: the user's data and config folders.

``MEDVIEWER_DATA_DIR``, ``MEDVIEWER_CONFIG_DIR`` and ``MEDVIEWER_LOG_DIR``
override the platform folders; the test suite sets all three so tests never
touch a user's files.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "MedViewer"


def _user_dir(env: str, kind: str) -> Path:
    """Return (and create) ``$env`` if set, else platformdirs' user ``kind`` folder."""
    override = os.environ.get(env)
    if override:
        path = Path(override)
    else:
        import platformdirs

        path = Path(getattr(platformdirs, f"user_{kind}_dir")(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Return (and create) the folder for libraries and the demo."""
    return _user_dir("MEDVIEWER_DATA_DIR", "data")


def config_dir() -> Path:
    """Return (and create) the folder for settings."""
    return _user_dir("MEDVIEWER_CONFIG_DIR", "config")


def log_dir() -> Path:
    """Return (and create) the folder for the log files (platformdirs' user log folder)."""
    return _user_dir("MEDVIEWER_LOG_DIR", "log")


def demo_dir() -> Path:
    """Return the folder of the demo library."""
    return data_dir() / "demo"

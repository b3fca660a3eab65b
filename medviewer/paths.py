"""Where MedViewer keeps its files: the user's data and config folders.

``MEDVIEWER_DATA_DIR`` and ``MEDVIEWER_CONFIG_DIR`` override the platform
folders; the test suite sets both so tests never touch a user's files.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "MedViewer"


def data_dir() -> Path:
    """Return (and create) the folder for libraries, the demo and logs."""
    override = os.environ.get("MEDVIEWER_DATA_DIR")
    if override:
        path = Path(override)
    else:
        from platformdirs import user_data_dir

        path = Path(user_data_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    """Return (and create) the folder for settings."""
    override = os.environ.get("MEDVIEWER_CONFIG_DIR")
    if override:
        path = Path(override)
    else:
        from platformdirs import user_config_dir

        path = Path(user_config_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def demo_dir() -> Path:
    """Return the folder of the demo library."""
    return data_dir() / "demo"

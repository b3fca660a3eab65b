"""Typed, versioned user settings stored as JSON, with migrations.

Settings are read once at start-up and written atomically (temporary file then
rename), so a crash while saving never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from medviewer.paths import config_dir

SETTINGS_VERSION = 1
MAX_RECENT = 8


@dataclass
class Settings:
    """The user's preferences."""

    version: int = SETTINGS_VERSION
    recent_libraries: list[str] = field(default_factory=list)
    last_library: str = ""
    layout: str = "1x1"
    hide_identifying_text: bool = False
    show_corner_text: bool = True
    cine_fps: int = 10
    window_geometry: str = ""

    def add_recent(self, library: str) -> None:
        """Put a library at the top of the recent list."""
        library = str(library)
        self.recent_libraries = [library] + [p for p in self.recent_libraries if p != library]
        del self.recent_libraries[MAX_RECENT:]
        self.last_library = library


def settings_path() -> Path:
    """Return the settings file."""
    return config_dir() / "settings.json"


def _migrate(data: dict) -> dict:
    """Upgrade settings written by older versions (version 0 had ``recent`` only)."""
    version = int(data.get("version", 0))
    if version < 1:
        data["recent_libraries"] = list(data.pop("recent", []))
        data["version"] = 1
    return data


def load_settings(path: Path | None = None) -> Settings:
    """Read settings; a missing or damaged file gives defaults (the damaged file is kept aside)."""
    path = path or settings_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("settings must be a JSON object")
    except FileNotFoundError:
        return Settings()
    except (OSError, ValueError):
        path.replace(path.with_suffix(".damaged.json"))
        return Settings()
    data = _migrate(data)
    known = {f.name for f in fields(Settings)}
    return Settings(**{k: v for k, v in data.items() if k in known})


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write settings atomically."""
    path = path or settings_path()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(settings), indent=2), encoding="utf-8")
    os.replace(tmp, path)

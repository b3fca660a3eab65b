"""Typed, versioned user settings stored as JSON, with migrations.

Settings are read once at start-up and written atomically (temporary file then
rename), so a crash while saving never leaves a half-written file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from medviewer.fileio import atomic_write_json
from medviewer.services import deid_choices
from medviewer.paths import config_dir

SETTINGS_VERSION = 2
MAX_RECENT = 8
PROVIDER_CHOICES = ("auto", "cuda", "tensorrt", "coreml", "directml", "cpu")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING")
# De-identification defaults: every choice of the one registry (services.deid_choices).
DEID_DEFAULTS = deid_choices.DEID_DEFAULTS


@dataclass
class Settings:
    """The user's preferences."""

    version: int = SETTINGS_VERSION
    recent_libraries: list[str] = field(default_factory=list)
    last_library: str = ""
    layout: str = "1x1"
    # Hanging protocols: "MODALITY|BODY PART" -> the layout last chosen for it ("CT|CHEST": "1x3").
    hanging_layouts: dict = field(default_factory=dict)
    hide_identifying_text: bool = False
    show_corner_text: bool = True
    cine_fps: int = 10
    # The main window's geometry (maximised, position) and dock layout, as Qt saves them
    # (base64 of QMainWindow.saveGeometry / saveState).
    window_geometry: str = ""
    window_state: str = ""
    # Data folders: where new libraries and imports go ("" = the platform's data folder),
    # and extra folders searched for model bundles.
    library_folder: str = ""
    model_folders: list[str] = field(default_factory=list)
    # Model: the bundle loaded by default ("" = the demo bundle, else the first found) and
    # the ONNX Runtime execution provider preference (one of PROVIDER_CHOICES).
    default_model: str = ""
    provider_preference: str = "auto"
    deid_defaults: dict = field(default_factory=lambda: dict(DEID_DEFAULTS))
    # Keyboard shortcuts the user changed: action id -> key sequences ("Ctrl+O, F2").
    shortcuts: dict = field(default_factory=dict)
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        # Values from an edited or older file are checked, so a bad entry falls back to
        # its default instead of breaking the start-up.
        if self.provider_preference not in PROVIDER_CHOICES:
            self.provider_preference = "auto"
        if self.log_level not in LOG_LEVELS:
            self.log_level = "INFO"
        deid = dict(DEID_DEFAULTS)
        deid.update({k: v for k, v in dict(self.deid_defaults or {}).items()
                     if k in DEID_DEFAULTS and isinstance(v, type(DEID_DEFAULTS[k]))})
        if deid["dates"] not in ("remove", "shift", "keep"):
            deid["dates"] = "remove"
        self.deid_defaults = deid
        self.shortcuts = {str(k): str(v) for k, v in dict(self.shortcuts or {}).items()}
        self.model_folders = [str(p) for p in self.model_folders or []]
        self.hanging_layouts = {str(k): str(v) for k, v in dict(self.hanging_layouts or {}).items()}

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
    """Upgrade settings written by older versions, one version at a time.

    Version 0 had ``recent`` only; version 1 kept the models folder in the environment
    (``MEDVIEWER_MODELS_DIR``) and a single ``execution_provider`` key some early builds
    wrote; version 2 has data folders, model, provider, de-identification defaults,
    shortcuts and log level.
    """
    version = int(data.get("version", 0))
    if version < 1:
        data["recent_libraries"] = list(data.pop("recent", []))
        data["version"] = 1
    if version < 2:
        if "execution_provider" in data:
            data["provider_preference"] = str(data.pop("execution_provider")).lower()
        data["version"] = 2
    return data


def user_library_folder(settings: Settings) -> Path:
    """Return the folder for new libraries and imports (created if missing)."""
    from medviewer.paths import data_dir

    folder = Path(settings.library_folder).expanduser() if settings.library_folder else data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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
    if int(data.get("version", 0)) > SETTINGS_VERSION:
        # Written by a newer MedViewer: keep what this version knows.
        data["version"] = SETTINGS_VERSION
    data = _migrate(data)
    known = {f.name for f in fields(Settings)}
    return Settings(**{k: v for k, v in data.items() if k in known})


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write settings atomically."""
    path = path or settings_path()
    atomic_write_json(path, asdict(settings))

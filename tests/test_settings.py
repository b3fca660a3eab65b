"""Versioned JSON settings: defaults, round trip, migration, damage, atomic save, test isolation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from medviewer import paths
from medviewer.services.settings import (
    MAX_RECENT,
    SETTINGS_VERSION,
    Settings,
    load_settings,
    save_settings,
    settings_path,
)


def test_tests_never_touch_the_users_folders(session_dirs):
    from platformdirs import user_config_dir, user_data_dir

    assert paths.config_dir() == session_dirs["config"]
    assert paths.data_dir() == session_dirs["data"]
    assert settings_path().parent == session_dirs["config"]
    for folder in (paths.config_dir(), paths.data_dir(), paths.demo_dir()):
        assert folder.parent.name.startswith("medviewer-tests-") or \
            folder.parent.parent.name.startswith("medviewer-tests-")
    assert paths.config_dir() != Path(user_config_dir(paths.APP_NAME, appauthor=False))
    assert paths.data_dir() != Path(user_data_dir(paths.APP_NAME, appauthor=False))


def test_missing_file_gives_defaults(tmp_path):
    loaded = load_settings(tmp_path / "settings.json")
    assert loaded == Settings()
    assert loaded.version == SETTINGS_VERSION and loaded.layout == "1x1"


def test_round_trip(tmp_path):
    path = tmp_path / "settings.json"
    original = Settings(layout="2x2", hide_identifying_text=True, cine_fps=25,
                        window_geometry="abc==")
    original.add_recent("/libs/a.sqlite")
    save_settings(original, path)
    assert load_settings(path) == original
    assert json.loads(path.read_text())["version"] == SETTINGS_VERSION


def test_default_location_is_the_config_folder():
    s = Settings(cine_fps=12)
    save_settings(s)
    assert settings_path().is_file()
    assert load_settings().cine_fps == 12
    settings_path().unlink()


def test_version_0_settings_are_migrated(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"recent": ["/a.sqlite", "/b.sqlite"], "layout": "1x2"}))
    loaded = load_settings(path)
    assert loaded.recent_libraries == ["/a.sqlite", "/b.sqlite"]
    assert loaded.layout == "1x2" and loaded.version == SETTINGS_VERSION == 2


def test_version_1_settings_gain_the_version_2_defaults(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"version": 1, "recent_libraries": ["/a.sqlite"],
                                "execution_provider": "CPU", "cine_fps": 20}))
    loaded = load_settings(path)
    assert loaded.version == 2 and loaded.cine_fps == 20
    assert loaded.recent_libraries == ["/a.sqlite"]
    assert loaded.provider_preference == "cpu"  # the old key is carried over
    assert loaded.deid_defaults["dates"] == "remove" and loaded.shortcuts == {}
    save_settings(loaded, path)
    assert json.loads(path.read_text())["version"] == 2
    assert "execution_provider" not in json.loads(path.read_text())


def test_bad_values_fall_back_to_their_defaults(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"version": 2, "provider_preference": "quantum",
                                "log_level": "LOUD", "layout": "2x2",
                                "deid_defaults": {"dates": "sometimes", "retain_uids": "yes",
                                                  "retain_device_identity": True, "bogus": 1},
                                "shortcuts": {"file.open": "Ctrl+O"}}))
    loaded = load_settings(path)
    assert loaded.provider_preference == "auto" and loaded.log_level == "INFO"
    assert loaded.deid_defaults["dates"] == "remove"
    assert loaded.deid_defaults["retain_uids"] is False  # a string is not a boolean
    assert loaded.deid_defaults["retain_device_identity"] is True
    assert "bogus" not in loaded.deid_defaults
    assert loaded.shortcuts == {"file.open": "Ctrl+O"} and loaded.layout == "2x2"


def test_the_library_folder_setting_is_used_and_created(tmp_path, session_dirs):
    from medviewer.services.settings import user_library_folder

    assert user_library_folder(Settings()) == session_dirs["data"]
    target = tmp_path / "libs" / "here"
    assert user_library_folder(Settings(library_folder=str(target))) == target
    assert target.is_dir()


def test_unknown_keys_from_newer_versions_are_ignored(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"version": 1, "layout": "2x2", "future_feature": {"x": 1}}))
    assert load_settings(path).layout == "2x2"


@pytest.mark.parametrize("content", ["{not json", "\x00\x01garbage", ""])
def test_damaged_file_gives_defaults_and_is_kept_aside(tmp_path, content):
    path = tmp_path / "settings.json"
    path.write_text(content)
    assert load_settings(path) == Settings()
    assert not path.exists()
    assert (tmp_path / "settings.damaged.json").read_text() == content


@pytest.mark.parametrize("content", ["[1, 2]", "null", "42", '"text"'])
def test_json_that_is_not_an_object_is_treated_as_damaged(tmp_path, content):
    path = tmp_path / "settings.json"
    path.write_text(content)
    assert load_settings(path) == Settings()


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "settings.json"
    save_settings(Settings(layout="1x2"), path)
    before = path.read_text()

    def crash(src, dst):
        raise OSError("disk full")

    from medviewer import fileio

    monkeypatch.setattr(fileio.os, "replace", crash)  # settings write through fileio
    with pytest.raises(OSError):
        save_settings(Settings(layout="2x2"), path)
    assert path.read_text() == before  # the old file is whole
    monkeypatch.undo()
    save_settings(Settings(layout="2x2"), path)
    assert load_settings(path).layout == "2x2"
    assert sorted(os.listdir(tmp_path)) == ["settings.json"]  # no temporary left behind


def test_recent_libraries_most_recent_first_unique_and_capped():
    s = Settings()
    for i in range(MAX_RECENT + 3):
        s.add_recent(f"/lib{i}.sqlite")
    s.add_recent("/lib5.sqlite")
    assert s.recent_libraries[0] == "/lib5.sqlite" and s.last_library == "/lib5.sqlite"
    assert len(s.recent_libraries) == MAX_RECENT
    assert len(set(s.recent_libraries)) == MAX_RECENT
    assert "/lib0.sqlite" not in s.recent_libraries
    s.add_recent(Path("/lib9.sqlite"))
    assert s.recent_libraries[0] == "/lib9.sqlite"


def test_deid_defaults_are_the_de_identification_options_defaults():
    from dataclasses import fields

    from medviewer.deid.options import DeidOptions
    from medviewer.services.settings import DEID_DEFAULTS

    per_export = {"date_shift_days", "patient_id"}
    assert DEID_DEFAULTS == {f.name: f.default for f in fields(DeidOptions)
                             if f.name not in per_export}
    # The registry the form and the CLI read names the same options and date policies.
    from medviewer.deid.options import DATE_POLICIES
    from medviewer.services.deid_choices import DATE_CHOICES, OPTION_CHOICES

    assert tuple(c.policy for c in DATE_CHOICES) == DATE_POLICIES
    assert {c.field for c in OPTION_CHOICES} == set(DEID_DEFAULTS) - {"dates"}
    assert len({c.flag for c in OPTION_CHOICES}) == len(OPTION_CHOICES)

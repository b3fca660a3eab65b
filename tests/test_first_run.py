"""First run: the welcome page, the demo tour, the headless smoke test, the shipped demo model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from helpers_demo import DEMO_BUNDLE

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def fresh_user(tmp_path, monkeypatch):
    """A user with no settings, no libraries and no demo yet."""
    for name in ("DATA", "CONFIG", "LOG"):
        monkeypatch.setenv(f"MEDVIEWER_{name}_DIR", str(tmp_path / name.lower()))
    return tmp_path


@pytest.mark.gui
def test_a_new_user_sees_the_three_ways_in_and_only_existing_recent_libraries(qtbot, fresh_user):
    from medviewer.qt.app import create_window
    from medviewer.services.settings import Settings, save_settings
    from medviewer.store import Library

    kept = fresh_user / "kept.sqlite"
    Library(kept).close()
    settings = Settings()
    settings.recent_libraries = [str(fresh_user / "gone.sqlite"), str(kept)]
    save_settings(settings)
    window = create_window(None)
    qtbot.addWidget(window)
    window.show()
    assert window.central.currentWidget() is window.welcome
    titles = [b.title for b in window.welcome.buttons.values()]
    assert titles == ["Open the demo library", "Import a folder\u2026", "Query a PACS\u2026"]
    recent = window.welcome.recent
    assert [recent.item(i).toolTip() for i in range(recent.count())] == [str(kept)]
    window.welcome.sig_open_library.emit(str(kept))
    assert window.library_path == str(kept.resolve())
    assert window.central.currentWidget() is window.grid_host


@pytest.mark.gui
def test_the_demo_opens_classified_searched_and_explained(qtbot, fresh_user):
    from PySide6.QtCore import Qt

    from medviewer.qt.app import create_window
    from medviewer.store import Library

    if not (DEMO_BUNDLE / "model.onnx").is_file():
        pytest.skip("the demo bundle models/demo is missing")
    window = create_window(None)
    qtbot.addWidget(window)
    window.show()
    qtbot.mouseClick(window.welcome.buttons["demo"], Qt.LeftButton)
    qtbot.waitUntil(lambda: window.demo_tour is not None, timeout=120000)
    with qtbot.waitSignal(window.demo_tour.sig_finished, timeout=120000) as done:
        pass
    result = done.args[0]
    assert set(result.probabilities) == {"Cardiomegaly", "Emphysema", "Opacity"}
    assert result.similar == 5 and result.overlay
    # The case on screen is the tour's case, its predictions are stored, and the
    # similar-cases panel lists results for it.
    assert window.current_case_id() == result.case_id
    with Library(window.library_path) as library:
        sources = {source for _n, _v, source, _d in library.labels(result.case_id)}
    assert {"dataset", "model"} <= sources
    assert window.similar_panel.result.query_case == result.case_id
    assert len(window.similar_panel.rows()) == 5
    assert "Demo ready" in window.statusBar().currentMessage()


def test_the_smoke_test_command_runs_the_first_run_path(tmp_path):
    if not (DEMO_BUNDLE / "model.onnx").is_file():
        pytest.skip("the demo bundle models/demo is missing")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    shot = tmp_path / "shots" / "end.png"  # a folder that does not exist yet
    done = subprocess.run([sys.executable, "-m", "medviewer.launcher", "smoke-test", "--json",
                           "--workdir", str(tmp_path / "work"), "--screenshot", str(shot)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout[done.stdout.index("{"):])
    assert report["ok"] and report["welcome_shown"] and report["overlay"]
    assert report["similar"] == 5 and set(report["probabilities"]) == {
        "Cardiomegaly", "Emphysema", "Opacity"}
    assert list(report["steps"]) == ["open the case", "load the model", "classify",
                                     "index the library", "search similar cases",
                                     "draw the attention overlay"]
    # Everything was written under the work folder, nothing in the user's folders.
    assert (tmp_path / "work" / "data" / "demo" / "demo-library.sqlite").is_file()
    assert shot.stat().st_size > 10_000 and report["screenshot"] == str(shot)


def test_the_demo_model_ships_inside_the_wheel(tmp_path):
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = config["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    from medviewer.services import models

    target = include["models/demo"]
    assert Path(target).parts[-2:] == ("bundled_models", "demo")
    assert models._PACKAGED_MODELS.name == Path(target).parent.name
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed: the wheel is not built here")
    subprocess.run([uv, "build", "--wheel", "-o", str(tmp_path), str(REPO)], check=True,
                   capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("medviewer-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for part in ("model.onnx", "metadata.json", "card.md"):
        assert f"{target}/{part}" in names
    # Installed from the wheel (no checkout beside it), the demo model is found.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("from medviewer.services.models import default_bundle; "
            "b = default_bundle(); print(b)")
    env = {**os.environ, "PYTHONPATH": str(site), "MEDVIEWER_DATA_DIR": str(tmp_path / "d")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=tmp_path, check=True).stdout.strip()
    assert Path(out) == (site / target).resolve()


@pytest.mark.gui
def test_changed_shortcuts_apply_and_clashes_cannot_be_saved(qtbot, fresh_user):
    from PySide6.QtGui import QKeySequence

    from medviewer.qt.app import create_window
    from medviewer.qt.settings_dialog import SettingsDialog

    window = create_window(None)
    qtbot.addWidget(window)
    by_id = {a.objectName(): a for a in window.actions() if a.objectName()}
    assert by_id["image.invert"].shortcut() == QKeySequence("I")
    dialog = SettingsDialog(window.settings, window.actions(), window)
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    dialog.set_shortcut("image.invert", "F")  # F already fits the image to the window
    assert not ok.isEnabled() and "F is used by" in dialog.conflicts.text()
    dialog.set_shortcut("image.invert", "Ctrl+Shift+N")
    assert ok.isEnabled() and dialog.conflicts.text() == ""
    changed = dialog.result_settings()
    assert changed.shortcuts == {"image.invert": "Ctrl+Shift+N"}  # only what changed
    window._on_settings_accepted(changed)
    assert by_id["image.invert"].shortcut() == QKeySequence("Ctrl+Shift+N")
    # Saved, and applied again by a window opened later.
    later = create_window(None)
    qtbot.addWidget(later)
    again = {a.objectName(): a for a in later.actions() if a.objectName()}
    assert again["image.invert"].shortcut() == QKeySequence("Ctrl+Shift+N")
    assert again["image.fit-to-window"].shortcut() == QKeySequence("F")


@pytest.mark.gui
def test_settings_dialog_round_trips_folders_model_and_deid_defaults(qtbot, fresh_user):
    from medviewer.qt.app import create_window
    from medviewer.qt.settings_dialog import SettingsDialog
    from medviewer.services.settings import DEID_DEFAULTS, load_settings

    window = create_window(None)
    qtbot.addWidget(window)
    dialog = SettingsDialog(window.settings, window.actions(), window)
    qtbot.addWidget(dialog)
    dialog.library_folder.setText(str(fresh_user / "libs"))
    dialog.model_folders.addItem(str(fresh_user / "more-models"))
    dialog.provider.setCurrentIndex(dialog.provider.findData("cpu"))
    deid = dict(DEID_DEFAULTS, dates="shift", retain_device_identity=True)
    dialog.deid_form.set_values(deid)
    window._on_settings_accepted(dialog.result_settings())
    saved = load_settings()
    assert saved.library_folder == str(fresh_user / "libs")
    assert saved.model_folders == [str(fresh_user / "more-models")]
    assert saved.provider_preference == "cpu" == window.model_panel.provider_preference
    assert saved.deid_defaults == deid
    # New libraries now go to the chosen folder.
    assert window.ensure_library() == str((fresh_user / "libs" / "library.sqlite").resolve())


@pytest.mark.gui
def test_the_provider_preference_reaches_the_model(qtbot, fresh_user):
    from medviewer.qt.app import create_window

    if not (DEMO_BUNDLE / "model.onnx").is_file():
        pytest.skip("the demo bundle models/demo is missing")
    window = create_window(None)
    qtbot.addWidget(window)
    panel = window.model_panel
    panel.provider_preference = "cpu"
    with qtbot.waitSignal(panel.sig_model_ready, timeout=60000) as ready:
        panel.load(str(DEMO_BUNDLE))
    report = ready.args[0].provider_report()
    # Only the CPU was asked for: with "auto" a GPU would run it, or (without one) the
    # panel would explain why CUDA is not used.
    assert report.provider_label == "CPU" and "CUDA" not in panel.provider.text()


@pytest.mark.gui
def test_help_and_file_menus_open_their_windows(qtbot, fresh_user, tmp_path):
    from medviewer.qt.app import create_window
    from medviewer.store import Library

    window = create_window(None)
    qtbot.addWidget(window)
    window.show()
    by_text = {a.text(): a for a in window.actions()}
    by_text["About MedViewer"].trigger()
    assert window._about_dialog.isVisible()
    window._about_dialog.close()
    by_text["Report a problem\u2026"].trigger()
    assert window._problem_dialog.isVisible()
    window._problem_dialog.close()
    by_text["Query a PACS\u2026"].trigger()
    assert window._pacs_dialog.isVisible()
    window._pacs_dialog.close()
    # No library yet: the export says so instead of opening on nothing.
    by_text["Export de-identified copy\u2026"].trigger()
    assert getattr(window, "_deid_dialog", None) is None
    Library(tmp_path / "lib.sqlite").close()
    window.open_library(str(tmp_path / "lib.sqlite"))
    by_text["Export de-identified copy\u2026"].trigger()
    assert window._deid_dialog.isVisible()
    window._deid_dialog.close()


def test_the_readme_demo_command_asks_for_the_demo_tour(tmp_path):
    from medviewer.cli.main import main as cli_main
    from medviewer.cli.output import GuiRequest

    request = cli_main(["demo", "--dir", str(tmp_path / "demo")])
    assert isinstance(request, GuiRequest) and request.demo_tour
    assert Path(request.library).is_file()
    assert not cli_main([]).demo_tour  # plain `medviewer` opens the first-run page

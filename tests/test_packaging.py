"""The application build (packaging/) agrees with the repository.

A real PyInstaller build takes a minute or more, so the normal suite only
checks what the build is made from: the lists in packaging/bundle_contents.py,
the spec run against a stand-in for PyInstaller, the desktop entry, the
install script, the icons and the bundle probe and its checker.  The full
build and smoke check run with ``MEDVIEWER_TEST_BUILD=1``.
"""

from __future__ import annotations

import ast
import configparser
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGING = REPO_ROOT / "packaging"
if str(PACKAGING) not in sys.path:  # the packaging scripts import each other by module name
    sys.path.insert(0, str(PACKAGING))

import bundle_contents as bc  # noqa: E402
import smoke_check  # noqa: E402

import medviewer  # noqa: E402
from medviewer.cli.main import COMMAND_MODULES  # noqa: E402
from medviewer.services import models as model_service  # noqa: E402

MEDVIEWER_DIR = Path(medviewer.__file__).resolve().parent
needs_sh = pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")


def _imported_top_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


# -- what goes in ---------------------------------------------------------------------------


def test_demo_bundle_lands_where_the_app_looks_for_shipped_models():
    assert (bc.DEMO_BUNDLE_SOURCE / "model.onnx").is_file()
    assert (bc.DEMO_BUNDLE_SOURCE / "metadata.json").is_file()
    # medviewer.services.models searches <medviewer package>/bundled_models in a frozen app.
    shipped = model_service._PACKAGED_MODELS.relative_to(MEDVIEWER_DIR).as_posix()
    assert bc.DEMO_BUNDLE_TARGET == f"medviewer/{shipped}/demo"


def test_demo_bundle_target_matches_the_wheel():
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    force_include = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    source = bc.DEMO_BUNDLE_SOURCE.relative_to(REPO_ROOT).as_posix()
    assert force_include[source] == bc.DEMO_BUNDLE_TARGET


def test_every_resource_the_code_loads_is_packaged_data():
    """Files read via importlib.resources from medviewer.resources exist there.

    The spec collects medviewer's data files (everything but code), so a file
    that exists is in the bundle; one that is missing fails here, not at a
    user's first start.
    """
    pattern = re.compile(r"""files\(["']medviewer\.resources["']\)\s*\.joinpath\(["']([^"']+)""")
    wanted = {name for path in MEDVIEWER_DIR.rglob("*.py")
              for name in pattern.findall(path.read_text(encoding="utf-8"))}
    assert {"style.qss", "medviewer.svg"} <= wanted
    missing = sorted(name for name in wanted if not (MEDVIEWER_DIR / "resources" / name).is_file())
    assert not missing


def test_command_modules_and_migrations_are_medviewer_submodules():
    """The spec takes every medviewer submodule; modules loaded by name must be among them."""
    for name in COMMAND_MODULES:
        assert name.startswith("medviewer.")
        assert importlib.util.find_spec(name) is not None, name
    migrations = sorted((MEDVIEWER_DIR / "store" / "migrations").glob("v[0-9][0-9][0-9]_*.py"))
    assert migrations and (MEDVIEWER_DIR / "store" / "migrations" / "__init__.py").is_file()


def test_plugin_modules_cover_every_installed_pylibjpeg_entry_point():
    """pylibjpeg finds its plugins through entry points, which PyInstaller cannot follow."""
    plugin_modules = set()
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group.startswith("pylibjpeg."):
                plugin_modules.add(ep.value.split(":")[0].split(".")[0])
    assert {"libjpeg", "openjpeg", "rle"} <= plugin_modules
    assert plugin_modules == set(bc.PLUGIN_MODULES)
    for name in bc.PLUGIN_MODULES:
        assert importlib.util.find_spec(name) is not None, f"{name} is not installed"


def test_the_training_stack_and_test_tools_are_excluded():
    assert {"torch", "torchvision", "timm", "triton", "models", "pytest", "hypothesis",
            "tkinter", "matplotlib", "IPython"} <= set(bc.EXCLUDED_MODULES)


def test_medviewer_never_imports_an_excluded_module():
    """An excluded module imported by medviewer would fail only in the built app."""
    excluded = set(bc.EXCLUDED_MODULES)
    offenders = {}
    for path in MEDVIEWER_DIR.rglob("*.py"):
        hits = _imported_top_level_names(path) & excluded
        if hits:
            offenders[str(path.relative_to(REPO_ROOT))] = sorted(hits)
    assert not offenders


def test_no_runtime_dependency_is_excluded():
    runtime = smoke_check.expected_distributions()
    providers = importlib.metadata.packages_distributions()
    clashes = {module: dists for module in bc.EXCLUDED_MODULES
               for dists in [{smoke_check.normalise(d) for d in providers.get(module, [])}]
               if dists & runtime}
    assert not clashes


def test_expected_distributions_follow_runtime_requirements_not_extras():
    expected = smoke_check.expected_distributions()
    assert {"medviewer", "pydicom", "pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg",
            "pylibjpeg-rle", "pyjpegls", "pyqtgraph", "faiss-cpu", "scipy", "onnx"} <= expected
    assert ("onnxruntime-gpu" in expected) == bc.platform_config(sys.platform).cuda_provider
    # Extras (train, test, package) are not part of the app.
    assert not {"torch", "timm", "pytest", "pyinstaller", "statsmodels"} & expected


@pytest.mark.parametrize("platform", ["linux", "win32", "darwin"])
def test_platform_config_ships_the_onnxruntime_pyproject_selects(platform):
    """The CUDA provider is expected exactly where pyproject.toml installs onnxruntime-gpu."""
    from packaging.requirements import Requirement

    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    chosen = {Requirement(line).name for line in pyproject["project"]["dependencies"]
              if Requirement(line).name.startswith("onnxruntime")
              and Requirement(line).marker.evaluate({"sys_platform": platform})}
    config = bc.platform_config(platform)
    assert chosen == {"onnxruntime-gpu" if config.cuda_provider else "onnxruntime"}


def test_platform_configs():
    linux, windows, mac = (bc.platform_config(p) for p in ("linux", "win32", "darwin"))
    assert linux.console and linux.linux_desktop and linux.icon_suffix is None
    # Windows: the CLI prints from a terminal; a double click hides the console.
    assert windows.console and windows.hide_console == "hide-early" and windows.icon_suffix == ".ico"
    assert mac.macos_bundle and not mac.console and mac.icon_suffix == ".icns"
    assert not (windows.linux_desktop or mac.linux_desktop)


@pytest.mark.parametrize("name, system_only", [
    ("libcuda.so.1", True),
    ("libcudart.so.13", True),
    ("libcublasLt.so.13", True),
    ("libcudnn_ops.so.9", True),
    ("libnvinfer.so.10", True),
    ("cudnn64_9.dll", True),
    ("libstdc++.so.6", True),
    ("libgcc_s.so.1", True),
    ("onnxruntime/capi/libonnxruntime_providers_cuda.so", False),
    ("onnxruntime/capi/libonnxruntime_providers_tensorrt.so", False),
    ("PySide6/Qt/lib/libQt6Core.so.6", False),
])
def test_cuda_and_cxx_runtimes_are_left_to_the_system(name, system_only):
    assert bc.is_system_only_library(name) is system_only


def test_prune_binaries_drops_what_only_left_out_plugins_needed():
    gtk_theme = bc.QT_PLUGINS_LEFT_OUT[0]
    binaries = [
        (gtk_theme, "/qt/gtk3.so", "BINARY"),
        ("PySide6/Qt/lib/libQt6Gui.so.6", "/qt/gui.so", "BINARY"),
        ("onnxruntime/capi/libonnxruntime_providers_cuda.so", "/ort/cuda.so", "BINARY"),
        ("_ssl.cpython-311-x86_64-linux-gnu.so", "/py/_ssl.so", "EXTENSION"),
        ("libpython3.11.so.1.0", "/py/libpython.so", "BINARY"),
        ("libgtk-3.so.0", "/sys/gtk.so", "BINARY"),
        ("libcairo.so.2", "/sys/cairo.so", "BINARY"),
        ("libpixman-1.so.0", "/sys/pixman.so", "BINARY"),
        ("libglib-2.0.so.0", "/sys/glib.so", "BINARY"),
        ("libssl.so.3", "/sys/ssl.so", "BINARY"),
        ("libcudart.so.13", "/sys/cudart.so", "BINARY"),
    ]
    needs = {
        "/qt/gtk3.so": ["libgtk-3.so.0", "libcairo.so.2", "libglib-2.0.so.0"],
        "/sys/cairo.so": ["libpixman-1.so.0"],
        "/sys/gtk.so": ["libglib-2.0.so.0", "libcairo.so.2"],
        "/qt/gui.so": ["libglib-2.0.so.0"],
        "/ort/cuda.so": ["libcudart.so.13"],
        "/py/_ssl.so": ["libssl.so.3"],
    }
    kept, dropped = bc.prune_binaries(binaries, lambda source: needs.get(source, []))
    kept_names = {Path(dest).name for dest, _source, _kind in kept}
    assert kept_names == {"libQt6Gui.so.6", "libonnxruntime_providers_cuda.so",
                          "_ssl.cpython-311-x86_64-linux-gnu.so", "libpython3.11.so.1.0",
                          "libglib-2.0.so.0", "libssl.so.3"}
    assert len(kept) + len(dropped) == len(binaries)
    # Without dependency information only the named exclusions go.
    kept, dropped = bc.prune_binaries(binaries)
    assert {Path(d).name for d, _s, _k in dropped} == {"libqgtk3.so", "libcudart.so.13"}


def test_pyqtgraph_filter_skips_examples_and_opengl():
    assert bc.keep_pyqtgraph_module("pyqtgraph.graphicsItems.ViewBox.axisCtrlTemplate_pyside6")
    assert bc.keep_pyqtgraph_module("pyqtgraph.exporters.ImageExporter")
    assert not bc.keep_pyqtgraph_module("pyqtgraph.examples")
    assert not bc.keep_pyqtgraph_module("pyqtgraph.opengl.items.GLMeshItem")
    assert bc.keep_pyqtgraph_module("pyqtgraph.openglish")  # a prefix is not a parent package


def test_app_version_is_medviewers():
    assert bc.app_version() == medviewer.__version__


# -- the spec, run against a stand-in for PyInstaller ---------------------------------------


class _Recorder:
    """Stands in for one PyInstaller build class; records each construction."""

    def __init__(self, calls: list, kind: str):
        self.calls, self.kind = calls, kind

    def __call__(self, *args, **kwargs):
        target = SimpleNamespace(kind=self.kind, args=args, kwargs=kwargs, pure=[], scripts=[],
                                 binaries=[("PySide6/Qt/lib/libQt6Core.so.6", "/qt/core.so",
                                            "BINARY"),
                                           ("libcuda.so.1", "/sys/libcuda.so.1", "BINARY")],
                                 datas=[])
        self.calls.append(target)
        return target


# The real platform_config, kept before any test monkeypatches the module attribute.
_REAL_PLATFORM_CONFIG = bc.platform_config


def _run_spec(tmp_path, monkeypatch, platform: str) -> dict:
    """Execute packaging/medviewer.spec as PyInstaller would, for ``platform``; return the calls."""
    hooks = ModuleType("PyInstaller.utils.hooks")
    hook_calls: list = []

    def collect_submodules(package, filter=None):
        hook_calls.append(("collect_submodules", package, filter))
        return [f"{package}.sub"]

    def collect_data_files(package):
        hook_calls.append(("collect_data_files", package))
        return [(f"/src/{package}/data.txt", package)]

    def copy_metadata(name, recursive=False):
        hook_calls.append(("copy_metadata", name, recursive))
        return [(f"/site/{name}.dist-info", f"{name}.dist-info")]

    hooks.collect_submodules = collect_submodules
    hooks.collect_data_files = collect_data_files
    hooks.copy_metadata = copy_metadata
    bindepend = ModuleType("PyInstaller.depend.bindepend")
    bindepend.get_imports = lambda source: set()
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks)
    monkeypatch.setitem(sys.modules, "PyInstaller.depend.bindepend", bindepend)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the spec prepends its folder
    monkeypatch.setattr(bc, "platform_config", lambda _platform: _REAL_PLATFORM_CONFIG(platform))

    calls: list = []
    namespace = {name: _Recorder(calls, name)
                 for name in ("Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE")}
    namespace.update(SPECPATH=str(PACKAGING), workpath=str(tmp_path / "build"),
                     DISTPATH=str(tmp_path / "dist"), __name__="__main__")
    spec = PACKAGING / "medviewer.spec"
    exec(compile(spec.read_text(encoding="utf-8"), str(spec), "exec"), namespace)  # noqa: S102
    by_kind = {}
    for call in calls:
        by_kind.setdefault(call.kind, []).append(call)
    return {"calls": by_kind, "hooks": hook_calls, "namespace": namespace}


@pytest.mark.gui  # renders the icons with QtSvg
@pytest.mark.parametrize("platform", ["linux", "win32", "darwin"])
def test_spec_builds_the_app_from_bundle_contents(tmp_path, monkeypatch, platform):
    pytest.importorskip("PySide6.QtSvg")
    run = _run_spec(tmp_path, monkeypatch, platform)
    (analysis,) = run["calls"]["Analysis"]
    assert analysis.args[0] == [str(bc.ENTRY_SCRIPT)]
    assert analysis.kwargs["excludes"] == bc.EXCLUDED_MODULES
    hidden = analysis.kwargs["hiddenimports"]
    assert {"medviewer.sub", "pyqtgraph.sub", bc.PROBE_MODULE, *bc.PLUGIN_MODULES} <= set(hidden)
    datas = analysis.kwargs["datas"]
    assert (str(bc.DEMO_BUNDLE_SOURCE), bc.DEMO_BUNDLE_TARGET) in datas
    assert ("collect_data_files", "medviewer") in run["hooks"]
    assert ("copy_metadata", "medviewer", True) in run["hooks"]
    assert {("copy_metadata", name, True) for name in bc.EXTRA_DISTRIBUTIONS} <= set(run["hooks"])
    pyqtgraph_filter = next(h[2] for h in run["hooks"] if h[:2] == ("collect_submodules", "pyqtgraph"))
    assert pyqtgraph_filter is bc.keep_pyqtgraph_module
    # The NVIDIA driver never ships, on any platform.
    assert [entry[0] for entry in analysis.binaries] == ["PySide6/Qt/lib/libQt6Core.so.6"]

    (exe,) = run["calls"]["EXE"]
    config = _REAL_PLATFORM_CONFIG(platform)
    assert exe.kwargs["name"] == bc.APP_NAME
    assert exe.kwargs["console"] is config.console
    assert exe.kwargs["exclude_binaries"] is True  # onedir
    icon = exe.kwargs["icon"]
    if config.icon_suffix:
        assert icon.endswith(config.icon_suffix) and Path(icon).stat().st_size > 0
    else:
        assert icon is None
    (collect,) = run["calls"]["COLLECT"]
    assert collect.kwargs["name"] == bc.APP_NAME

    bundles = run["calls"].get("BUNDLE", [])
    app_folder = tmp_path / "dist" / bc.APP_NAME
    if platform == "darwin":
        (bundle,) = bundles
        assert bundle.kwargs["bundle_identifier"] == bc.BUNDLE_IDENTIFIER
        assert bundle.kwargs["version"] == medviewer.__version__
        assert bundle.kwargs["icon"].endswith(".icns")
    else:
        assert not bundles
    assert (app_folder / "install.sh").is_file() is (platform == "linux")


# -- icons, desktop entry, install script ---------------------------------------------------


@pytest.mark.gui
def test_icons_are_rendered_at_every_size(tmp_path):
    pytest.importorskip("PySide6.QtSvg")
    from icons import ICO_SIZES, PNG_SIZES, make_icons
    from PIL import Image

    icons = make_icons(bc.ICON_SOURCE, tmp_path)
    for size, path in icons.pngs.items():
        with Image.open(path) as image:
            assert image.size == (size, size)
            # The SVG's dark rounded square: the centre pixel is opaque, a corner transparent.
            rgba = image.convert("RGBA")
            assert rgba.getpixel((size // 2, size // 2))[3] == 255
            assert rgba.getpixel((0, 0))[3] < 128
    assert sorted(icons.pngs) == sorted(PNG_SIZES)
    with Image.open(icons.ico) as ico:
        assert set(ico.info["sizes"]) == {(s, s) for s in ICO_SIZES}
    with Image.open(icons.icns) as icns:
        assert icns.size[0] >= 512


def _desktop_entry(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return dict(parser["Desktop Entry"])


def test_desktop_entry_runs_medviewer_with_the_installed_icon():
    entry = _desktop_entry(bc.DESKTOP_ENTRY)
    assert entry["Type"] == "Application"
    assert entry["Icon"] == bc.ICON_NAME
    assert {"MedicalSoftware", "Science"} & set(entry["Categories"].split(";"))
    # The CLI takes no file arguments, so the entry must not pass any (%f, %F, %u, %U).
    assert entry["Exec"] == "medviewer"
    # install.sh rewrites exactly this Exec line to the installed executable.
    script = bc.INSTALL_SCRIPT.read_text(encoding="utf-8")
    pattern = re.search(r"s\|(\^Exec=[^|]+)\|", script).group(1)
    assert re.match(pattern, f"Exec={entry['Exec']}")


def test_desktop_entry_passes_desktop_file_validate():
    validator = shutil.which("desktop-file-validate")
    if validator is None:
        pytest.skip("desktop-file-validate is not installed (desktop-file-utils)")
    result = subprocess.run([validator, str(bc.DESKTOP_ENTRY)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def _fake_app_folder(root: Path) -> Path:
    """An app folder laid out as the spec leaves it, with a stub executable."""
    app = root / bc.APP_NAME
    app.mkdir(parents=True)
    exe = app / bc.APP_NAME
    exe.write_text("#!/bin/sh\necho 'medviewer stub'\n")
    exe.chmod(0o755)
    png = root / "icon.png"
    png.write_bytes(b"png")
    bc.add_linux_share(app, {16: png, 256: png}, bc.ICON_SOURCE)
    return app


@needs_sh
def test_install_script_installs_menu_entry_icons_and_command(tmp_path):
    app = _fake_app_folder(tmp_path / "build")
    prefix = tmp_path / "prefix with space"
    for _ in range(2):  # installing again replaces the earlier install
        result = subprocess.run(["sh", str(app / "install.sh"), str(prefix)], capture_output=True,
                                text=True, check=False)
        assert result.returncode == 0, result.stderr
    installed = prefix / "opt" / bc.APP_NAME
    assert (installed / bc.APP_NAME).is_file()
    for icon in ("16x16/apps/medviewer.png", "256x256/apps/medviewer.png",
                 "scalable/apps/medviewer.svg"):
        assert (prefix / "share" / "icons" / "hicolor" / icon).is_file(), icon
    entry = _desktop_entry(prefix / "share" / "applications" / "medviewer.desktop")
    assert entry["Exec"] == f'"{installed / bc.APP_NAME}"'
    assert entry["Icon"] == bc.ICON_NAME
    command = subprocess.run([str(prefix / "bin" / "medviewer")], capture_output=True, text=True,
                             check=False)
    assert command.stdout.strip() == "medviewer stub"


@needs_sh
def test_install_script_never_replaces_a_foreign_folder(tmp_path):
    app = _fake_app_folder(tmp_path / "build")
    foreign = tmp_path / "prefix" / "opt" / bc.APP_NAME
    foreign.mkdir(parents=True)
    (foreign / "precious.txt").write_text("keep me")
    result = subprocess.run(["sh", str(app / "install.sh"), str(tmp_path / "prefix")],
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert (foreign / "precious.txt").read_text() == "keep me"


# -- the bundle probe and its checker -------------------------------------------------------


def _good_report() -> dict:
    return {
        "frozen": True,
        "distributions": {name: "1.0" for name in ("medviewer", "pydicom", "onnx")},
        "entry_points": {"pylibjpeg.pixel_data_decoders": [
            "1.2.840.10008.1.2.4.70 = libjpeg:decode_pixel_data",
            "1.2.840.10008.1.2.4.90 = openjpeg:decode_pixel_data",
            "1.2.840.10008.1.2.5 = rle:decode_pixel_data"]},
        "pydicom_decoders": {syntax: [plugin] for syntax, plugin
                             in smoke_check.REQUIRED_DECODERS.items()},
        "onnxruntime": {"providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]},
        "qt": {"plugins": {"platforms": ["libqoffscreen.so", "libqxcb.so"]},
               "image_formats": ["png", "svg"]},
        "top_level_modules": ["medviewer", "numpy", "pydicom"],
    }


@pytest.mark.parametrize("break_it, problem", [
    (lambda r: r["distributions"].pop("onnx"), "metadata missing for: onnx"),
    (lambda r: r["entry_points"]["pylibjpeg.pixel_data_decoders"].pop(1), "openjpeg"),
    (lambda r: r["pydicom_decoders"]["RLE Lossless"].clear(), "RLE Lossless"),
    (lambda r: r["onnxruntime"]["providers"].remove("CUDAExecutionProvider"), "CUDA"),
    (lambda r: r["qt"]["plugins"]["platforms"].remove("libqxcb.so"), "libqxcb.so"),
    (lambda r: r["qt"]["image_formats"].remove("svg"), "SVG"),
    (lambda r: r["top_level_modules"].append("torch"), "excluded modules present: torch"),
    (lambda r: r.update(qt={"error": "ImportError: no Qt"}), "qt: ImportError"),
])
def test_probe_checker_names_each_problem(break_it, problem):
    expected = {"medviewer", "pydicom", "onnx"}
    report = _good_report()
    assert smoke_check.check_probe(report, expected, platform="linux") == []
    break_it(report)
    problems = smoke_check.check_probe(report, expected, platform="linux")
    assert len(problems) == 1 and problem in problems[0], problems


def test_probe_checker_expects_no_cuda_provider_on_macos():
    report = _good_report()
    report["onnxruntime"]["providers"] = ["CPUExecutionProvider"]
    assert smoke_check.check_probe(report, {"medviewer"}, platform="darwin") == []


@pytest.mark.gui
def test_probe_reports_this_environment():
    """The probe's own code works against the installed libraries (a build runs it frozen)."""
    import medviewer_bundle_probe

    report = medviewer_bundle_probe.report()
    assert report["frozen"] is False
    assert not [k for k, v in report.items() if isinstance(v, dict) and "error" in v]
    assert smoke_check.normalise("PySide6_Essentials") in {
        smoke_check.normalise(n) for n in report["distributions"]}
    problems = smoke_check.check_probe(report, smoke_check.expected_distributions())
    # The development environment has the training stack; the bundle must not.
    assert all(p.startswith("excluded modules present") for p in problems), problems


def _stub_app(tmp_path: Path, script: str) -> smoke_check.Context:
    exe = tmp_path / bc.APP_NAME
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(0o755)
    return smoke_check.Context(app=tmp_path, exe=exe, work=tmp_path, require_gui=False,
                               env=smoke_check.clean_environment(tmp_path))


@needs_sh
@pytest.mark.parametrize("require_gui, status", [(False, "n/a"), (True, "FAIL")])
def test_a_build_without_the_gui_smoke_test_fails_only_when_required(tmp_path, require_gui,
                                                                      status):
    ctx = _stub_app(tmp_path, "echo \"medviewer: error: argument COMMAND: invalid choice: "
                              "'smoke-test'\" >&2\nexit 2\n")
    ctx.require_gui = require_gui
    (result,) = smoke_check.run_steps(ctx, [("GUI", smoke_check.step_gui)])
    assert (result.status, result.detail) == (status, "this build has no `smoke-test` subcommand")


@needs_sh
def test_a_failing_gui_smoke_test_fails_the_step(tmp_path):
    ctx = _stub_app(tmp_path, 'if [ "$2" = --help ]; then exit 0; fi\n'
                              'echo \'{"ok": false, "error": "timed out"}\'\nexit 1\n')
    (result,) = smoke_check.run_steps(ctx, [("GUI", smoke_check.step_gui)])
    assert result.status == "FAIL" and "timed out" in result.detail


def test_smoke_environment_is_a_fresh_user(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    monkeypatch.setenv("MEDVIEWER_MODELS_DIR", "/models")
    env = smoke_check.clean_environment(tmp_path)
    assert "PYTHONPATH" not in env and "MEDVIEWER_MODELS_DIR" not in env
    assert env["MEDVIEWER_DATA_DIR"] == str(tmp_path / "data")
    assert env["MEDVIEWER_CONFIG_DIR"] == str(tmp_path / "config")
    assert env["QT_QPA_PLATFORM"] == "offscreen"


# -- the real build (minutes): opt in with MEDVIEWER_TEST_BUILD=1 ---------------------------


@pytest.mark.skipif(not os.environ.get("MEDVIEWER_TEST_BUILD"),
                    reason="builds the app with PyInstaller (about a minute); "
                           "set MEDVIEWER_TEST_BUILD=1")
def test_build_and_smoke_check():
    pytest.importorskip("PyInstaller")
    import build_app

    assert build_app.main(["--smoke"]) == 0

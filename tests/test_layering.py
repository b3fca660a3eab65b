"""Layering: Qt only under medviewer.qt, no torch in the app, imports point downward, a light CLI."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "medviewer"
HEAVY_FOR_CORE = ("PySide6", "shiboken6", "pyqtgraph", "torch", "timm", "torchvision")
HEAVY_FOR_CLI = HEAVY_FOR_CORE + ("onnxruntime", "faiss", "scipy")
# Packages that orchestrate or present; domain packages must not import them.
UPPER = ("medviewer.qt", "medviewer.cli", "medviewer.services")
# Entry points sit above every layer and may import any of them.
ENTRY_POINTS = ("medviewer", "medviewer.__main__", "medviewer.launcher")


def _python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def _modules(exclude: tuple[str, ...] = ("medviewer.qt",)) -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if not name.startswith(exclude) and name != "medviewer.__main__":  # runs the app
            names.append(name)
    return names


def test_import_linter_contracts_pass():
    exe = Path(sys.executable).with_name("lint-imports")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "importlinter.cli"]
    result = subprocess.run([*command, "--no-cache"], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "0 broken" in report and "KEPT" in report


def test_core_modules_load_neither_qt_nor_torch():
    modules = _modules()
    assert "medviewer.dicom.scan" in modules and "medviewer.store.library" in modules
    code = f"""
import importlib, json, sys, traceback
failed = {{}}
for name in {modules!r}:
    try:
        importlib.import_module(name)
    except Exception:
        failed[name] = traceback.format_exc(limit=3)
heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY_FOR_CORE!r})
print(json.dumps({{"failed": failed, "heavy": heavy}}))
"""
    result = _python(code)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert not data["failed"], "modules that do not import:\n" + "\n".join(
        f"{k}:\n{v}" for k, v in data["failed"].items())
    assert not data["heavy"], f"core modules pulled in {data['heavy'][:10]}"


def test_cli_entry_point_stays_light():
    code = f"""
import json, sys
import medviewer.cli.main
after_import = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY_FOR_CLI!r})
print(json.dumps(after_import))
"""
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_building_the_cli_parser_stays_light():
    """`medviewer import ...` must not pay for Qt, ONNX Runtime or FAISS before it starts."""
    code = f"""
import json, sys
from medviewer.cli.main import build_parser
build_parser()
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY_FOR_CLI!r})))
"""
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def _imported_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("module", [m for m in _modules(UPPER) if m not in ENTRY_POINTS])
def test_domain_modules_do_not_import_upper_layers(module):
    """Domain packages (dicom, display, store, ...) never reach up into services, cli or qt."""
    parts = module.split(".")
    path = REPO.joinpath(*parts).with_suffix(".py")
    if not path.exists():
        path = REPO.joinpath(*parts, "__init__.py")
    upward = sorted(n for n in _imported_names(path) if n.startswith(UPPER))
    assert not upward, f"{module} imports {upward}"

"""Layering: Qt only under medviewer.qt, no torch in the app, imports point downward, SQL in stores."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "medviewer"
HEAVY_FOR_CORE = ("PySide6", "shiboken6", "pyqtgraph", "torch", "timm", "torchvision")
HEAVY_FOR_CLI = HEAVY_FOR_CORE + ("onnxruntime", "faiss", "scipy")


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


def test_the_layers_contract_places_every_package():
    """One exhaustive layers contract over medviewer: a package nobody placed fails the lint."""
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    layers = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    assert len(layers) == 1 and layers[0]["exhaustive"] is True
    assert layers[0]["containers"] == ["medviewer"]
    placed = {name.strip() for layer in layers[0]["layers"] for name in layer.split("|")}
    children = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
                if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert children == placed


# SQL statements as they begin in a string literal (keywords upper case, as the code writes them).
SQL_START = ("SELECT ", "INSERT ", "UPDATE ", "DELETE ", "CREATE ", "DROP ", "ALTER ", "PRAGMA ",
             "BEGIN", "COMMIT", "ROLLBACK", "WITH ")
# Store modules: the library's (medviewer/store/) and a package's own store.py.  The reading
# package's schema text (study/tables.py) is one too.
SQL_HOMES = ("medviewer/store/", "/store.py", "medviewer/study/tables.py")


def _sql_literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.lstrip()
            if text.startswith(SQL_START) and (len(text) < 8 or " " in text):
                found.append((node.lineno, text[:60]))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") in (
                "execute", "executemany", "executescript"):
            found.append((node.lineno, f".{node.func.attr}(...)"))
    return found


def test_sql_lives_only_in_store_modules():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if any(home in rel for home in SQL_HOMES):
            continue
        offenders += [f"{rel}:{line}: {text}" for line, text in _sql_literals(path)]
    assert not offenders, "SQL outside store modules:\n" + "\n".join(offenders)

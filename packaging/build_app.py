"""Build the self-contained MedViewer application folder with PyInstaller.

Run::

    uv run --extra package python packaging/build_app.py [--clean] [--smoke] [--require-gui]

It runs PyInstaller on ``packaging/medviewer.spec`` (output in
``packaging/dist/MedViewer``, work files and the full log in
``packaging/build``), prints the build time, the folder size and its largest
parts, writes them to ``packaging/build/build_summary.json``, and with
``--smoke`` runs ``packaging/smoke_check.py`` on the result.  Exits non-zero
when the build or the smoke check fails.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import subprocess
import sys
import time
from pathlib import Path

import bundle_contents as bc

SPEC = bc.PACKAGING_DIR / "medviewer.spec"
DIST = bc.PACKAGING_DIR / "dist"
WORK = bc.PACKAGING_DIR / "build"
LOG = WORK / "pyinstaller.log"
SUMMARY = WORK / "build_summary.json"
MIB = 1024 * 1024


def missing_prerequisites() -> list[str]:
    """Return what the build needs but this environment lacks, as instructions."""
    problems = []
    try:
        importlib.metadata.version("pyinstaller")
    except importlib.metadata.PackageNotFoundError:
        problems.append("PyInstaller: run with `uv run --extra package ...`")
    for name in bc.EXTRA_DISTRIBUTIONS:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{name}: the bundle ships it (see bundle_contents.EXTRA_DISTRIBUTIONS);"
                            f" add `--extra test` to the uv command")
    return problems


def run_pyinstaller(clean: bool) -> int:
    """Run PyInstaller on the spec, its output into :data:`LOG`; return its exit code."""
    WORK.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "PyInstaller", str(SPEC), "--noconfirm",
               "--distpath", str(DIST), "--workpath", str(WORK)]
    if clean:
        command.append("--clean")
    with LOG.open("w", encoding="utf-8") as log:
        return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=bc.REPO_ROOT,
                              check=False).returncode


def tree_size(path: Path) -> int:
    """Return the bytes of the files under ``path`` (links not followed)."""
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def largest_parts(app: Path, count: int = 12) -> list[tuple[str, int]]:
    """Return the largest top-level items of the app folder and its contents directory."""
    internal = app / "_internal"
    items = [p for p in app.iterdir() if p != internal]
    if internal.is_dir():
        items += list(internal.iterdir())
    sizes = [(str(p.relative_to(app)), tree_size(p)) for p in items]
    return sorted(sizes, key=lambda item: item[1], reverse=True)[:count]


def largest_files(app: Path, count: int = 8) -> list[tuple[str, int]]:
    """Return the largest single files of the app folder."""
    files = [p for p in app.rglob("*") if p.is_file() and not p.is_symlink()]
    sizes = [(str(p.relative_to(app)), p.stat().st_size) for p in files]
    return sorted(sizes, key=lambda item: item[1], reverse=True)[:count]


def report(app: Path, seconds: float) -> dict:
    """Print and return the build's time, size and largest parts."""
    summary = {
        "build_seconds": round(seconds, 1),
        "size_mib": round(tree_size(app) / MIB, 1),
        "files": sum(1 for p in app.rglob("*") if p.is_file()),
        "largest_parts_mib": {name: round(size / MIB, 1) for name, size in largest_parts(app)},
        "largest_files_mib": {name: round(size / MIB, 1) for name, size in largest_files(app)},
    }
    print(f"Built {app} in {summary['build_seconds']:.0f} s: "
          f"{summary['size_mib']:.0f} MiB in {summary['files']} files")
    for title, key in (("Largest parts", "largest_parts_mib"), ("Largest files", "largest_files_mib")):
        print(f"{title}:")
        for name, mib in summary[key].items():
            print(f"  {mib:8.1f} MiB  {name}")
    return summary


def main(argv: list[str] | None = None) -> int:
    """Build the app folder (and smoke-check it); return the exit code."""
    parser = argparse.ArgumentParser(description="Build the MedViewer application folder.")
    parser.add_argument("--clean", action="store_true", help="discard PyInstaller's cache first")
    parser.add_argument("--smoke", action="store_true", help="run the smoke check afterwards")
    parser.add_argument("--require-gui", action="store_true",
                        help="smoke check: fail when the build has no `smoke-test` subcommand")
    args = parser.parse_args(argv)

    problems = missing_prerequisites()
    if problems:
        print("Cannot build; missing:\n  " + "\n  ".join(problems))
        return 2
    print(f"PyInstaller {importlib.metadata.version('pyinstaller')} on {SPEC.name} "
          f"(log: {LOG.relative_to(bc.REPO_ROOT)}) ...", flush=True)
    started = time.perf_counter()
    code = run_pyinstaller(args.clean)
    seconds = time.perf_counter() - started
    if code != 0:
        tail = LOG.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
        print("\n".join(tail))
        print(f"PyInstaller failed (exit {code}) after {seconds:.0f} s; full log in {LOG}")
        return 1
    app = DIST / bc.APP_NAME
    summary = report(app, seconds)
    SUMMARY.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if not args.smoke:
        return 0
    import smoke_check

    return smoke_check.main(["--app", str(app)] + (["--require-gui"] if args.require_gui else []))


if __name__ == "__main__":
    sys.exit(main())

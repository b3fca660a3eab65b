"""Run the built MedViewer folder end to end, headless, and say what works.

Every command runs the BUILT executable, never the source checkout, with a
fresh temporary data and config folder, no Python environment variables and
Qt's offscreen platform.  The steps: cold start (``--help``), ``--version``,
the bundle probe (component metadata, pylibjpeg entry points, decoders,
execution providers, Qt plugins, no torch), ``model check`` on the bundled
demo model, ``synthetic`` -> ``import`` -> ``info`` -> ``classify`` ->
``index build`` -> ``search``, decoding of compressed DICOM samples, the GUI
``smoke-test`` when the build has it (offscreen, and on X11 under Xvfb where
``xvfb-run`` exists), and ``install.sh`` into a temporary prefix (Linux).

Run::

    uv run --extra package python packaging/smoke_check.py [--app packaging/dist/MedViewer]
                                                           [--require-gui] [--keep]

Exits non-zero when a step fails.  Without ``--require-gui`` a build that has
no ``smoke-test`` subcommand reports it as not available instead of failing.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import bundle_contents as bc

DEFAULT_APP = bc.PACKAGING_DIR / "dist" / bc.APP_NAME

# Compressed samples that ship inside pydicom, one or two per codec.  The JPEG
# Lossless and 12-bit JPEG Extended files can only be decoded by pylibjpeg-libjpeg
# here (no GDCM, Pillow reads 8-bit JPEG only): they fail when the pylibjpeg entry
# points are missing from the bundle.
CODEC_SAMPLES = {
    "SC_rgb_jpeg_gdcm.dcm": "JPEG Lossless SV1 (pylibjpeg-libjpeg)",
    "SC_rgb_jpeg_dcmtk.dcm": "JPEG Baseline",
    "JPGExtended.dcm": "JPEG Extended 12-bit (pylibjpeg-libjpeg)",
    "JPEG2000.dcm": "JPEG 2000",
    "MR_small_jp2klossless.dcm": "JPEG 2000 lossless",
    "MR_small_jpeg_ls_lossless.dcm": "JPEG-LS lossless",
    "JPEGLSNearLossless_16.dcm": "JPEG-LS near-lossless",
    "MR_small_RLE.dcm": "RLE",
}

# Decoder plugins the bundle must offer, by transfer syntax name (probe["pydicom_decoders"]).
REQUIRED_DECODERS = {
    "JPEG Lossless, Non-Hierarchical (Process 14)": "pylibjpeg",
    "JPEG-LS Lossless Image Compression": "pyjpegls",
    "JPEG 2000 Image Compression": "pylibjpeg",
    "High-Throughput JPEG 2000 Image Compression": "pylibjpeg",
    "RLE Lossless": "pylibjpeg",
}

# Modules the pylibjpeg entry points must name (probe["entry_points"]).
PYLIBJPEG_PLUGINS = ("libjpeg", "openjpeg", "rle")


class StepFailed(Exception):
    """A smoke step did not do what it should; the message says what happened."""


class Skipped(Exception):
    """This machine lacks a tool the step needs; the step says so instead of failing."""


class NotAvailable(Skipped):
    """The step's feature is not in this build (a failure with ``--require-gui``)."""


@dataclass
class StepResult:
    """The outcome of one step: ``ok``, ``FAIL`` or ``n/a`` (not in this build)."""

    name: str
    status: str
    seconds: float
    detail: str


@dataclass
class Context:
    """What the steps share: the executable, the work folder, what earlier steps made."""

    app: Path
    exe: Path
    work: Path
    env: dict[str, str]
    require_gui: bool
    bundle: Path | None = None
    library: Path | None = None
    radiograph: Path | None = None
    last_seconds: float = 0.0  # wall time of the latest command

    def run(self, *args: str, timeout: float = 180.0, env: dict | None = None,
            check: bool = True, wrapper: tuple = ()) -> subprocess.CompletedProcess:
        """Run the built executable with ``args`` (behind ``wrapper``, e.g. xvfb-run).

        Raises StepFailed on a non-zero exit when ``check`` is set.
        """
        started = time.perf_counter()
        try:
            proc = subprocess.run([*wrapper, str(self.exe), *args], cwd=self.work,
                                  env=env or self.env, capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise StepFailed(f"`{' '.join(args)}` did not finish in {timeout:.0f} s") from exc
        self.last_seconds = time.perf_counter() - started
        if check and proc.returncode != 0:
            raise StepFailed(f"`{' '.join(args)}` exited {proc.returncode}: "
                             f"{_tail(proc.stderr or proc.stdout)}")
        return proc

    def run_json(self, *args: str, timeout: float = 180.0) -> dict:
        """Run with ``args`` (which include ``--json``) and parse stdout."""
        proc = self.run(*args, timeout=timeout)
        try:
            return json.loads(proc.stdout)
        except json.JSONDecodeError as exc:
            raise StepFailed(f"`{' '.join(args)}` printed no JSON: {_tail(proc.stdout)}") from exc


def _tail(text: str, lines: int = 6) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def _need(value, step: str):
    """Return ``value``, or fail because the earlier ``step`` that makes it failed."""
    if value is None:
        raise StepFailed(f"skipped: needs the {step} step")
    return value


def clean_environment(work: Path) -> dict[str, str]:
    """Return the environment of a fresh user: private folders, offscreen Qt, no Python paths."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PYTHON", "MEDVIEWER_", "QT_")) and key != "VIRTUAL_ENV"}
    env.update(MEDVIEWER_DATA_DIR=str(work / "data"), MEDVIEWER_CONFIG_DIR=str(work / "config"),
               QT_QPA_PLATFORM="offscreen")
    return env


def find_demo_bundle(app: Path) -> Path:
    """Return the demo model bundle inside a built app folder."""
    hits = sorted(app.rglob(f"{bc.DEMO_BUNDLE_TARGET}/metadata.json"))
    if not hits:
        raise StepFailed(f"no {bc.DEMO_BUNDLE_TARGET} in {app}")
    return hits[0].parent


def normalise(name: str) -> str:
    """Return a distribution name in its canonical form (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def expected_distributions(root: str = "medviewer") -> set[str]:
    """Return the distributions whose metadata the bundle must carry (canonical names).

    ``root``'s runtime requirements, recursively, as this environment
    resolves them (extras and markers of other platforms left out), plus
    :data:`bundle_contents.EXTRA_DISTRIBUTIONS`; this is what the spec's
    ``copy_metadata(..., recursive=True)`` collects.
    """
    from packaging.requirements import Requirement

    todo = [root, *bc.EXTRA_DISTRIBUTIONS]
    found: set[str] = set()
    while todo:
        name = normalise(todo.pop())
        if name in found:
            continue
        found.add(name)
        for line in importlib.metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return found


def _distribution_problems(found: dict, expected: set[str], _config) -> list[str]:
    missing = sorted(expected - {normalise(name) for name in found})
    return [f"metadata missing for: {', '.join(missing)}"] if missing else []


def _entry_point_problems(groups: dict, _expected, _config) -> list[str]:
    decoders = groups.get("pylibjpeg.pixel_data_decoders", [])
    return [f"no pylibjpeg.pixel_data_decoders entry point of {plugin}"
            for plugin in PYLIBJPEG_PLUGINS
            if not any(f"= {plugin}:" in entry for entry in decoders)]


def _decoder_problems(available: dict, _expected, _config) -> list[str]:
    return [f"pydicom cannot use {plugin} for {syntax}"
            for syntax, plugin in REQUIRED_DECODERS.items() if plugin not in available.get(syntax, [])]


def _provider_problems(onnxruntime: dict, _expected, config) -> list[str]:
    wanted = ["CPUExecutionProvider"]
    if config.cuda_provider:  # the provider library must ship, even where CUDA is absent
        wanted.append("CUDAExecutionProvider")
    return [f"ONNX Runtime lacks {p}" for p in wanted if p not in onnxruntime.get("providers", [])]


def _qt_problems(qt: dict, _expected, config) -> list[str]:
    problems = []
    if config.linux_desktop:
        platforms = qt.get("plugins", {}).get("platforms", [])
        problems += [f"Qt platform plugin {p} missing" for p in ("libqoffscreen.so", "libqxcb.so")
                     if p not in platforms]
    if "svg" not in qt.get("image_formats", []):
        problems.append("Qt cannot read SVG (imageformats/qsvg missing): no window icon")
    return problems


def _module_problems(modules: list, _expected, _config) -> list[str]:
    leaked = sorted(set(modules) & set(bc.EXCLUDED_MODULES))
    return [f"excluded modules present: {', '.join(leaked)}"] if leaked else []


PROBE_CHECKS = {
    "distributions": _distribution_problems,
    "entry_points": _entry_point_problems,
    "pydicom_decoders": _decoder_problems,
    "onnxruntime": _provider_problems,
    "qt": _qt_problems,
    "top_level_modules": _module_problems,
}


def check_probe(report: dict, expected: set[str], platform: str = sys.platform) -> list[str]:
    """Return the problems in a bundle probe report (``medviewer_bundle_probe.report()``).

    A section the probe could not produce is one problem (its error), not
    also every check that depends on it.
    """
    config = bc.platform_config(platform)
    problems = []
    for section, check in PROBE_CHECKS.items():
        value = report.get(section)
        if value is None:
            problems.append(f"{section}: not in the report")
        elif isinstance(value, dict) and "error" in value:
            problems.append(f"{section}: {value['error']}")
        else:
            problems += check(value, expected, config)
    return problems


# -- steps ----------------------------------------------------------------------------------


def step_cold_start(ctx: Context) -> str:
    times = []
    for _ in range(3):
        proc = ctx.run("--help")
        if "usage: medviewer" not in proc.stdout:
            raise StepFailed(f"--help printed no usage: {_tail(proc.stdout)}")
        times.append(ctx.last_seconds)
    return f"first {times[0]:.2f} s, then {statistics.median(times[1:]):.2f} s"


def step_version(ctx: Context) -> str:
    out = ctx.run("--version").stdout.strip()
    wanted = f"medviewer {bc.app_version()}"
    if out != wanted:
        raise StepFailed(f"printed {out!r}, expected {wanted!r}")
    return out


def step_probe(ctx: Context) -> str:
    env = dict(ctx.env, MEDVIEWER_BUNDLE_PROBE="1")
    proc = ctx.run(env=env, timeout=60)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise StepFailed(f"the probe printed no JSON: {_tail(proc.stdout + proc.stderr)}") from exc
    (ctx.work / "probe.json").write_text(proc.stdout, encoding="utf-8")
    if not report.get("frozen"):
        raise StepFailed("the probe did not run frozen")
    problems = check_probe(report, expected_distributions())
    if problems:
        raise StepFailed("; ".join(problems))
    ort = report["onnxruntime"]
    return (f"{len(report['distributions'])} distributions, onnxruntime {ort['version']} "
            f"({', '.join(p.removesuffix('ExecutionProvider') for p in ort['providers'])}), "
            f"Qt {report['qt']['version']}")


def step_model_check(ctx: Context) -> str:
    ctx.bundle = find_demo_bundle(ctx.app)
    result = ctx.run_json("model", "check", str(ctx.bundle), "--json")
    if not result.get("ok"):
        raise StepFailed(f"model check says not ok: {result.get('message')}")
    return f"{result.get('provider')}: {result.get('message') or 'ok'}"


def step_synthetic(ctx: Context) -> str:
    result = ctx.run_json("synthetic", "OUT", "--cases", "4", "--seed", "1", "--json")
    radiographs = sorted((ctx.work / "OUT" / "dicom").rglob("0*_*.dcm"))
    if not radiographs:
        raise StepFailed("no radiograph DICOM files written")
    ctx.radiograph = radiographs[0]
    return f"{result['radiographs']} radiographs, {result['ct_series']} CT series"


def step_import(ctx: Context) -> str:
    _need(ctx.radiograph, "synthetic")
    library = ctx.work / "L.sqlite"
    result = ctx.run_json("import", "OUT", "--library", str(library), "--json")
    if result["skipped"] or not result["instances"]:
        raise StepFailed(f"{result['instances']} imported, skipped: {result['skipped']}")
    ctx.library = library
    return f"{result['instances']} instances, {result['library_totals']['cases']} cases"


def step_info(ctx: Context) -> str:
    result = ctx.run_json("info", str(_need(ctx.radiograph, "synthetic")), "--json")
    series = result["series"]
    if len(series) != 1 or result["skipped"]:
        raise StepFailed(f"unexpected info: {result}")
    return f"{series[0]['modality']} {series[0]['size'][0]}x{series[0]['size'][1]}"


def step_classify(ctx: Context) -> str:
    result = ctx.run_json("classify", str(_need(ctx.bundle, "model check")),
                          str(_need(ctx.radiograph, "synthetic")), "--json")
    probabilities = result["results"][0]["probabilities"]
    top = max(probabilities, key=probabilities.get)
    return f"{result['provider']}: {top} {probabilities[top]:.2f}"


def step_index(ctx: Context) -> str:
    result = ctx.run_json("index", "build", "--library", str(_need(ctx.library, "import")),
                          "--model", str(_need(ctx.bundle, "model check")), "--json")
    if not result.get("count"):
        raise StepFailed(f"empty index: {result}")
    return f"{result['kind']} index of {result['count']} cases, dim {result['dim']}"


def step_search(ctx: Context) -> str:
    result = ctx.run_json("search", "--library", str(_need(ctx.library, "import")), "--model",
                          str(_need(ctx.bundle, "model check")), str(ctx.radiograph), "-k", "3",
                          "--json")
    if len(result["nearest"]) != 3:
        raise StepFailed(f"{len(result['nearest'])} results instead of 3")
    return f"top similarity {result['nearest'][0]['similarity']:.3f}"


def step_codecs(ctx: Context) -> str:
    import pydicom

    samples = Path(pydicom.__file__).parent / "data" / "test_files"
    folder = ctx.work / "codecs"
    folder.mkdir()
    for name in CODEC_SAMPLES:
        shutil.copy2(samples / name, folder / name)
    result = ctx.run_json("import", str(folder), "--library", str(ctx.work / "codecs.sqlite"),
                          "--verify", "all", "--json")
    if result["skipped"]:
        raise StepFailed("not decoded: " + "; ".join(
            f"{CODEC_SAMPLES.get(Path(s['path']).name, s['path'])}: {s['detail'] or s['reason']}"
            for s in result["skipped"]))
    return f"{result['instances']} files decoded ({len(CODEC_SAMPLES)} samples, 5 codecs)"


def _require_smoke_test(ctx: Context) -> None:
    """Raise NotAvailable when the build has no ``smoke-test`` subcommand."""
    proc = ctx.run("smoke-test", "--help", check=False)
    if proc.returncode != 0:
        if "invalid choice" in proc.stderr:
            raise NotAvailable("this build has no `smoke-test` subcommand")
        raise StepFailed(f"smoke-test --help exited {proc.returncode}: {_tail(proc.stderr)}")


def _gui_smoke(ctx: Context, name: str, env: dict | None = None, wrapper: tuple = ()) -> str:
    """Run ``smoke-test --json``; return its timings as text."""
    proc = ctx.run("smoke-test", "--json", "--workdir", str(ctx.work / name), timeout=420,
                   check=False, env=env, wrapper=wrapper)
    start = proc.stdout.find("{")
    result = json.loads(proc.stdout[start:]) if start >= 0 else {}
    if proc.returncode != 0 or not result.get("ok"):
        raise StepFailed(f"exit {proc.returncode}: {result.get('error') or _tail(proc.stderr)}")
    timings = {k: v for k, v in result.items() if k.endswith("_s")}
    timings.update({f"step {k}": v for k, v in result.get("steps", {}).items()})
    return ", ".join(f"{k} {v:.2f} s" for k, v in timings.items())


def step_gui(ctx: Context) -> str:
    _require_smoke_test(ctx)
    return _gui_smoke(ctx, "gui")


def step_gui_x11(ctx: Context) -> str:
    # The xcb platform plugin users get on X11, on a virtual display: it needs system
    # libraries (libxcb-*, libGL, fontconfig) that offscreen does not.
    xvfb_run = shutil.which("xvfb-run")
    if xvfb_run is None:
        raise Skipped("xvfb-run is not installed (package xvfb)")
    _require_smoke_test(ctx)
    env = dict(ctx.env, QT_QPA_PLATFORM="xcb")
    return _gui_smoke(ctx, "gui-x11", env=env,
                      wrapper=(xvfb_run, "-a", "-s", "-screen 0 1600x1000x24"))


def step_install(ctx: Context) -> str:
    prefix = ctx.work / "prefix"
    proc = subprocess.run(["sh", str(ctx.app / "install.sh"), str(prefix)], capture_output=True,
                          text=True, env=ctx.env, timeout=300, check=False)
    if proc.returncode != 0:
        raise StepFailed(f"install.sh exited {proc.returncode}: {_tail(proc.stderr)}")
    entry = prefix / "share" / "applications" / "medviewer.desktop"
    icon = prefix / "share" / "icons" / "hicolor" / "256x256" / "apps" / f"{bc.ICON_NAME}.png"
    for path in (entry, icon):
        if not path.is_file():
            raise StepFailed(f"install.sh did not write {path}")
    exec_line = next(line for line in entry.read_text().splitlines() if line.startswith("Exec="))
    installed = prefix / "opt" / bc.APP_NAME / bc.APP_NAME
    if str(installed) not in exec_line:
        raise StepFailed(f"the menu entry runs {exec_line!r}, not {installed}")
    version = subprocess.run([str(prefix / "bin" / "medviewer"), "--version"], env=ctx.env,
                             capture_output=True, text=True, timeout=60, check=False)
    if version.returncode != 0:
        raise StepFailed(f"the installed command failed: {_tail(version.stderr)}")
    validator = shutil.which("desktop-file-validate")
    if validator:
        check = subprocess.run([validator, str(entry)], capture_output=True, text=True,
                               check=False)
        if check.returncode != 0 or check.stdout.strip():
            raise StepFailed(f"desktop-file-validate: {_tail(check.stdout + check.stderr)}")
    validated = "validated" if validator else "desktop-file-validate not installed"
    return f"menu entry, icons, bin/medviewer ({validated})"


STEPS = [
    ("cold start (--help x3)", step_cold_start),
    ("--version", step_version),
    ("bundle probe", step_probe),
    ("model check (demo)", step_model_check),
    ("synthetic", step_synthetic),
    ("import", step_import),
    ("info", step_info),
    ("classify", step_classify),
    ("index build", step_index),
    ("search", step_search),
    ("compressed DICOM", step_codecs),
    ("GUI smoke-test (offscreen)", step_gui),
    ("GUI smoke-test (X11, Xvfb)", step_gui_x11),
]
LINUX_STEPS = [("install.sh", step_install)]


def run_steps(ctx: Context, steps: list) -> list[StepResult]:
    """Run ``(name, step)`` pairs in order; a failed step does not stop the ones that follow."""
    results = []
    for name, step in steps:
        started = time.perf_counter()
        try:
            detail, status = step(ctx), "ok"
        except NotAvailable as exc:
            detail, status = str(exc), "FAIL" if ctx.require_gui else "n/a"
        except Skipped as exc:
            detail, status = str(exc), "n/a"
        except StepFailed as exc:
            detail, status = str(exc), "FAIL"
        except Exception as exc:  # noqa: BLE001 - a bug in a step is a failure, not the end of the run
            detail, status = f"{type(exc).__name__}: {exc}", "FAIL"
        results.append(StepResult(name, status, time.perf_counter() - started, detail))
        print(f"  {status:4} {name} ({results[-1].seconds:.2f} s): {detail}", flush=True)
    return results


def print_table(results: list[StepResult]) -> None:
    """Print the summary table of the steps."""
    width = max(len(r.name) for r in results)
    print(f"\n{'step':<{width}}  status  seconds  detail")
    for r in results:
        detail = r.detail if len(r.detail) <= 110 else r.detail[:107] + "..."
        print(f"{r.name:<{width}}  {r.status:<6}  {r.seconds:7.2f}  {detail}")


def main(argv: list[str] | None = None) -> int:
    """Run the smoke check; return 0 when no step failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", type=Path, default=DEFAULT_APP, help="built app folder")
    parser.add_argument("--require-gui", action="store_true",
                        help="fail when the build has no `smoke-test` subcommand")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    app = args.app.resolve()
    exe = app / (f"{bc.APP_NAME}.exe" if sys.platform == "win32" else bc.APP_NAME)
    if not exe.is_file():
        print(f"smoke_check: no executable at {exe}; build first (packaging/build_app.py)")
        return 2
    work = Path(tempfile.mkdtemp(prefix="medviewer-smoke-"))
    ctx = Context(app=app, exe=exe, work=work, env=clean_environment(work),
                  require_gui=args.require_gui)
    print(f"Smoke check of {exe} (work folder {work})", flush=True)
    steps = STEPS + (LINUX_STEPS if bc.platform_config(sys.platform).linux_desktop else [])
    try:
        results = run_steps(ctx, steps)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print_table(results)
    failed = [r.name for r in results if r.status == "FAIL"]
    passed = sum(r.status == "ok" for r in results)
    print(f"\n{passed} of {len(results)} steps passed, {len(results) - passed - len(failed)} n/a"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

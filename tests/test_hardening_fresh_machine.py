"""A fresh machine: the launcher says which system libraries or which display are missing,
before Qt can abort, and the demo build shows its progress in the terminal."""

from __future__ import annotations

import io

from medviewer.cli.demo_cmd import TerminalProgress
from medviewer.gui_environment import QT_XCB_LIBRARIES, gui_problem, missing_libraries
from medviewer.launcher import main as launcher_main

MISSING = "libmedviewer-test-missing.so.4"  # a soname no machine has: a missing library


def test_a_missing_library_is_named_with_its_packages():
    # The real probe (ctypes) on the real system libraries, plus one that cannot load.
    sonames = ["libc.so.6", MISSING]
    assert missing_libraries(sonames) == [MISSING]
    QT_XCB_LIBRARIES_BACKUP = dict(QT_XCB_LIBRARIES)
    try:
        QT_XCB_LIBRARIES[MISSING] = ("libmedviewer-test4", "medviewer-test")
        message = gui_problem({"DISPLAY": ":0"}, platform="linux", sonames=sonames)
    finally:
        QT_XCB_LIBRARIES.clear()
        QT_XCB_LIBRARIES.update(QT_XCB_LIBRARIES_BACKUP)
    assert MISSING in message
    assert "apt-get install libmedviewer-test4" in message
    assert "dnf install medviewer-test" in message
    assert "medviewer import" in message  # what still works


def test_the_packages_qt_needs_are_named_for_debian_and_fedora():
    message = gui_problem({"DISPLAY": ":0"}, platform="linux",
                          sonames=["libxcb-icccm.so.4", "libxcb-keysyms.so.1"],
                          probe=lambda name: False)
    assert "libxcb-icccm4 libxcb-keysyms1" in message
    assert "xcb-util-wm xcb-util-keysyms" in message


def test_no_display_is_said_before_qt_starts(monkeypatch, capsys):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert launcher_main([]) == 2
    err = capsys.readouterr().err
    assert "no display is available" in err and "demo --no-gui" in err
    assert len(err.strip().splitlines()) == 1


def test_headless_platforms_and_other_systems_need_no_display():
    assert gui_problem({"QT_QPA_PLATFORM": "offscreen"}, platform="linux") is None
    assert gui_problem({}, platform="win32") is None
    assert gui_problem({}, platform="darwin") is None
    assert "WAYLAND_DISPLAY" in gui_problem({"QT_QPA_PLATFORM": "wayland"}, platform="linux")


def test_the_demo_build_prints_its_steps(tmp_path):
    from medviewer.services.demo import build_demo

    stream = io.StringIO()
    build_demo(tmp_path / "demo", cases=6, ct_series=0, state=TerminalProgress(stream))
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("medviewer demo: Writing synthetic studies")
    assert lines[-1] == "medviewer demo: Demo library ready (100%)"
    assert len(lines) == len(set(lines)) >= 3


def test_ready_in_counts_the_build(tmp_path, monkeypatch):
    from time import perf_counter

    from medviewer.cli.main import main
    from medviewer.services import demo

    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    real = demo.build_demo
    built = {}

    def small_build(directory=None, **kwargs):
        path = real(directory, cases=6, ct_series=0, **kwargs)
        built["at"] = perf_counter()
        return path

    monkeypatch.setattr(demo, "build_demo", small_build)
    request = main(["demo", "--dir", str(tmp_path / "demo")])
    # The clock the window's "ready in" reads started before the build, not after it.
    assert request.demo_tour and request.demo_started < built["at"]

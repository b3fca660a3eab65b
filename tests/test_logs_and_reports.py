"""Logging to the user's log folder, and problem reports that never carry patient data."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pydicom
import pytest

from medviewer.services import logs
from medviewer.services.logs import configure_logging, log_files, reset_logging
from medviewer.services.problem_report import (LibraryIdentifiers, Redactor, build_report,
                                               collect_environment, default_report_name,
                                               preview_text, read_library_identifiers,
                                               write_report)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def sandbox(monkeypatch):
    """Undo configure_logging after the test: handlers, hooks and the root level.

    The hooks are replaced by recorders first, so configure_logging chains to them (not to
    pytest's own hooks, which would report the test's deliberate exceptions).
    """
    calls = {"sys": [], "thread": []}
    monkeypatch.setattr(sys, "excepthook", lambda *args: calls["sys"].append(args))
    monkeypatch.setattr(threading, "excepthook", lambda args: calls["thread"].append(args))
    root = logging.getLogger()
    level = root.level
    yield calls
    reset_logging()
    root.setLevel(level)


def ours(root: logging.Logger | None = None) -> list[logging.Handler]:
    return [h for h in (root or logging.getLogger()).handlers
            if getattr(h, "_medviewer_logging", False)]


# -- logging --------------------------------------------------------------------------------

def test_log_folder_follows_the_override(tmp_path, monkeypatch):
    from medviewer.paths import log_dir

    monkeypatch.setenv("MEDVIEWER_LOG_DIR", str(tmp_path / "logs here"))
    assert log_dir() == tmp_path / "logs here" and log_dir().is_dir()


def test_default_log_file_is_in_the_session_log_folder(sandbox):
    path = configure_logging("INFO", stderr=False)
    assert path == Path(os.environ["MEDVIEWER_LOG_DIR"]) / "medviewer.log"
    assert logs.current_log_file() == path


def test_configuring_twice_never_duplicates_lines(tmp_path, sandbox):
    first = configure_logging("INFO", folder=tmp_path)
    second = configure_logging("DEBUG", folder=tmp_path)
    assert first == second == tmp_path / "medviewer.log"
    assert len(ours()) == 2  # one file, one stderr
    logging.getLogger("medviewer.test").debug("exactly once please")
    logs.flush_logs()
    text = first.read_text(encoding="utf-8")
    assert text.count("exactly once please") == 1
    # The start line is written when the file is opened, not at every call.
    assert text.count("MedViewer ") == 1 and "starting; Python" in text
    line = next(ln for ln in text.splitlines() if "exactly once" in ln)
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} DEBUG +medviewer\.test "
                    r"\[MainThread\] exactly once please$", line), line


def test_the_root_level_decides_and_the_start_line_is_always_written(tmp_path, sandbox):
    path = configure_logging("WARNING", folder=tmp_path, stderr=False)
    log = logging.getLogger("medviewer.test")
    log.info("hidden at WARNING")
    logging.getLogger().setLevel("DEBUG")  # what the window does when the settings change
    log.debug("shown at DEBUG")
    logs.flush_logs()
    text = path.read_text(encoding="utf-8")
    assert "starting; Python" in text and "hidden at WARNING" not in text
    assert "shown at DEBUG" in text


def test_a_new_folder_moves_the_log(tmp_path, sandbox):
    configure_logging(folder=tmp_path / "a", stderr=False)
    configure_logging(folder=tmp_path / "b", stderr=False)
    logging.getLogger("medviewer").info("after the move")
    logs.flush_logs()
    assert "after the move" not in (tmp_path / "a" / "medviewer.log").read_text()
    assert "after the move" in (tmp_path / "b" / "medviewer.log").read_text()
    assert len(ours()) == 1


def test_stderr_gets_warnings_once_and_no_info(tmp_path, sandbox, capsys):
    configure_logging("INFO", folder=tmp_path)
    log = logging.getLogger("medviewer.test")
    log.info("quiet detail")
    log.warning("loud problem")
    try:
        raise ValueError("boom in a slot")
    except ValueError:
        sys.excepthook(*sys.exc_info())
    err = capsys.readouterr().err
    assert "loud problem" in err and "quiet detail" not in err
    # The previous hook prints uncaught exceptions itself; the log must not print them again.
    assert "boom in a slot" not in err
    assert len(sandbox["sys"]) == 1 and sandbox["sys"][0][0] is ValueError


def test_uncaught_exceptions_go_to_the_log_and_on_to_the_previous_hook(tmp_path, sandbox):
    path = configure_logging(folder=tmp_path, stderr=False)

    def crash_main():
        raise RuntimeError("main thread went wrong")

    try:
        crash_main()
    except RuntimeError:
        sys.excepthook(*sys.exc_info())

    def crash_worker():
        raise KeyError("worker went wrong")

    worker = threading.Thread(target=crash_worker, name="decoder-7")
    worker.start()
    worker.join()
    logs.flush_logs()
    text = path.read_text(encoding="utf-8")
    assert "ERROR" in text and "Uncaught exception\nTraceback (most recent call last):" in text
    assert 'in crash_main\n    raise RuntimeError("main thread went wrong")' in text
    assert "Uncaught exception in thread decoder-7" in text
    assert "KeyError: 'worker went wrong'" in text and "in crash_worker" in text
    assert len(sandbox["sys"]) == 1 and len(sandbox["thread"]) == 1
    assert sandbox["thread"][0].thread is worker


def test_hooks_are_installed_once_and_removed(tmp_path, sandbox):
    configure_logging(folder=tmp_path, stderr=False)
    hook = sys.excepthook
    configure_logging(folder=tmp_path, stderr=False)
    assert sys.excepthook is hook and hook.previous is not hook
    reset_logging()
    assert not getattr(sys.excepthook, "_medviewer_logging", False)
    assert not getattr(threading.excepthook, "_medviewer_logging", False)
    assert ours() == []


def test_the_log_rotates_at_its_size(tmp_path, sandbox):
    path = configure_logging(folder=tmp_path, max_bytes=4000, backup_count=2, stderr=False)
    log = logging.getLogger("medviewer.test")
    for i in range(300):
        log.info("line %04d %s", i, "x" * 60)
    logs.flush_logs()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["medviewer.log", "medviewer.log.1", "medviewer.log.2"]
    assert all(p.stat().st_size <= 4000 for p in tmp_path.iterdir())
    files = log_files(path)
    assert [p.name for p in files] == ["medviewer.log.2", "medviewer.log.1", "medviewer.log"]
    assert "line 0299" in files[-1].read_text() and "line 0000" not in "".join(
        p.read_text() for p in files)


def test_an_unwritable_log_folder_does_not_stop_the_start(tmp_path, sandbox):
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    path = configure_logging(folder=blocker, stderr=False)
    assert path == blocker / "medviewer.log" and not any(
        isinstance(h, logging.FileHandler) for h in ours())


# -- a real library, and logs that (wrongly) name its patients --------------------------------

@pytest.fixture(scope="module")
def patient_library(tmp_path_factory):
    """Three synthetic radiographs imported into a library; their identifiers read from DICOM."""
    from medviewer.services.importer import import_paths
    from medviewer.store import Library
    from medviewer.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("report")
    manifest = generate_dataset(root / "data", cases=3, seed=424242, size=64, ct_series=0,
                                png=False)
    library_path = root / "library.sqlite"
    with Library(library_path) as library:
        import_paths(library, [root / "data" / "dicom"])
    files = [manifest.abspath(r.path) for r in manifest.records]
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    return {"library": library_path, "files": files, "headers": headers, "root": root}


def secrets_of(headers) -> dict[str, set[str]]:
    """Everything identifying in the headers, by kind (read with pydicom, not our code)."""
    found: dict[str, set[str]] = {"names": set(), "tokens": set(), "values": set()}
    for ds in headers:
        name = str(ds.PatientName)
        found["names"].add(name)
        found["tokens"].update(t for t in re.split(r"[\^ ]", name) if len(t) >= 3)
        found["values"].update({ds.PatientID, ds.PatientBirthDate, ds.AccessionNumber,
                                ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID})
    return found


def leaked(text: str, secrets: dict[str, set[str]], files: list[Path]) -> list[str]:
    """Return the secrets that appear in ``text`` (names as whole words, case-insensitive)."""
    hits = [v for v in secrets["values"] | secrets["names"] if v.casefold() in text.casefold()]
    hits += [t for t in secrets["tokens"]
             if re.search(rf"(?<![A-Za-z]){re.escape(t)}(?![A-Za-z])", text, re.IGNORECASE)]
    for f in files:
        hits += [part for part in (f.name, f.parent.name, str(f.parent)) if part in text]
    return hits


def test_library_identifiers_are_read_read_only(patient_library):
    import hashlib

    library = patient_library["library"]

    def state():  # SQLite may add its -wal/-shm companions; the database itself must not change
        return library.stat().st_mtime_ns, hashlib.sha256(library.read_bytes()).hexdigest()

    before = state()
    found = read_library_identifiers(library)
    assert state() == before and found.problems == []
    secrets = secrets_of(patient_library["headers"])
    assert found.names == secrets["names"]
    ids = {ds.PatientID for ds in patient_library["headers"]}
    accessions = {ds.AccessionNumber for ds in patient_library["headers"]}
    births = {ds.PatientBirthDate for ds in patient_library["headers"]}
    assert ids | accessions | births <= found.values
    # Standard-shaped UIDs are left to the UID rule rather than held in memory.
    assert not {ds.SOPInstanceUID for ds in patient_library["headers"]} & found.values


def test_saved_report_holds_no_patient_identifier(patient_library, tmp_path, sandbox):
    headers, files = patient_library["headers"], patient_library["files"]
    secrets = secrets_of(headers)
    path = configure_logging("DEBUG", folder=tmp_path / "log", stderr=False)
    log = logging.getLogger("medviewer.importer")
    for ds, f in zip(headers, files):
        family, given = str(ds.PatientName).split("^")[:2]
        log.info("Imported %s", f)
        log.warning("Skipped %s: truncated (series %s, SOP %s)", f, ds.SeriesInstanceUID,
                    ds.SOPInstanceUID)
        log.error("bug: showing %s, %s %s (%s) born %s, accession %s, study %s",
                  ds.PatientName, given.title(), family.title(), ds.PatientID,
                  ds.PatientBirthDate, ds.AccessionNumber, ds.StudyInstanceUID)
        log.debug("dataset: %r", {"PatientName": str(ds.PatientName), "PatientID": ds.PatientID})
        log.debug("folder %s/%s_%s/", f.parent.parent, family, given)
    log.info("Referring physician %s, e-mail ann.smith@hospital.example", headers[0].get(
        "ReferringPhysicianName"))
    log.info("Transfer syntax 1.2.840.10008.1.2.1; viewer froze at slice 12")
    note_ds = headers[0]
    note = (f"The viewer froze on {str(note_ds.PatientName).split('^')[1].lower()} "
            f"{str(note_ds.PatientName).split('^')[0].lower()}'s film, ID {note_ds.PatientID}.")

    report = build_report(log_files(path), collect_environment(), user_note=note,
                          library_path=patient_library["library"])
    out = write_report(report, tmp_path / "out" / "report")
    assert out == tmp_path / "out" / "report.zip"
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        texts = {n: archive.read(n).decode("utf-8") for n in names}
    assert sorted(names) == ["README.txt", "environment.json", "log.txt", "note.txt"]
    everything = "\n".join(texts.values())
    assert leaked(everything, secrets, files) == []
    assert str(tmp_path) not in everything
    # What matters for debugging survives: levels, loggers, messages, extensions, SOP classes.
    log_text = texts["log.txt"]
    assert "viewer froze at slice 12" in log_text and "1.2.840.10008.1.2.1" in log_text
    assert "WARNING  medviewer.importer [MainThread] Skipped /" in log_text
    assert re.search(r"Imported /(\u2026/)+\u2026\.dcm", log_text)
    assert "[uid]" in log_text and "[redacted]" in log_text and "[email]" in log_text
    assert "[name]" in log_text  # the referring physician is not in the library
    assert "The viewer froze on [redacted] [redacted]'s film, ID [redacted]." in texts["note.txt"]
    assert "no images" in texts["README.txt"].lower()


def test_the_preview_is_exactly_what_is_saved(patient_library, tmp_path):
    log = tmp_path / "medviewer.log"
    log.write_text("2024-01-01 INFO x [MainThread] opened /data/a/b.dcm\n", encoding="utf-8")
    report = build_report([log], {"medviewer": "0.1.0"}, user_note="it crashed",
                          library_path=patient_library["library"])
    out = write_report(report, tmp_path / "r.zip")
    with zipfile.ZipFile(out) as archive:
        saved = "\n".join(f"===== {n} =====\n{archive.read(n).decode('utf-8')}"
                          for n in archive.namelist())
    assert preview_text(report) == saved
    assert "opened /\u2026/\u2026/\u2026.dcm" in saved and "it crashed" in saved


def test_a_missing_library_is_said_not_hidden(tmp_path):
    log = tmp_path / "medviewer.log"
    log.write_text("hello\n")
    report = build_report([log], {}, library_path=tmp_path / "gone.sqlite")
    assert any("gone.sqlite" in p for p in report.problems)
    assert "was not found" in preview_text(report)


def test_the_end_of_a_long_log_is_kept(tmp_path):
    old, new = tmp_path / "medviewer.log.1", tmp_path / "medviewer.log"
    old.write_text("".join(f"old {i}\n" for i in range(1000)))
    new.write_text("".join(f"new {i}\n" for i in range(1000)))
    report = build_report([old, new], {}, max_log_chars=3000)
    assert report.log_text.endswith("new 999\n") and "old" not in report.log_text
    assert report.log_text.startswith("new ") and report.log_chars > 3000
    assert report.log_names == ("medviewer.log.1", "medviewer.log")


# -- the rules, one by one --------------------------------------------------------------------

CODE = [("/opt/py/lib/python3.11", "<python>"),
        ("/home/ann/.venv/lib/python3.11/site-packages", "<site-packages>")]


@pytest.mark.parametrize("text, expected", [
    ("/home/ann/Studies/DOE_JOHN/IM0001.dcm", "~/\u2026/\u2026/\u2026.dcm"),
    ("opened /home/ann/lib.sqlite.", "opened ~/\u2026.sqlite."),
    ("see '/mnt/pacs/2023/MRN1/x'", "see '/\u2026/\u2026/\u2026/\u2026/\u2026'"),
    ("C:\\Users\\Ann Smith\\My Studies\\DOE JOHN\\IM 1.dcm: bad",
     "C:\\\u2026\\\u2026\\\u2026\\\u2026\\\u2026.dcm: bad"),
    ("\\\\server\\share\\DOE\\a.png", "\\\\\u2026\\\u2026\\\u2026\\\u2026.png"),
    ("~/Studies/x.dcm and /home/ann", "~/\u2026/\u2026.dcm and ~"),
    ("/tmp/a.zip!DOE_JOHN/IM1.dcm", "/\u2026/\u2026/\u2026.dcm"),
    ('File "/home/ann/.venv/lib/python3.11/site-packages/pydicom/filereader.py", line 3',
     'File "<site-packages>/pydicom/filereader.py", line 3'),
    ('File "/opt/py/lib/python3.11/json/decoder.py"', 'File "<python>/json/decoder.py"'),
    ("loaded /usr/lib/x86_64-linux-gnu/libcuda.so.1", "loaded /usr/lib/x86_64-linux-gnu/libcuda.so.1"),
    ("http://pacs:8042/dicom-web/studies/1.2.826.0.1.3680043.8.498.1",
     "http://pacs:8042/dicom-web/studies/[uid]"),
    ("series_1.2.826.0.1.3680043.8.498.77 done", "series_[uid] done"),
    ("syntax 1.2.840.10008.1.2.4.50; numpy 1.26.4; ratio 3/4", None),
    ("mail ann.smith@hospital.example now", "mail [email] now"),
    ("ref GARCIA^AHMED^Q^DR said", "ref [name] said"),
    ("(0010,0010) Patient's Name PN: 'SMITH^JANE'", "(0010,0010) [redacted]"),
    ("(0008,0060) Modality CS: 'CT'", None),
    ('{"00100020": {"vr": "LO", "Value": ["XYZ9"]}, "00080060": {"vr": "CS"}}',
     '{"00100020": "[redacted]", "00080060": {"vr": "CS"}}'),
    ("query PatientID=XYZ9&PatientName=SMITH*", "query PatientID=[redacted]&PatientName=[redacted]"),
    ("{'patient_id': 'XYZ9', 'rows': 64}", "{'patient_id': [redacted], 'rows': 64}"),
])
def test_rules_without_a_library(text, expected):
    redactor = Redactor(home="/home/ann", code_prefixes=CODE)
    assert redactor.redact(text) == (text if expected is None else expected)


@pytest.mark.parametrize("text, expected", [
    ("John Doe", "[redacted] [redacted]"),
    ("DOE^JOHN^M at 10:00", "[redacted] at 10:00"),
    ("Doe, John (MRN-77 12)", "[redacted], [redacted] ([redacted])"),
    ("DOE_JOHN_scan", "[redacted]_[redacted]_scan"),
    ("Mr O'Brien", "Mr O'[redacted]"),
    ("born 1957-03-12 or 12.03.1957 or 19570312", "born [redacted] or [redacted] or [redacted]"),
    # Whole words only: a patient called Ann masks "ANN" (safe), never "annotation".
    ("ANN index rebuilt; annotation kept", "[redacted] index rebuilt; annotation kept"),
    ("study uid ABC.123", "study uid [redacted]"),
    ("Jo and M left", "Jo and M left"),
])
def test_rules_with_library_identifiers(text, expected):
    identifiers = LibraryIdentifiers(names={"DOE^JOHN^M", "O'BRIEN^JO", "SMITH^ANN"},
                                     values={"MRN-77 12", "19570312", "1957-03-12", "12.03.1957",
                                             "ABC.123"})
    assert Redactor(identifiers, home="/home/ann", code_prefixes=[]).redact(text) == expected


def test_a_large_library_masks_quickly(tmp_path):
    import time

    identifiers = LibraryIdentifiers(
        names={f"FAMILY{i}^GIVEN{i}" for i in range(20000)},
        values={f"MRN {i:07d}" for i in range(20000)} | {f"ID{i:07d}" for i in range(20000)})
    redactor = Redactor(identifiers, home="/home/ann", code_prefixes=[])
    line = "2024-01-01 INFO medviewer [MainThread] opened /home/ann/a/b.dcm for FAMILY17^GIVEN17 "
    text = (line + "ID0000042 MRN 0000007 ok\n") * 5000  # about 600 kB
    start = time.perf_counter()
    masked = redactor.redact(text)
    assert time.perf_counter() - start < 5  # 0.5 s here; a quadratic rule takes minutes
    assert "FAMILY17" not in masked and "0000042" not in masked and "0000007" not in masked


# -- environment -------------------------------------------------------------------------------

def test_environment_has_real_versions():
    import numpy
    import onnxruntime
    import pydicom as pd

    import medviewer
    from medviewer.inference.providers import ProviderReport

    env = collect_environment(ProviderReport(requested=["CPUExecutionProvider"],
                                             active=["CPUExecutionProvider"]))
    assert {"medviewer", "python", "platform", "cpu_count", "memory_gb", "qt", "packages",
            "onnxruntime", "execution_provider"} <= set(env)
    assert env["medviewer"] == medviewer.__version__
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert env["packages"]["numpy"] == numpy.__version__
    assert env["packages"]["pydicom"] == pd.__version__
    assert env["onnxruntime"]["version"] == onnxruntime.__version__
    assert env["onnxruntime"]["available_providers"] == onnxruntime.get_available_providers()
    assert env["execution_provider"]["provider"] == "CPU"
    assert env["cpu_count"] >= 1 and (env["memory_gb"] is None or env["memory_gb"] > 0)
    import PySide6

    assert env["qt"]["version"] == PySide6.__version__


def test_environment_does_not_import_qt():
    code = ("import sys; from medviewer.services.problem_report import collect_environment; "
            "collect_environment(); print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_default_report_name():
    import datetime as dt

    assert default_report_name(dt.datetime(2024, 3, 9, 7, 5)) == "medviewer-report-20240309-0705.zip"


# -- the dialog --------------------------------------------------------------------------------

@pytest.mark.gui
def test_problem_dialog_masks_the_note_and_saves(qtbot, patient_library, tmp_path):
    from medviewer.qt.problem_dialog import ProblemReportDialog

    headers, files = patient_library["headers"], patient_library["files"]
    ds = headers[1]
    log = tmp_path / "medviewer.log"
    log.write_text(f"2024-01-01 10:00:00,000 ERROR medviewer.x [MainThread] failed on {files[1]} "
                   f"of {ds.PatientName}\n", encoding="utf-8")
    dialog = ProblemReportDialog(None, library_path=patient_library["library"],
                                 provider_report={"provider": "CPU", "message": "running on CPU"},
                                 log_files=[log])
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.sig_report_ready, timeout=30000):
        pass
    assert dialog.save_button.isEnabled()
    family, given = str(ds.PatientName).split("^")[:2]
    qtbot.keyClicks(dialog.note, f"It froze while {given.title()} {family.title()} was open")
    qtbot.waitUntil(lambda: "It froze while" in dialog.preview_text(), timeout=5000)
    preview = dialog.preview_text()
    assert family.casefold() not in preview.casefold() and given.casefold() not in preview.casefold()
    assert "It froze while [redacted] [redacted] was open" in preview
    assert leaked(preview, secrets_of(headers), files) == []
    assert '"message": "running on CPU"' in preview
    with qtbot.waitSignal(dialog.sig_saved) as saved:
        out = dialog.save_to(tmp_path / "report.zip")
    assert saved.args == [out] and out.is_file()
    with zipfile.ZipFile(out) as archive:
        assert "[redacted] [redacted] was open" in archive.read("note.txt").decode()
        assert family.casefold() not in archive.read("log.txt").decode().casefold()

"""Shared test setup: an offscreen Qt platform and private data/config folders.

The environment is set at import time, before any test module imports
``medviewer``, so no test can read or write the user's real settings or
libraries.  Keep fixtures here small and general; data builders live in
``tests/helpers_dicom.py``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

# -- environment (must run before anything imports medviewer) ---------------------------------
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="medviewer-tests-"))
# Forced, not setdefault: a developer's own MEDVIEWER_* must never leak into the tests.
os.environ["MEDVIEWER_DATA_DIR"] = str(_SESSION_DIR / "data")
os.environ["MEDVIEWER_CONFIG_DIR"] = str(_SESSION_DIR / "config")
os.environ["MEDVIEWER_LOG_DIR"] = str(_SESSION_DIR / "log")
atexit.register(shutil.rmtree, _SESSION_DIR, ignore_errors=True)

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
SHARED_DICOM_SAMPLES = REPO_ROOT.parent / "shared" / "data" / "dicom-samples"
if str(TESTS_DIR) not in sys.path:  # so test modules can `import helpers_dicom`
    sys.path.insert(0, str(TESTS_DIR))

import pytest  # noqa: E402

import helpers_dicom  # noqa: E402


@pytest.fixture
def session_dirs() -> dict[str, Path]:
    """The private data and config folders the whole test session uses."""
    return {"data": Path(os.environ["MEDVIEWER_DATA_DIR"]),
            "config": Path(os.environ["MEDVIEWER_CONFIG_DIR"])}


@pytest.fixture
def tmp_library(tmp_path):
    """An empty case library in a temporary folder, closed after the test."""
    from medviewer.store import Library

    library = Library(tmp_path / "library" / "cases.sqlite")
    yield library
    library.close()


@pytest.fixture
def ct_series(tmp_path) -> helpers_dicom.SeriesFiles:
    """A seeded 8-slice axial CT series (16x16, 2.5 mm apart) with shuffled file names."""
    return helpers_dicom.write_ct_series(tmp_path / "ct", n=8, seed=11)


@pytest.fixture(scope="session")
def shared_dicom_samples() -> Path:
    """``../shared/data/dicom-samples`` beside the checkout; skips the test where it is absent."""
    if not SHARED_DICOM_SAMPLES.is_dir():
        pytest.skip(f"shared DICOM samples not found at {SHARED_DICOM_SAMPLES} "
                    "(they live beside the checkout; see ../shared/data/MANIFEST.md)")
    return SHARED_DICOM_SAMPLES


@pytest.fixture(autouse=True)
def _collect_qt_garbage_on_the_gui_thread(request):
    """After a Qt test, free its widgets' reference cycles here, on the GUI thread.

    Left to the cyclic garbage collector, they would be freed whenever it next runs,
    possibly on a worker thread of a later test, where destroying Qt objects makes Qt
    warn ("Timers cannot be started from another thread") and fails that test.
    """
    yield
    if "qtbot" in request.fixturenames:
        import gc

        gc.collect()

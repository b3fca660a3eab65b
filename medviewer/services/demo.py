"""Build the demo library once: synthetic studies, imported with their labels.

The demo lives in the user's data folder (``medviewer.paths.demo_dir``) unless
a folder is given.  A marker file written last makes the build all-or-nothing:
an interrupted build is redone, a finished one is reused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from medviewer.tasks import TaskState, ensure_state

# 3: the films carry their generated reports.
DEMO_VERSION = 3
DEMO_CASES = 80
DEMO_CT_SERIES = 4
DEMO_SEED = 2026
LIBRARY_NAME = "demo-library.sqlite"
MARKER_NAME = "demo.json"


def demo_library_path(directory: Path) -> Path:
    """Return the library file of a demo folder."""
    return Path(directory) / LIBRARY_NAME


def is_built(directory: Path) -> bool:
    """Tell whether a complete demo of the current version exists in ``directory``."""
    marker = Path(directory) / MARKER_NAME
    try:
        return json.loads(marker.read_text())["version"] == DEMO_VERSION
    except (OSError, ValueError, KeyError):
        return False


def build_demo(directory: Path | None = None, *, cases: int = DEMO_CASES,
               ct_series: int = DEMO_CT_SERIES, seed: int = DEMO_SEED,
               state: TaskState | None = None) -> Path:
    """Build the demo library if needed; return the library file.

    Parameters
    ----------
    directory : Path, optional
        Where to build; defaults to the user's demo folder.
    cases, ct_series, seed : int
        Size and seed of the synthetic data set.
    state : TaskState, optional
    """
    from medviewer.paths import demo_dir
    from medviewer.services.importer import import_paths
    from medviewer.services.models import default_bundle
    from medviewer.store import Library
    from medviewer.synthetic import generate_dataset

    state = ensure_state(state)
    directory = Path(directory) if directory is not None else demo_dir()
    if is_built(directory):
        return demo_library_path(directory)
    data = directory / "studies"
    if data.exists():
        shutil.rmtree(data)  # left by an interrupted build
    library_path = demo_library_path(directory)
    for leftover in directory.glob(LIBRARY_NAME + "*"):
        leftover.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    state.set_progress(0.0, "Writing synthetic studies")
    generate_dataset(data, cases, seed, ct_series=ct_series, png=False)
    state.check()
    state.set_progress(0.6, "Importing")
    with Library(library_path) as library:
        import_paths(library, [data / "dicom"], labels=data / "labels.csv",
                     state=state.child(0.6, 0.8))
        # Each film's generated report, so the report panel and text search have something.
        from medviewer.services.reports import import_reports

        import_reports(library, [data / "reports.csv"])
        bundle = default_bundle()
        if bundle is not None:
            # The demo opens with similar cases ready to search.
            from medviewer.services.retrieval import build_index

            state.set_progress(0.8, "Indexing with the demo model")
            build_index(library, bundle, state=state.child(0.8, 1.0))
    (directory / MARKER_NAME).write_text(json.dumps(
        {"version": DEMO_VERSION, "cases": cases, "ct_series": ct_series, "seed": seed}))
    state.set_progress(1.0, "Demo library ready")
    return library_path


def showcase_case(library) -> int | None:
    """Return the radiograph case the demo opens on: the one with the most findings.

    Ties go to the lowest case id, so every first run shows the same case.

    Parameters
    ----------
    library : Library
        An open library (normally the demo library).
    """
    return library.most_labelled_case(("DX", "CR"), source="dataset", ignore=("No Finding",))

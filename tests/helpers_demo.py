"""A synthetic, labelled library for tests that run the committed demo bundle."""

from __future__ import annotations

from pathlib import Path

import pytest

DEMO_BUNDLE = Path(__file__).resolve().parents[1] / "models" / "demo"


def synthetic_demo_library(root: Path, cases: int, seed: int, **generate) -> str:
    """Write ``cases`` synthetic radiographs (plus what ``generate`` asks) and import them.

    Skips the calling test where the demo bundle is missing, since every caller runs it.
    """
    from medviewer.services.importer import import_paths
    from medviewer.store import Library
    from medviewer.synthetic import generate_dataset

    if not (DEMO_BUNDLE / "model.onnx").is_file():
        pytest.skip("the demo bundle models/demo is missing")
    generate_dataset(root / "data", cases, seed, png=False, **generate)
    path = root / "lib.sqlite"
    with Library(path) as library:
        import_paths(library, [root / "data" / "dicom"], labels=root / "data" / "labels.csv")
    return str(path)

"""Find model bundles and classify the image on screen; store predictions in the library.

No Qt: the model panel runs these functions on a worker thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medviewer.paths import data_dir
from medviewer.store.library import Library

# Bundles shipped beside a source checkout (the demo bundle lives in models/demo).
_CHECKOUT_MODELS = Path(__file__).resolve().parents[2] / "models"
# Bundles shipped inside the installed package (wheel force-include, PyInstaller datas).
_PACKAGED_MODELS = Path(__file__).resolve().parents[1] / "bundled_models"


def bundle_search_paths(extra_folders: list[str] | None = None) -> list[Path]:
    """Return the folders searched for bundles.

    In order: ``MEDVIEWER_MODELS_DIR``, the folders the user added in the settings,
    the user's models folder, the bundles shipped with the installed application and
    those beside a source checkout.
    """
    paths = [Path(p).expanduser() for p in (extra_folders or [])]
    paths.append(data_dir() / "models")
    extra = os.environ.get("MEDVIEWER_MODELS_DIR")
    if extra:
        paths.insert(0, Path(extra))
    for shipped in (_PACKAGED_MODELS, _CHECKOUT_MODELS):
        if shipped.is_dir():
            paths.append(shipped)
    return paths


def find_bundles(paths: list[Path] | None = None) -> list[Path]:
    """Return bundle folders (holding ``metadata.json`` and ``model.onnx``), each once.

    A folder that is itself a bundle counts, as do the bundles below it.
    """
    found: list[Path] = []
    for root in paths or bundle_search_paths():
        if not root.is_dir():
            continue
        for meta in sorted(root.glob("**/metadata.json")):
            folder = meta.parent.resolve()
            if (folder / "model.onnx").is_file() and folder not in found:
                found.append(folder)
    return found


def default_bundle(preferred: str = "", extra_folders: list[str] | None = None) -> Path | None:
    """Return the bundle to load when the user has not picked one.

    Parameters
    ----------
    preferred : str
        The settings' default model (a bundle folder); used when it is still a bundle.
    extra_folders : list of str, optional
        The settings' extra model folders, searched before the standard ones.

    Returns
    -------
    Path or None
        ``preferred`` if it holds a bundle, else the demo bundle, else the first found.
    """
    if preferred and (Path(preferred) / "model.onnx").is_file():
        return Path(preferred).resolve()
    bundles = find_bundles(bundle_search_paths(extra_folders))
    for folder in bundles:
        if folder.name == "demo":
            return folder
    return bundles[0] if bundles else None


@dataclass(frozen=True)
class Classification:
    """Per-label probabilities of one image by one bundle."""

    probabilities: dict[str, float]
    bundle_sha256: str
    provider: str


def classify_display_image(runner, image: np.ndarray) -> Classification:
    """Classify one display-space image (as the viewer shows it) with a ModelRunner."""
    probabilities = runner.classify([image])[0]
    return Classification({k: float(v) for k, v in probabilities.items()},
                          runner.bundle.sha256, runner.provider_report().provider_label)


def store_predictions(library_path: str | Path, case_id: int, result: Classification) -> None:
    """Store a classification as ``model`` labels of a case, tagged with the bundle's sha256."""
    with Library(library_path) as library, library.transaction():
        names = list(result.probabilities)
        library.set_labels(case_id, names, "model", result.bundle_sha256,
                           values=[result.probabilities[n] for n in names])

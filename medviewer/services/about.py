"""What the About box says: MedViewer's version and licence, its components' licences, the demo model.

Licences are read from each distribution's own metadata (``License-Expression``, then a short
``License`` field, then the licence classifiers).  A packaged build may lack some metadata, so a
small table of the licences MedViewer's components are known to carry fills the gaps, marked as
coming from that table, and anything else reads "unknown": the About box never fails to open.

No Qt here.
"""

from __future__ import annotations

import json
import platform
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

APP_NAME = "MedViewer"
PROJECT_LICENCE = "MIT"  # pyproject.toml; used when the package metadata is missing
DISCLAIMER = "Not for primary diagnosis. Not a medical device."
DESCRIPTION = ("Desktop radiology study tool: DICOM viewer, ViT classification, similar-case "
               "retrieval, saliency overlays and reader studies")
UNKNOWN = "unknown"
FROM_METADATA = "package metadata"
FROM_TABLE = "MedViewer's table"

# Licences of the components MedViewer ships, for builds whose metadata lacks them (SPDX ids,
# checked against each project's licence file), and their home pages.
KNOWN = {
    "numpy": ("BSD-3-Clause", "https://numpy.org"),
    "pydicom": ("MIT", "https://github.com/pydicom/pydicom"),
    "pylibjpeg": ("MIT", "https://github.com/pydicom/pylibjpeg"),
    "pylibjpeg-libjpeg": ("GPL-3.0-only", "https://github.com/pydicom/pylibjpeg-libjpeg"),
    "pylibjpeg-openjpeg": ("MIT", "https://github.com/pydicom/pylibjpeg-openjpeg"),
    "pylibjpeg-rle": ("MIT", "https://github.com/pydicom/pylibjpeg-rle"),
    "pyjpegls": ("MIT", "https://github.com/pydicom/pyjpegls"),
    "pillow": ("MIT-CMU", "https://python-pillow.org"),
    "pyside6-essentials": ("LGPL-3.0-only OR GPL-2.0-only OR GPL-3.0-only", "https://pyside.org"),
    "pyside6": ("LGPL-3.0-only OR GPL-2.0-only OR GPL-3.0-only", "https://pyside.org"),
    "shiboken6": ("LGPL-3.0-only OR GPL-2.0-only OR GPL-3.0-only", "https://pyside.org"),
    "qt": ("LGPL-3.0-only", "https://www.qt.io"),
    "pyqtgraph": ("MIT", "https://www.pyqtgraph.org"),
    "onnxruntime": ("MIT", "https://onnxruntime.ai"),
    "onnxruntime-gpu": ("MIT", "https://onnxruntime.ai"),
    "faiss-cpu": ("MIT", "https://github.com/facebookresearch/faiss"),
    "platformdirs": ("MIT", "https://github.com/tox-dev/platformdirs"),
    "pynetdicom": ("MIT", "https://github.com/pydicom/pynetdicom"),
    "highdicom": ("MIT", "https://github.com/ImagingDataCommons/highdicom"),
    "tokenizers": ("Apache-2.0", "https://github.com/huggingface/tokenizers"),
    "bm25s": ("MIT", "https://github.com/xhluca/bm25s"),
    "scipy": ("BSD-3-Clause", "https://scipy.org"),
    "scikit-learn": ("BSD-3-Clause", "https://scikit-learn.org"),
    "joblib": ("BSD-3-Clause", "https://joblib.readthedocs.io"),
    "threadpoolctl": ("BSD-3-Clause", "https://github.com/joblib/threadpoolctl"),
    "narwhals": ("MIT", "https://github.com/narwhals-dev/narwhals"),
    "protobuf": ("BSD-3-Clause", "https://protobuf.dev"),
    "flatbuffers": ("Apache-2.0", "https://google.github.io/flatbuffers"),
    "packaging": ("Apache-2.0 OR BSD-2-Clause", "https://github.com/pypa/packaging"),
    "colorama": ("BSD-3-Clause", "https://github.com/tartley/colorama"),
    "sympy": ("BSD-3-Clause", "https://sympy.org"),
    "mpmath": ("BSD-3-Clause", "https://mpmath.org"),
    "coloredlogs": ("MIT", "https://coloredlogs.readthedocs.io"),
    "humanfriendly": ("MIT", "https://humanfriendly.readthedocs.io"),
    "python": ("PSF-2.0", "https://www.python.org"),
}
# The packages MedViewer ships: its runtime dependencies as pyproject.toml names them (one
# entry per need, with the distributions that can fill it, the usual one first).  The About
# box falls back on it where the metadata is missing; problem reports record their versions;
# tests/test_about.py ties it to pyproject.toml.
SHIPPED_PACKAGES: tuple[tuple[str, ...], ...] = (
    ("numpy",), ("pydicom",), ("pylibjpeg",), ("pylibjpeg-libjpeg",), ("pylibjpeg-openjpeg",),
    ("pylibjpeg-rle",), ("pyjpegls",), ("pillow",), ("pyside6-essentials", "pyside6"),
    ("pyqtgraph",), ("onnxruntime-gpu", "onnxruntime"), ("faiss-cpu", "faiss-gpu"),
    ("platformdirs",), ("pynetdicom",), ("scipy",), ("scikit-learn",), ("highdicom",),
    ("tokenizers",), ("bm25s",),
)
# Distributions that fill a need in place of the one pyproject.toml names, never listed there.
_ALTERNATES_ONLY = {"pyside6", "faiss-gpu"}
# MedViewer's own runtime dependencies, for builds where its metadata is missing.
RUNTIME_FALLBACK = tuple(name for group in SHIPPED_PACKAGES for name in group
                         if name not in _ALTERNATES_ONLY)
QT_PACKAGES = ("pyside6-essentials", "pyside6", "shiboken6")
# Classifier names -> SPDX ids, for distributions that state their licence only that way.
_CLASSIFIERS = {
    "MIT License": "MIT",
    "BSD License": "BSD",
    "Apache Software License": "Apache-2.0",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0",
    "GNU Library or Lesser General Public License (LGPL)": "LGPL",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "Python Software Foundation License": "PSF-2.0",
    "ISC License (ISCL)": "ISC",
}
# First words of full licence texts some projects paste into the License field.
_TEXTS = (
    ("Permission is hereby granted, free of charge", "MIT"),
    ("Redistribution and use in source and binary forms", "BSD"),
    ("Apache License", "Apache-2.0"),
    ("GNU LESSER GENERAL PUBLIC LICENSE", "LGPL"),
    ("GNU GENERAL PUBLIC LICENSE", "GPL"),
)


@dataclass(frozen=True)
class Component:
    """A component bundled with MedViewer and its licence.

    Attributes
    ----------
    name : str
        Distribution name as published (``pydicom``), or ``Qt`` / ``Python``.
    version : str
        Installed version, or ``"unknown"``.
    licence : str
        SPDX expression or the project's own words, or ``"unknown"``.
    url : str
        Home page ("" if none is known).
    source : str
        Where the licence came from: ``"package metadata"``, ``"MedViewer's table"`` or
        ``"unknown"``.
    required_by : str
        ``"MedViewer"`` for a direct dependency, else the component that pulls it in.
    """

    name: str
    version: str
    licence: str
    url: str = ""
    source: str = FROM_METADATA
    required_by: str = APP_NAME


@dataclass(frozen=True)
class AppMetadata:
    """MedViewer's name, version, purpose, home page, licence and intended-use statement."""

    name: str
    version: str
    description: str
    homepage: str
    licence: str
    disclaimer: str


def canonical(name: str) -> str:
    """Return a distribution name normalised as PEP 503 does (``PySide6_Essentials`` -> ...)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _meta(name: str):
    try:
        return metadata.metadata(name)
    except Exception:  # noqa: BLE001 - PackageNotFoundError, or broken metadata in a bundle
        return None


def _licence_from_metadata(md) -> str:
    expression = (md.get("License-Expression") or "").strip()
    if expression:
        return expression
    text = (md.get("License") or "").strip()
    if text and text.upper() != "UNKNOWN" and "\n" not in text and len(text) <= 80:
        return re.sub(r"\s+License$", "", text)
    classifiers = [c.split(" :: ")[-1] for c in md.get_all("Classifier") or []
                   if c.startswith("License :: ") and not c.endswith(":: Other/Proprietary License")]
    if classifiers:
        return " OR ".join(dict.fromkeys(_CLASSIFIERS.get(c, c) for c in classifiers))
    for start, spdx in _TEXTS:
        if start.lower() in text.lower():
            return spdx
    return ""


def _homepage(md) -> str:
    urls = {}
    for entry in md.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        urls[label.strip().lower()] = url.strip()
    for label in ("homepage", "home", "source", "repository"):
        if urls.get(label):
            return urls[label]
    return (md.get("Home-page") or "").strip() or next(iter(urls.values()), "")


def describe(name: str, required_by: str = APP_NAME) -> Component:
    """Return one distribution's version, licence and home page; never raises."""
    md = _meta(name)
    known_licence, known_url = KNOWN.get(canonical(name), ("", ""))
    if md is None:
        if known_licence:
            return Component(name, UNKNOWN, known_licence, known_url, FROM_TABLE, required_by)
        return Component(name, UNKNOWN, UNKNOWN, known_url, UNKNOWN, required_by)
    shown = md.get("Name") or name
    version = md.get("Version") or UNKNOWN
    url = _homepage(md) or known_url
    licence = _licence_from_metadata(md)
    if licence:
        return Component(shown, version, licence, url, FROM_METADATA, required_by)
    if known_licence:
        return Component(shown, version, known_licence, url, FROM_TABLE, required_by)
    return Component(shown, version, UNKNOWN, url, UNKNOWN, required_by)


def _marker_applies(marker: str) -> bool | None:
    """Whether an environment marker holds here (None where ``packaging`` is missing)."""
    try:
        from packaging.markers import Marker
    except ImportError:
        return None
    try:
        return Marker(marker).evaluate({"extra": ""})
    except Exception:  # noqa: BLE001 - an odd marker must not break the About box
        return None


def runtime_requirements(distribution: str) -> list[str] | None:
    """Return the names ``distribution`` needs at run time (no extras); None without metadata."""
    try:
        requirements = metadata.requires(distribution)
    except Exception:  # noqa: BLE001
        return None
    names = []
    for requirement in requirements or []:
        spec, _, marker = requirement.partition(";")
        marker = marker.strip()
        if "extra" in marker:
            continue
        name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
        if name is None:
            continue
        applies = _marker_applies(marker) if marker else True
        # Without packaging to judge a marker, list what is installed: that is what ships.
        if applies is None:
            applies = _meta(name.group(1)) is not None
        if applies:
            names.append(name.group(1))
    return names


@lru_cache(maxsize=1)
def component_licences() -> list[Component]:
    """Return MedViewer's runtime components, what they pull in, Qt and Python, with licences.

    The direct dependencies are those of ``requires("medviewer")`` (or, in a build without
    MedViewer's metadata, :data:`RUNTIME_FALLBACK`); the components they need in turn are
    listed too, since a packaged MedViewer ships them as well.  Sorted by name.
    """
    direct = runtime_requirements("medviewer")
    if direct is None:
        direct = [n for n in RUNTIME_FALLBACK if _meta(n) is not None] or list(RUNTIME_FALLBACK)
        # Of the two ONNX Runtime builds one is installed; without metadata show one, not both.
        if "onnxruntime-gpu" in direct and "onnxruntime" in direct and len(direct) == len(
                RUNTIME_FALLBACK):
            direct.remove("onnxruntime")
    found: dict[str, Component] = {}
    queue = [(name, APP_NAME) for name in direct]
    while queue:
        name, parent = queue.pop(0)
        key = canonical(name)
        if key in found or key == "medviewer":
            continue
        component = describe(name, parent)
        found[key] = component
        for child in runtime_requirements(name) or []:
            queue.append((child, component.name))
    qt = next((c for k, c in found.items() if k in ("pyside6-essentials", "pyside6")), None)
    qt_licence, qt_url = KNOWN["qt"]
    found["qt"] = Component("Qt", qt.version if qt else UNKNOWN, qt_licence, qt_url, FROM_TABLE,
                            qt.name if qt else APP_NAME)
    py_licence, py_url = KNOWN["python"]
    found["python"] = Component("Python", platform.python_version(), py_licence, py_url,
                                FROM_TABLE, APP_NAME)
    return sorted(found.values(), key=lambda c: c.name.casefold())


def components_text(components: list[Component] | None = None) -> str:
    """Return the component list as tab-separated text (for the clipboard)."""
    components = component_licences() if components is None else components
    lines = ["Component\tVersion\tLicence\tHome page\tLicence from"]
    lines += [f"{c.name}\t{c.version}\t{c.licence}\t{c.url}\t{c.source}" for c in components]
    return "\n".join(lines) + "\n"


def app_metadata() -> AppMetadata:
    """Return MedViewer's name, version, description, home page, licence and disclaimer."""
    from medviewer import __version__

    md = _meta("medviewer")
    description, homepage, licence = DESCRIPTION, "", PROJECT_LICENCE
    if md is not None:
        description = (md.get("Summary") or "").strip() or DESCRIPTION
        homepage = _homepage(md)
        licence = _licence_from_metadata(md) or PROJECT_LICENCE
    return AppMetadata(APP_NAME, __version__, description, homepage, licence, DISCLAIMER)


# -- the demo model --------------------------------------------------------------------------

def _card_section(card: str, heading: str) -> str:
    """Return the text under ``## heading`` of a model card ("" if absent)."""
    match = re.search(rf"^##\s+{re.escape(heading)}\s*$(.*?)(?=^##\s|\Z)", card,
                      re.MULTILINE | re.DOTALL | re.IGNORECASE)
    return match.group(1).strip() if match else ""


def _split_counts(counts: dict) -> str:
    # Only the splits themselves ("train_before_balancing" is a detail of the recipe).
    return ", ".join(f"{split} {n:,}" for split, n in counts.items()
                     if isinstance(n, int) and "_" not in split)


def demo_model_provenance(bundle_folder: str | Path | None = None) -> str:
    """Say what the demo model is, what data it was trained on and under which licence.

    Everything comes from the bundle's ``metadata.json`` (and ``card.md`` where the metadata
    lacks a part), so a retrained bundle describes itself.

    Parameters
    ----------
    bundle_folder : path, optional
        The bundle; default :func:`medviewer.services.models.default_bundle`.

    Returns
    -------
    str
        Plain text, a few short paragraphs; says so plainly when no bundle is found.
    """
    if bundle_folder is None:
        from medviewer.services.models import default_bundle

        bundle_folder = default_bundle()
    if bundle_folder is None:
        return "No model bundle was found, so there is no demo model to describe."
    folder = Path(bundle_folder)
    try:
        meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"The model bundle {folder.name} has no readable metadata.json ({exc})."
    if not isinstance(meta, dict):
        return f"The model bundle {folder.name} has a metadata.json that is not a JSON object."
    try:
        card_md = (folder / "card.md").read_text(encoding="utf-8")
    except OSError:
        card_md = ""
    card = meta.get("card") if isinstance(meta.get("card"), dict) else {}
    data = meta.get("training_data") if isinstance(meta.get("training_data"), dict) else {}

    paragraphs = [meta.get("name") or folder.name]
    if card.get("summary"):
        paragraphs.append(card["summary"])
    # Markdown backticks read as noise in plain text.
    training = (card.get("training_data") or _card_section(card_md, "Training data")).replace(
        "`", "")
    facts = []
    if training:
        facts.append(f"Trained on: {training}")
    if data.get("source"):
        facts.append(f"Split: {data['source']}.")
    images = data.get("images") if isinstance(data.get("images"), dict) else {}
    patients = data.get("patients") if isinstance(data.get("patients"), dict) else {}
    if images:
        line = f"Images: {_split_counts(images)}"
        if patients:
            line += f"; patients: {_split_counts(patients)}"
        facts.append(line + ".")
    fresh = (meta.get("metrics") or {}).get("fresh_synthetic") if isinstance(
        meta.get("metrics"), dict) else None
    if isinstance(fresh, dict) and fresh.get("cases"):
        facts.append(f"Evaluated on {fresh['cases']:,} fresh images from "
                     f"{fresh.get('generator', 'the same generator')} (seed {fresh.get('seed')}, "
                     f"{fresh.get('size')} px), never seen in training.")
    if facts:
        paragraphs.append("\n".join(facts))
    if card.get("intended_use"):
        paragraphs.append(f"Intended use: {card['intended_use']}")
    paragraphs.append(f"Licence: {_bundle_licence(meta, folder)}")
    details = []
    recipe = meta.get("recipe") if isinstance(meta.get("recipe"), dict) else {}
    if recipe:
        details.append(f"Recipe: {recipe.get('epochs', '?')} epochs, seed {recipe.get('seed', '?')}"
                       + (", from scratch" if recipe.get("pretrained") is False else ""))
    reproduce = (meta.get("reproduce") or {}).get("command") if isinstance(
        meta.get("reproduce"), dict) else None
    if reproduce:
        details.append(f"Reproduce: {reproduce}")
    if meta.get("model_sha256"):
        details.append(f"{meta.get('model_file', 'model.onnx')} sha256: {meta['model_sha256']}")
    if details:
        paragraphs.append("\n".join(details))
    return "\n\n".join(str(p).strip() for p in paragraphs if str(p).strip())


def _bundle_licence(meta: dict, folder: Path) -> str:
    """Return the bundle's stated licence, or what applies to a bundle shipped with MedViewer."""
    for key in ("licence", "license"):
        value = meta.get(key) or (meta.get("card") or {}).get(key)
        if value:
            return str(value)
    from medviewer.services import models

    shipped = (models._PACKAGED_MODELS, models._CHECKOUT_MODELS)
    if any(folder.resolve().is_relative_to(root.resolve()) for root in shipped):
        return ("none stated in the bundle's metadata; it ships inside MedViewer, so "
                f"MedViewer's licence ({app_metadata().licence}) applies.")
    return "none stated in the bundle's metadata; ask whoever made the bundle."

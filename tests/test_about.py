"""The About box: MedViewer's licence, every bundled component's licence, the demo model's data."""

from __future__ import annotations

import json
import shutil
from email.message import Message
from importlib import metadata
from pathlib import Path

import pytest

import medviewer
from medviewer.services import about
from medviewer.services.about import (FROM_METADATA, FROM_TABLE, UNKNOWN, app_metadata, canonical,
                                      component_licences, components_text, demo_model_provenance)

DEMO = Path(__file__).resolve().parents[1] / "models" / "demo"


def runtime_dependencies() -> list[str]:
    """MedViewer's runtime requirements that apply on this platform (read independently)."""
    from packaging.requirements import Requirement

    names = []
    for text in metadata.requires("medviewer"):
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            names.append(requirement.name)
    return names


@pytest.fixture
def fresh_components():
    component_licences.cache_clear()
    yield
    component_licences.cache_clear()


def test_every_runtime_dependency_is_listed_with_its_licence(fresh_components):
    components = {canonical(c.name): c for c in component_licences()}
    dependencies = runtime_dependencies()
    assert len(dependencies) >= 15
    for name in dependencies:
        component = components[canonical(name)]
        assert component.licence and component.licence != UNKNOWN, name
        # Installed from a wheel, each says its own licence: the table is only a fallback.
        assert component.source == FROM_METADATA, name
        assert component.version == metadata.version(name)
        assert component.required_by == "MedViewer"


def test_known_licences_read_from_metadata(fresh_components):
    components = {canonical(c.name): c for c in component_licences()}
    assert components["pydicom"].licence == "MIT"
    assert components["faiss-cpu"].licence == "MIT"
    assert "MIT" in components[canonical(next(n for n in runtime_dependencies()
                                               if n.startswith("onnxruntime")))].licence
    assert "LGPL-3.0" in components["pyside6-essentials"].licence
    # Components pulled in by the direct ones ship too, and are listed with who needs them.
    assert components["shiboken6"].required_by.lower().startswith("pyside6")


def test_qt_and_python_rows(fresh_components):
    import platform

    import PySide6

    rows = {c.name: c for c in component_licences()}
    assert rows["Qt"].version == PySide6.__version__ and rows["Qt"].licence == "LGPL-3.0-only"
    assert rows["Python"].version == platform.python_version()
    assert rows["Python"].licence == "PSF-2.0"


def test_without_metadata_the_table_fills_in_and_nothing_fails(monkeypatch, fresh_components):
    """A packaged build may carry no dist-info at all: the About box must still open."""
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(about.metadata, "metadata", missing)
    monkeypatch.setattr(about.metadata, "requires", missing)
    components = component_licences()
    names = {canonical(c.name) for c in components}
    assert {"numpy", "pydicom", "faiss-cpu", "pyside6-essentials", "qt", "python"} <= names
    for c in components:
        if canonical(c.name) in about.KNOWN:
            assert c.licence == about.KNOWN[canonical(c.name)][0] and c.source == FROM_TABLE
    assert next(c for c in components if c.name == "numpy").version == UNKNOWN
    nobody = about.describe("no-such-distribution-xyz")
    assert (nobody.licence, nobody.source, nobody.version) == (UNKNOWN, UNKNOWN, UNKNOWN)
    assert app_metadata().licence == "MIT"


def _md(**fields) -> Message:
    md = Message()
    for key, value in fields.items():
        for v in value if isinstance(value, list) else [value]:
            md[key.replace("_", "-")] = v
    return md


@pytest.mark.parametrize("fields, expected", [
    ({"License_Expression": "BSD-3-Clause", "License": "ignored"}, "BSD-3-Clause"),
    ({"License": "MIT License"}, "MIT"),
    ({"License": "Copyright (c) 2001\nRedistribution and use in source and binary forms...",
      "Classifier": ["License :: OSI Approved :: BSD License"]}, "BSD"),
    ({"License": "Permission is hereby granted, free of charge, to any person\n..."}, "MIT"),
    ({"Classifier": ["License :: OSI Approved :: MIT License",
                     "License :: OSI Approved :: Apache Software License"]}, "MIT OR Apache-2.0"),
    ({"License": "UNKNOWN"}, ""),
])
def test_licence_fields(fields, expected):
    assert about._licence_from_metadata(_md(**fields)) == expected


def test_components_text_is_one_tab_separated_row_each(fresh_components):
    components = component_licences()
    lines = components_text(components).splitlines()
    assert lines[0].split("\t") == ["Component", "Version", "Licence", "Home page", "Licence from"]
    assert len(lines) == len(components) + 1
    pydicom_row = next(line for line in lines if line.startswith("pydicom\t")).split("\t")
    assert pydicom_row[2] == "MIT" and pydicom_row[3].startswith("https://")


def test_app_metadata():
    info = app_metadata()
    assert info.name == "MedViewer" and info.version == medviewer.__version__
    assert info.licence == "MIT" and info.homepage == ""
    assert "Not for primary diagnosis" in info.disclaimer
    assert info.description == metadata.metadata("medviewer")["Summary"]


# -- the demo model ---------------------------------------------------------------------------

def test_demo_provenance_comes_from_the_bundle():
    meta = json.loads((DEMO / "metadata.json").read_text())
    text = demo_model_provenance(DEMO)
    assert meta["name"] in text
    assert meta["card"]["training_data"].replace("`", "") in text
    fresh = meta["metrics"]["fresh_synthetic"]
    assert f"Evaluated on {fresh['cases']:,} fresh images" in text and f"seed {fresh['seed']}" in text
    assert f"train {meta['training_data']['images']['train']:,}" in text
    assert "synthetic" in text.lower() and meta["model_sha256"] in text
    assert "MedViewer's licence (MIT)" in text


def test_a_retrained_bundle_describes_itself(tmp_path):
    bundle = tmp_path / "mine"
    shutil.copytree(DEMO, bundle, ignore=shutil.ignore_patterns("*.onnx"))
    meta = json.loads((bundle / "metadata.json").read_text())
    meta["card"]["training_data"] = "42 synthetic radiographs written with seed 7."
    meta["training_data"]["source"] = "labels.csv: 42 images, seed 7"
    meta["metrics"]["fresh_synthetic"].update(cases=99, seed=8)
    (bundle / "metadata.json").write_text(json.dumps(meta))
    text = demo_model_provenance(bundle)
    assert "42 synthetic radiographs written with seed 7." in text
    assert "Evaluated on 99 fresh images" in text and "seed 8" in text
    assert "1500" not in text.split("Reproduce:")[0]
    # Outside MedViewer's own folders nobody can say which licence applies; with one, it shows.
    assert "ask whoever made the bundle" in text
    meta["licence"] = "CC-BY-4.0"
    (bundle / "metadata.json").write_text(json.dumps(meta))
    assert "Licence: CC-BY-4.0" in demo_model_provenance(bundle)


def test_card_md_fills_in_when_the_metadata_has_no_card(tmp_path):
    bundle = tmp_path / "cardless"
    bundle.mkdir()
    (bundle / "metadata.json").write_text(json.dumps({"name": "Tiny"}))
    (bundle / "card.md").write_text("# Tiny\n\n## Training data\n\n12 phantoms, seed 3.\n\n"
                                    "## Recipe\n\nnothing\n")
    text = demo_model_provenance(bundle)
    assert "Trained on: 12 phantoms, seed 3." in text and "nothing" not in text


def test_missing_or_broken_bundles_are_said_plainly(tmp_path):
    assert "no readable metadata.json" in demo_model_provenance(tmp_path)
    (tmp_path / "metadata.json").write_text("[1, 2]")
    assert "not a JSON object" in demo_model_provenance(tmp_path)
    (tmp_path / "metadata.json").write_text("{not json")
    assert "no readable metadata.json" in demo_model_provenance(tmp_path)


# -- the dialog --------------------------------------------------------------------------------

@pytest.mark.gui
def test_about_dialog(qtbot, fresh_components):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication

    from medviewer.qt.about_dialog import AboutDialog

    dialog = AboutDialog(None, bundle_folder=DEMO)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert medviewer.__version__ in dialog.title.text()
    assert "Not for primary diagnosis" in dialog.disclaimer.text()
    table = dialog.table
    assert table.rowCount() == len(component_licences())
    names = [table.item(r, 0).text() for r in range(table.rowCount())]
    assert names == sorted(names, key=str.casefold)  # PySide6 among the p's, Qt among the q's
    table.sortByColumn(0, Qt.DescendingOrder)
    assert table.item(0, 0).text().casefold() == max(n.casefold() for n in names)
    licences = {table.item(r, 0).text(): table.item(r, 2).text() for r in range(table.rowCount())}
    assert licences["pydicom"] == "MIT" and licences["Qt"] == "LGPL-3.0-only *"
    assert json.loads((DEMO / "metadata.json").read_text())["name"] in \
        dialog.provenance.toPlainText()
    dialog.copy_button.click()
    assert QGuiApplication.clipboard().text() == components_text()


def test_the_shipped_packages_are_the_runtime_dependencies_of_pyproject():
    """One list of shipped packages (About box, problem reports) tied to pyproject.toml."""
    import re
    import tomllib
    from pathlib import Path

    from medviewer.services.about import RUNTIME_FALLBACK, SHIPPED_PACKAGES
    from medviewer.services.problem_report import PACKAGES

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    declared = {re.split(r"[<>=!;\[ ]", d, maxsplit=1)[0].lower()
                for d in pyproject["project"]["dependencies"]}
    assert set(RUNTIME_FALLBACK) == declared
    assert {group[0] for group in SHIPPED_PACKAGES} <= declared | {"onnxruntime-gpu"}
    # Problem reports record every shipped package but Qt (reported on its own line).
    assert {g[0] for g in PACKAGES} == {g[0] for g in SHIPPED_PACKAGES} - {"pyside6-essentials"}

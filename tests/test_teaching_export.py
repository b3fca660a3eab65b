"""A teaching collection built from a retrieval result exports to a de-identified package.

The package must open in a DICOM viewer (a DICOMDIR File-set), hold a "For Teaching"
KOS per study that references exactly the exported images, render key images with the
stored window, hide the diagnosis, and contain none of the synthetic patients' identity:
the scan of ``test_deid_identity_scan`` runs over every file of the package.
"""

from __future__ import annotations

import argparse
import json
import re

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.fileset import FileSet
from test_deid_identity_scan import (
    CHARACTERISTICS,
    DATES,
    DESCRIPTIONS,
    DEVICE,
    INSTITUTION,
    PATIENT,
    STUDY,
    TIMES,
    _identity,
    _leaks,
)
from test_teaching_store import _Result

from medviewer.dicom.pixels import decode
from medviewer.reports import ReportStore
from medviewer.dicom.sources import FileRef
from medviewer.display.render import render_frame
from medviewer.display.windowing import Window
from medviewer.services import teaching
from medviewer.services.importer import import_paths
from medviewer.store import Library
from medviewer.synthetic import FINDINGS, NO_FINDING, generate_dataset
from medviewer.teaching import FOR_TEACHING, KOS_SOP_CLASS, TeachingError
from medviewer.teaching.kos import kos_references


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    root = tmp_path_factory.mktemp("package")
    generate_dataset(root / "ds", cases=4, seed=23, size=64, ct_series=1, ct_size=32,
                     ct_slices=4, png=False)
    library = Library(root / "lib.sqlite")
    import_paths(library, [root / "ds" / "dicom"], labels=root / "ds" / "labels.csv")
    cases = library.cases()
    radiographs = [c for c in cases if c.modality != "CT"]
    ct = next(c for c in cases if c.modality == "CT")
    query, near, far = radiographs[0], radiographs[1], ct
    teaching.create_collection(library, "Chest teaching", "Cases of week 12")
    teaching.add_retrieval_result(library, "Chest teaching",
                                  _Result(query.id, [near.id], [far.id]))
    teaching.add_cases(library, "Chest teaching", [radiographs[2].id])
    [item] = [i for i in teaching.collection_items(library, "Chest teaching")
              if i.case_id == query.id]
    teaching.set_key_image(library, item.id, window=(1500, 2500), overlay="gradcam",
                           caption=f"PA film, MRN {query.patient_id}")
    ds = pydicom.dcmread(query.location)
    family = str(ds.PatientName).split("^")[0]
    teaching.save_note(library, query.id,
                       history=f"Mr {family.title()}, {query.patient_id}, seen "
                               f"{ds.StudyDate[:4]}-{ds.StudyDate[4:6]}-{ds.StudyDate[6:]}\n"
                               "Short of breath.",
                       findings="Enlarged cardiac silhouette", diagnosis="Cardiomegaly")
    teaching.tag_cases(library, [query.id], ["heart"])
    date = f"{ds.StudyDate[6:]}/{ds.StudyDate[4:6]}/{ds.StudyDate[:4]}"
    ReportStore(library).attach(
        "case", query.id, f"Patient: {family.title()}  MRN: {query.patient_id}\n"
        f"FINDINGS: Right lower lobe consolidation.\nDictated by Dr {family.title()} on {date}.",
        "typed")
    out = root / "pkg"
    result = teaching.export(library, "Chest teaching", out)
    library.close()
    return {"root": root, "out": out, "result": result, "query": query, "near": near,
            "far": far, "inputs": [c.location for c in cases], "family": family}


def test_package_contains_no_identifying_value(package):
    kinds = (PATIENT | STUDY | DATES | TIMES | INSTITUTION | DEVICE | DESCRIPTIONS |
             CHARACTERISTICS)
    identity = _identity([p for p in map(_path, package["inputs"])], kinds)
    # The synthetic private block also holds the finding labels; the package shows labels
    # on purpose (they are teaching content, not identity).
    identity["strings"] -= {*FINDINGS, NO_FINDING}
    assert package["family"] in identity["names"]
    assert _leaks(package["out"], identity) == []
    assert any("identifying values removed from the note" in w
               for w in package["result"].warnings)


def test_the_report_goes_with_the_answer_without_its_identity(package):
    pages = sorted((package["out"] / "cases").glob("case-*.html"))
    html = "".join(p.read_text(encoding="utf-8") for p in pages)
    assert "Right lower lobe consolidation." in html
    assert html.index("Show the answer") < html.index("Right lower lobe consolidation.")
    assert "Dictated by [name] on [date]" in html
    assert any("report" in w for w in package["result"].warnings)


def _path(location):
    from pathlib import Path

    return Path(location)


def test_package_is_a_dicom_fileset_with_a_for_teaching_kos_per_study(package):
    out = package["out"]
    fileset = FileSet(pydicom.dcmread(out / "dicom" / "DICOMDIR"))
    instances = {str(i.SOPInstanceUID): i for i in fileset}
    images = {i.sop_uid for c in package["result"].cases for i in c.images}
    images |= {i.sop_uid for c in package["result"].cases for v in c.exemplars.values()
               for i in v}
    assert len(images) == 4  # query, similar, dissimilar (CT), plain teaching case
    kos_files = package["result"].kos
    assert len(kos_files) == 4  # one per exported study: each case here has its own study
    referenced = []
    for rel, uids in kos_files.items():
        kos = pydicom.dcmread(out / rel)
        assert kos.SOPClassUID == KOS_SOP_CLASS and kos.Modality == "KO"
        title = kos.ConceptNameCodeSequence[0]
        assert (title.CodeValue, title.CodingSchemeDesignator, title.CodeMeaning) == FOR_TEACHING
        assert kos_references(kos) == uids
        evidence = kos.CurrentRequestedProcedureEvidenceSequence[0]
        assert evidence.StudyInstanceUID == kos.StudyInstanceUID
        evidence_uids = [s.ReferencedSOPInstanceUID for series in
                         evidence.ReferencedSeriesSequence for s in series.ReferencedSOPSequence]
        assert evidence_uids == uids
        for uid in uids:
            image = pydicom.dcmread(instances[uid].path, stop_before_pixels=True)
            # The KOS belongs to the image's (pseudonymous) patient and study.
            assert image.StudyInstanceUID == kos.StudyInstanceUID
            assert image.PatientID == kos.PatientID and image.PatientIdentityRemoved == "YES"
        assert str(kos.SOPInstanceUID) in instances  # listed in the DICOMDIR
        referenced += uids
    assert sorted(referenced) == sorted(images)


def test_key_image_png_is_rendered_with_the_stored_window(package):
    query_case = next(c for c in package["result"].cases if c.case_id == package["query"].id)
    image = query_case.images[0]
    shown = np.asarray(Image.open(package["out"] / image.png))
    expected = render_frame(decode(FileRef.for_path(package["query"].location)), 0,
                            window=Window(1500, 2500))
    assert np.array_equal(shown, expected)
    assert any("overlay 'gradcam' was not drawn" in w for w in package["result"].warnings)


def test_case_page_hides_the_diagnosis_and_shows_exemplars(package):
    query_case = next(c for c in package["result"].cases if c.case_id == package["query"].id)
    page = (package["out"] / query_case.page).read_text(encoding="utf-8")
    history = page.index("Short of breath")
    details = page.index("<details>")
    assert history < details < page.index("Cardiomegaly") < page.index("</details>")
    assert "Similar cases" in page and "Dissimilar cases" in page
    assert set(query_case.exemplars) == {"similar", "dissimilar"}
    index = (package["out"] / "index.html").read_text(encoding="utf-8")
    assert len(re.findall(r"cases/case-\d{3}\.html", index)) == 2  # exemplars are no cases
    manifest = json.loads((package["out"] / "manifest.json").read_text())
    assert manifest["deidentification"]["method"][0].startswith("113100")


def test_export_refuses_a_non_empty_folder(package):
    with pytest.raises(TeachingError, match="not empty"):
        teaching.export(package["root"] / "lib.sqlite", "Chest teaching", package["out"])


def test_burned_in_images_are_withheld_unless_blacked_out(tmp_path):
    from test_deid_burned_in import _image

    (tmp_path / "in").mkdir()
    _image(tmp_path / "in" / "us.dcm")
    with Library(tmp_path / "lib.sqlite") as library:
        import_paths(library, [tmp_path / "in"])
        [case] = library.cases()
        teaching.create_collection(library, "US")
        [item] = teaching.add_cases(library, "US", [case.id])
        withheld = teaching.export(library, "US", tmp_path / "a")
        assert withheld.skipped and "burned-in" in withheld.skipped[0][1].lower() or \
            "identifying text" in withheld.skipped[0][1]
        assert withheld.cases[0].images == [] and not withheld.kos
        teaching.set_key_image(library, item.id, blackout=[(0, 0, 32, 6)])
        cleaned = teaching.export(library, "US", tmp_path / "b")
    [image] = cleaned.cases[0].images
    ds = pydicom.dcmread(tmp_path / "b" / image.dicom)
    assert (ds.pixel_array[:6] == 0).all()
    assert "113101" in [c.CodeValue for c in ds.DeidentificationMethodCodeSequence]
    png = np.asarray(Image.open(tmp_path / "b" / image.png))
    assert (png[:6] == png.min()).all()


def test_cli_export_prints_json(package, tmp_path, capsys):
    from medviewer.cli import teach_cmd

    parser = argparse.ArgumentParser(prog="medviewer")
    teach_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["teach", "export", "Chest teaching", "--library",
                              str(package["root"] / "lib.sqlite"), "--out",
                              str(tmp_path / "cli"), "--dates", "shift", "--no-exemplars",
                              "--json"])
    assert args.func(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["cases"]) == 2 and all(not c["exemplars"] for c in data["cases"])
    ds = pydicom.dcmread(tmp_path / "cli" / data["cases"][0]["images"][0]["dicom"])
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"

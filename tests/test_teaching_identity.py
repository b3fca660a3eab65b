"""Teaching content survives export and the quiz; the patient's identity does not.

Notes carry planted names, IDs, dates and contacts next to the diagnosis.  The
identity scan of ``test_deid_identity_scan`` runs over every file of the package,
and over everything the quiz prints (paths included); the diagnosis "Emphysema"
must survive in the notes and in the collection's title.
"""

from __future__ import annotations

import argparse
import json
import re

import pydicom
import pytest
from test_deid_identity_scan import (CHARACTERISTICS, DATES, DESCRIPTIONS, DEVICE, INSTITUTION,
                                     PATIENT, STUDY, TIMES, _identity, _leaks)

from medviewer.services import teaching
from medviewer.services.importer import import_paths
from medviewer.store import Library
from medviewer.synthetic import FINDINGS, NO_FINDING, generate_dataset
from medviewer.teaching import QuizError, TeachingError
from medviewer.teaching.package_reader import PackageQuiz, open_package

PLANTED = ("QUINTERO", "ROE", "jane.roe@example.org", "555-123-4567", "7734512")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("identity")
    generate_dataset(root / "ds", cases=3, seed=31, size=64, png=False)
    library = Library(root / "lib.sqlite")
    import_paths(library, [root / "ds" / "dicom"], labels=root / "ds" / "labels.csv")
    case = next(c for c in library.cases() if c.modality != "CT")
    ds = pydicom.dcmread(case.location)
    family, given = str(ds.PatientName).split("^")[:2]
    title = "Emphysema: week 3"
    teaching.create_collection(library, title, f"Collected for {given} {family}'s team")
    key = teaching.add_current_case(library, title, case.id, window=(2000, 4000),
                                    caption=f"PA film of {family.title()}, MRN {case.patient_id}")
    teaching.save_note_and_tags(
        library, case.id, ["copd", family.title()],
        history=f"{given.title()} {family.title()}, {case.patient_id}, seen by Dr Quintero on "
                f"2021-03-04. Call 555-123-4567.",
        findings="Hyperinflated lungs, flattened diaphragms.",
        diagnosis=f"Emphysema in {family.title()}",
        discussion="Centrilobular emphysema; compare Mrs. Roe's film (jane.roe@example.org), "
                   "MRN 7734512.",
        citations="Fleischner Society glossary.")
    result = teaching.export(library, title, root / "pkg")
    library.close()
    return {"root": root, "out": root / "pkg", "result": result, "case": case, "key": key,
            "family": family, "given": given, "inputs": [c.location for c in
                                                          Library(root / "lib.sqlite").cases()]}


def _identity_of(exported):
    from pathlib import Path

    kinds = (PATIENT | STUDY | DATES | TIMES | INSTITUTION | DEVICE | DESCRIPTIONS |
             CHARACTERISTICS)
    identity = _identity([Path(p) for p in exported["inputs"]], kinds)
    identity["strings"] -= {*FINDINGS, NO_FINDING}  # teaching content, not identity
    identity["strings"] |= {p for p in PLANTED if not p.isdigit()}
    identity["names"] |= {"QUINTERO", "ROE"}
    return identity


def test_package_keeps_the_diagnosis_and_loses_every_planted_identity(exported):
    out = exported["out"]
    assert _leaks(out, _identity_of(exported)) == []
    for path in [p for p in out.rglob("*") if p.suffix in (".html", ".json")]:
        text = path.read_text(encoding="utf-8")
        for planted in PLANTED:
            assert planted.lower() not in text.lower(), (path.name, planted)
    data = json.loads((out / "teaching.json").read_text())
    [case] = data["cases"]
    assert data["title"] == "Emphysema: week 3"
    assert case["diagnosis"] == "Emphysema in [name]"
    assert "Centrilobular emphysema" in case["discussion"]
    assert case["findings"] == "Hyperinflated lungs, flattened diaphragms."
    assert case["tags"] == ["copd", "[name]"] or case["tags"] == ["[name]", "copd"]
    index = (out / "index.html").read_text()
    page = (out / case["page"]).read_text()
    assert "<title>Emphysema: week 3</title>" in index
    assert "Emphysema in [name]" in page and "Emphysema: week 3" in page


def test_export_summary_says_what_was_removed(exported):
    result = exported["result"]
    total = result.removed["total"]
    assert total["name"] >= 5 and total["identifier"] >= 2
    assert total["date"] == 1 and total["contact"] == 2
    assert "case 1 history" in result.removed["texts"]
    assert "collection description" in result.removed["texts"]
    assert "collection title" not in result.removed["texts"]  # nothing of identity in it
    assert "case 1 diagnosis" in result.removed["texts"]
    summary = result.removed_summary()
    assert summary.startswith("Removed from the teaching text:") and "names" in summary
    assert any("identifying values removed from the note" in w for w in result.warnings)
    manifest = json.loads((exported["out"] / "manifest.json").read_text())
    assert manifest["removed_from_text"] == total


def test_package_opens_read_only_for_browsing_and_quiz(exported, tmp_path):
    import shutil

    copy = tmp_path / "elsewhere"
    shutil.copytree(exported["out"], copy)  # "another machine": no library beside it
    before = {p: p.stat().st_mtime_ns for p in copy.rglob("*")}
    package = open_package(copy)
    assert package.title == "Emphysema: week 3" and len(package.cases) == 1
    case = package.cases[0]
    assert case.images and all(i.png.is_file() and copy in i.png.parents for i in case.images)
    assert package.search(text="emphysema") == [case] and package.search(tag="copd") == [case]
    assert package.search(modality="CT") == []
    quiz = PackageQuiz(package, "resident-2")
    assert quiz.next_case() is case
    revealed = quiz.answer(case, "emphysema")
    assert revealed.matched and revealed.case.diagnosis.startswith("Emphysema")
    with pytest.raises(QuizError, match="answered already"):
        quiz.answer(case, "again")
    quiz.mark(case, True)
    assert quiz.score() == {"learner": "resident-2", "questions": 1, "answered": 1,
                            "matched": 1, "correct": 1, "graded": 1}
    assert quiz.next_case() is None
    assert {p: p.stat().st_mtime_ns for p in copy.rglob("*")} == before  # nothing written


def test_a_tampered_package_is_refused_with_a_clear_error(exported, tmp_path):
    import shutil

    copy = tmp_path / "tampered"
    shutil.copytree(exported["out"], copy)
    data = json.loads((copy / "teaching.json").read_text())
    data["cases"][0]["images"][0]["png"] = "../../../etc/passwd"
    (copy / "teaching.json").write_text(json.dumps(data))
    with pytest.raises(TeachingError, match="invalid"):
        open_package(copy)
    with pytest.raises(TeachingError, match="not a MedViewer teaching package"):
        open_package(tmp_path)


def _cli(argv):
    from medviewer.cli import teach_cmd

    parser = argparse.ArgumentParser(prog="medviewer")
    teach_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_quiz_prints_no_identifier_of_the_patient(exported, tmp_path, capsys):
    lib = str(exported["root"] / "lib.sqlite")
    case = exported["case"]
    assert _cli(["teach", "quiz-start", "Emphysema: week 3", "--trainee", "r1", "--library",
                 lib, "--json"]) == 0
    session = json.loads(capsys.readouterr().out)["id"]
    printed = []
    for json_flag in (["--json"], []):
        assert _cli(["teach", "quiz-next", str(session), "--library", lib,
                     "--images", str(tmp_path / "q"), *json_flag]) == 0
        printed.append(capsys.readouterr().out)
    data = json.loads(printed[0])
    assert [p.rsplit("/", 1)[-1] for p in data["images"]] == ["question-1-1.png"]
    assert (tmp_path / "q" / "question-1-1.png").is_file()
    # The library path of the image holds the patient's folder and ID: never printed.
    from pathlib import Path

    identity = _identity_of(exported)
    words = {s.upper() for s in identity["strings"] if re.search(r"[A-Za-z]", s)}
    for out in printed:
        upper = out.upper()
        assert case.location.upper() not in upper
        assert case.patient_id.upper() not in upper
        assert Path(case.location).parent.name.upper() not in upper
        assert not [w for w in words if w in upper]
        assert not re.search(r"\b(" + "|".join(map(re.escape, identity["names"])) + r")\b",
                             upper)
    assert _cli(["teach", "quiz-answer", str(session), str(case.id), "emphysema", "--library",
                 lib]) == 0
    revealed = capsys.readouterr().out
    assert "Emphysema" in revealed


def test_quiz_withholds_images_that_may_show_burned_in_text(tmp_path):
    from test_deid_burned_in import _image

    from medviewer.services.teaching_quiz import LibraryQuiz

    (tmp_path / "in").mkdir()
    _image(tmp_path / "in" / "us.dcm")
    with Library(tmp_path / "lib.sqlite") as library:
        import_paths(library, [tmp_path / "in"])
        [case] = library.cases()
        teaching.create_collection(library, "US")
        [item] = teaching.add_cases(library, "US", [case.id])
    quiz = LibraryQuiz(tmp_path / "lib.sqlite", "US", "r2")
    card = quiz.next()
    assert quiz.images(card, revealed=False) == [] and quiz.withheld == 1
    teaching.set_key_image(tmp_path / "lib.sqlite", item.id, blackout=[(0, 0, 32, 6)])
    card = quiz.next()
    [pixels] = quiz.images(card, revealed=False)
    assert quiz.withheld == 0 and (pixels[:6] == 0).all()


WRITER = """
import os, sys
from medviewer.services import teaching
library, case = sys.argv[1], int(sys.argv[2])
teaching.create_collection(library, "Killed")
print("created", flush=True)
teaching.rename_collection(library, "Killed", "Renamed before the kill")
print("renamed", flush=True)
teaching.add_current_case(library, "Renamed before the kill", case, window=(40, 400),
                          caption="as shown")
print("added", flush=True)
teaching.save_note_and_tags(library, case, ["kept"], diagnosis="Emphysema")
print("saved", flush=True)
os.kill(os.getpid(), 9)  # no clean shutdown: nothing is flushed or closed after the save
"""


def test_teaching_changes_survive_a_kill(exported, tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    library = tmp_path / "lib.sqlite"
    shutil.copy(exported["root"] / "lib.sqlite", library)
    case = exported["case"].id
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.run([sys.executable, str(script), str(library), str(case)],
                          capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert proc.stdout.split() == ["created", "renamed", "added", "saved"]
    assert proc.returncode != 0  # killed
    names = [c.name for c in teaching.list_collections(library)]
    assert "Renamed before the kill" in names and "Killed" not in names
    [item] = teaching.collection_items(library, "Renamed before the kill")
    [key] = item.key_images
    assert (key.window_center, key.window_width, key.caption) == (40.0, 400.0, "as shown")
    assert teaching.get_note(library, case).diagnosis == "Emphysema"
    assert teaching.case_tags(library, case) == ["kept"]

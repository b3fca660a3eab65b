"""Teaching collections, exemplars, key images, notes, tags, search and the quiz."""

from __future__ import annotations

import argparse
import json
import sqlite3

import pytest

from medviewer.services import teaching
from medviewer.services.importer import import_paths
from medviewer.store import Library
from medviewer.synthetic import generate_dataset
from medviewer.teaching import CaseNotFoundError, QuizError, TeachingError


@pytest.fixture(scope="module")
def library_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("teach")
    generate_dataset(root / "ds", cases=5, seed=11, size=64, ct_series=1, ct_size=32,
                     ct_slices=4, png=False)
    path = root / "lib.sqlite"
    with Library(path) as library:
        import_paths(library, [root / "ds" / "dicom"], labels=root / "ds" / "labels.csv")
    return path


@pytest.fixture
def library(library_path, tmp_path):
    """A fresh copy of the imported library per test (tests write to it)."""
    copy = tmp_path / "lib.sqlite"
    source = sqlite3.connect(library_path)
    target = sqlite3.connect(copy)
    source.backup(target)
    source.close()
    target.close()
    with Library(copy) as lib:
        yield lib


def _cases(library):
    return [c.id for c in library.cases()]


def test_collections_hold_cases_once_in_order(library):
    c1, c2, c3 = _cases(library)[:3]
    teaching.create_collection(library, "Chest", "basics")
    teaching.add_cases(library, "Chest", [c2, c1])
    teaching.add_cases(library, "Chest", [c1, c3])  # c1 again: no duplicate
    items = teaching.collection_items(library, "Chest")
    assert [(i.case_id, i.role) for i in items] == [(c2, "case"), (c1, "case"), (c3, "case")]
    teaching.move_item(library, items[2].id, 0)
    assert [i.case_id for i in teaching.collection_items(library, "Chest")] == [c3, c2, c1]
    [info] = teaching.list_collections(library)
    assert (info.name, info.cases, info.exemplars) == ("Chest", 3, 0)
    with pytest.raises(TeachingError, match="exists already"):
        teaching.create_collection(library, "Chest")
    with pytest.raises(CaseNotFoundError, match="99999"):
        teaching.add_cases(library, "Chest", [99999])


class _Hit:
    def __init__(self, case_id, rank, distance):
        self.case_id, self.rank, self.distance = case_id, rank, distance


class _Result:
    """The shape of medviewer.retrieval.search.SearchResult that teaching relies on."""

    def __init__(self, query, nearest, farthest):
        self.query_case, self.model_sha256 = query, "ab" * 32
        self.nearest = [_Hit(c, r + 1, 0.1 * (r + 1)) for r, c in enumerate(nearest)]
        self.farthest = [_Hit(c, r + 1, 0.9 - 0.1 * r) for r, c in enumerate(farthest)]


def test_a_retrieval_result_becomes_a_case_with_exemplars(library):
    q, a, b, c, d = _cases(library)[:5]
    teaching.create_collection(library, "From search")
    added = teaching.add_retrieval_result(library, "From search", _Result(q, [q, a, b], [c, d]),
                                          dissimilar=1)
    items = teaching.collection_items(library, "From search")
    anchor = items[0]
    assert (anchor.case_id, anchor.role) == (q, "case")
    # The query itself is dropped from its hits; similar come before dissimilar.
    assert [(i.case_id, i.role, i.exemplar_of) for i in items[1:]] == [
        (a, "similar", anchor.id), (b, "similar", anchor.id), (c, "dissimilar", anchor.id)]
    assert items[1].score == pytest.approx(0.2) and "retrieval abababab" in items[1].source
    assert len(added) == 3
    # Removing the teaching case removes its exemplars.
    teaching.remove_item(library, anchor.id)
    assert teaching.collection_items(library, "From search") == []
    with pytest.raises(TeachingError, match="own exemplar"):
        teaching.add_exemplars(library, "From search", q, [q], "similar")
    with pytest.raises(TeachingError, match="role"):
        teaching.add_exemplars(library, "From search", q, [a], "related")


def test_key_images_keep_window_overlay_and_blackout(library):
    case = _cases(library)[0]
    teaching.create_collection(library, "Keys")
    [item] = teaching.add_cases(library, "Keys", [case])
    key = teaching.set_key_image(library, item.id, window=(40, 400), overlay="gradcam:block11",
                                 caption="note the heart", blackout=[(0, 0, 10, 5)])
    assert (key.window_center, key.window_width, key.overlay) == (40.0, 400.0, "gradcam:block11")
    assert key.blackout == ((0, 0, 10, 5),)
    again = teaching.set_key_image(library, item.id, window=(50, 350))  # same image: updated
    assert again.id == key.id and again.window_center == 50.0
    with pytest.raises(TeachingError, match="frame"):
        teaching.set_key_image(library, item.id, frame=3)
    with pytest.raises(TeachingError, match="positive"):
        teaching.set_key_image(library, item.id, blackout=[(0, 0, 0, 5)])


def test_notes_update_field_by_field_and_survive_reopening(library):
    case = _cases(library)[0]
    teaching.save_note(library, case, history="Cough for 3 weeks", diagnosis="Cardiomegaly")
    teaching.save_note(library, case, findings="Enlarged cardiac silhouette")
    path = library.path
    library.close()
    with Library(path) as reopened:
        note = teaching.get_note(reopened, case)
    assert (note.history, note.findings, note.diagnosis) == (
        "Cough for 3 weeks", "Enlarged cardiac silhouette", "Cardiomegaly")
    with pytest.raises(TeachingError, match="unknown note fields"):
        teaching.save_note(path, case, impression="x")


def test_search_by_label_tag_note_modality_and_date(library):
    cases = library.cases()
    ct = next(c for c in cases if c.modality == "CT")
    labelled = next(c for c in cases if c.labels and c.labels != ("No Finding",))
    teaching.tag_cases(library, [ct.id], ["Volume", "classic "])
    teaching.save_note(library, labelled.id, discussion="Classic silhouette sign")
    assert [h.case_id for h in teaching.search(library, tag="volume")] == [ct.id]
    assert [h.case_id for h in teaching.search(library, text="SILHOUETTE")] == [labelled.id]
    assert {h.case_id for h in teaching.search(library, modality="ct")} == {ct.id}
    by_label = teaching.search(library, label=labelled.labels[0].lower())
    assert labelled.id in {h.case_id for h in by_label}
    assert all(labelled.labels[0] in h.labels for h in by_label)
    dates = sorted(h.study_date for h in teaching.search(library))
    middle = dates[len(dates) // 2]
    later = teaching.search(library, date_from=middle)
    assert later and all(h.study_date >= middle for h in later)
    assert len(later) < len(dates)
    both = teaching.search(library, tag="classic", modality="DX")
    assert both == []  # every criterion must match
    assert teaching.all_tags(library) == [("classic", 1), ("Volume", 1)]


def test_quiz_hides_the_diagnosis_until_answered(library):
    c1, c2, c3 = _cases(library)[:3]
    teaching.create_collection(library, "Quiz")
    teaching.add_cases(library, "Quiz", [c1, c2])
    teaching.add_exemplars(library, "Quiz", c1, [c3], "similar")  # exemplars are no questions
    teaching.save_note(library, c1, history="Breathless", diagnosis="Cardiomegaly")
    session = teaching.start_quiz(library, "Quiz", "trainee-7")
    assert session.questions == 2
    question = teaching.next_question(library, session.id)
    assert (question.case_id, question.history, question.number) == (c1, "Breathless", 1)
    assert not hasattr(question, "diagnosis")
    with pytest.raises(QuizError, match="not been answered"):
        teaching.reveal(library, session.id, c1)
    feedback = teaching.answer(library, session.id, c1, "cardiomegaly probably")
    assert feedback.diagnosis == "Cardiomegaly" and feedback.matched
    with pytest.raises(QuizError, match="answered already"):
        teaching.answer(library, session.id, c1, "something else")
    teaching.mark_answer(library, session.id, c1, True)
    assert teaching.next_question(library, session.id).case_id == c2
    teaching.answer(library, session.id, c2, "pneumothorax")
    assert teaching.next_question(library, session.id) is None
    result = teaching.quiz_results(library, session.id)
    assert (result.answered, result.correct, result.graded, result.matched) == (2, 1, 1, 1)
    assert teaching.quiz_session(library, session.id).finished_at


def _cli(argv):
    from medviewer.cli import teach_cmd

    parser = argparse.ArgumentParser(prog="medviewer")
    teach_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_curates_a_collection_headless(library, capsys):
    lib = str(library.path)
    case, other = _cases(library)[:2]
    library.close()
    assert _cli(["teach", "create", "CLI set", "--library", lib]) == 0
    assert _cli(["teach", "add", "CLI set", str(case), "--library", lib]) == 0
    assert _cli(["teach", "add", "CLI set", str(other), "--role", "similar", "--anchor",
                 str(case), "--library", lib]) == 0
    assert _cli(["teach", "key", "CLI set", str(case), "--window", "40,400", "--library",
                 lib]) == 0
    assert _cli(["teach", "note", str(case), "--diagnosis", "Normal", "--library", lib]) == 0
    assert _cli(["teach", "tag", str(case), "--tags", "normal,chest", "--library", lib]) == 0
    capsys.readouterr()
    _cli(["teach", "show", "CLI set", "--library", lib, "--json"])
    shown = json.loads(capsys.readouterr().out)
    assert [(i["case_id"], i["role"]) for i in shown] == [(case, "case"), (other, "similar")]
    assert shown[0]["key_images"][0]["window_width"] == 400.0
    _cli(["teach", "search", "--tag", "chest", "--library", lib, "--json"])
    assert [h["case_id"] for h in json.loads(capsys.readouterr().out)] == [case]

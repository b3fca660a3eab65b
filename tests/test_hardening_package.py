"""Importing a reader's package validates every row against the home study and stores
nothing of a bad package; home work in progress is never overwritten silently."""

from __future__ import annotations

import json
import sqlite3

import pytest
from helpers_study import brute_force_neighbours, make_library

from medviewer.store import Library
from medviewer.study.design import create_study, select_queries
from medviewer.study.package import PackageError, export_package, import_results
from medviewer.study.session import ReadingSession, open_study_db
from medviewer.study.tidy import tidy_rows


@pytest.fixture
def package(tmp_path):
    library = make_library(tmp_path)
    with Library(library) as lib:
        queries = select_queries(lib.cases(), 4, seed=1, stratify="label")
        summary = create_study(lib, "pilot", queries, brute_force_neighbours(lib), seed=7,
                               bundle_sha256="ab" * 32, index_version="exact-1")

    def loader(case_id):
        import numpy as np

        from medviewer.dicom.pixels import DecodedImage

        return DecodedImage(frames=np.zeros((1, 4, 4), np.uint8), photometric="MONOCHROME2",
                            windows=[], pixel_spacing=None), 0

    folder = export_package(library, summary.id, "carol", tmp_path / "pkg", loader)
    remote = open_study_db(folder / "package.sqlite")
    session = ReadingSession(remote, summary.id, "carol")
    for view in session.queries:
        for candidate, _ in view.candidates[:5]:
            session.toggle_pick(view.query_id, candidate)
        session.finish(view.query_id)
    remote.close()
    return library, summary, folder


def _responses(library, reader="carol"):
    conn = sqlite3.connect(library)
    rows = conn.execute("SELECT s.query_ref, s.status, s.picked FROM study_responses s JOIN "
                        "study_readers r ON r.id = s.reader_ref WHERE r.name = ?",
                        (reader,)).fetchall()
    conn.close()
    return rows


def _tamper(folder, sql, *args):
    conn = sqlite3.connect(folder / "package.sqlite")
    conn.execute(sql, args)
    conn.commit()
    conn.close()


FIRST = "WHERE id = (SELECT MIN(id) FROM study_responses)"
ALL_CANDIDATES = ("(SELECT json_group_array(id) FROM study_candidates WHERE query_ref = "
                  "study_responses.query_ref)")


@pytest.mark.parametrize("change,words", [
    (f"UPDATE study_responses SET query_ref = 999 {FIRST}", "query 999"),
    (f"UPDATE study_responses SET picked = '[1, 2, 3, 4, 99999]' {FIRST}", "not a candidate"),
    (f"UPDATE study_responses SET picked = {ALL_CANDIDATES} {FIRST}", "10 picks"),
    (f"UPDATE study_responses SET picked = 'not json' {FIRST}", "picks"),
    (f"UPDATE study_responses SET status = 'answered', picked = '[]' {FIRST}", "0 picks"),
])
def test_invalid_rows_refuse_the_whole_package(package, change, words):
    library, summary, folder = package
    _tamper(folder, change)
    with pytest.raises(PackageError, match=words):
        import_results(library, folder)
    assert _responses(library) == []  # nothing of it stored
    conn = open_study_db(library)
    tidy_rows(conn, summary.id)  # the study still reads and exports
    conn.close()


def test_answers_to_another_studys_queries_are_refused(package, tmp_path):
    library, _summary, folder = package
    with Library(library) as lib:
        other = create_study(lib, "other", select_queries(lib.cases(), 2, seed=9,
                                                          stratify="label"),
                             brute_force_neighbours(lib), seed=3, bundle_sha256="cd" * 32,
                             index_version="exact-1")
        foreign = lib.conn.execute("SELECT id FROM study_queries WHERE study_ref = ?",
                                   (other.id,)).fetchone()[0]
    _tamper(folder, "UPDATE study_responses SET query_ref = ? WHERE id = (SELECT MIN(id) FROM "
            "study_responses)", foreign)
    with pytest.raises(PackageError, match=f"query {foreign}"):
        import_results(library, folder)
    assert _responses(library) == []


def test_a_missing_database_is_refused_and_not_created(package):
    library, _summary, folder = package
    (folder / "package.sqlite").unlink()
    with pytest.raises(PackageError, match="package.sqlite"):
        import_results(library, folder)
    assert not (folder / "package.sqlite").exists()


def test_home_work_in_progress_is_kept_and_counted_as_a_conflict(package):
    library, summary, folder = package
    home = open_study_db(library)
    carol = ReadingSession(home, summary.id, "carol")
    view = carol.queries[0]
    mine = view.candidates[-1][0]
    carol.toggle_pick(view.query_id, mine)  # in progress at home, one pick
    report = import_results(library, folder)  # --prefer local (the default)
    assert carol.response(view.query_id).picked == {mine}
    assert carol.response(view.query_id).status == "in_progress"
    assert [c["query"] for c in report.conflicts] == [view.query_id]
    assert report.imported == len(carol.queries) - 1
    home.close()
    assert json.loads(json.dumps(report.as_dict()))["conflicts"]

"""Reader studies: design, blinded reading, durability under kill, packages, tidy export."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from helpers_study import LABELS, brute_force_neighbours, make_library
from medviewer.store import Library
from medviewer.study.design import StudyDesignError, create_study, select_queries
from medviewer.study.package import export_package, import_results, package_image, read_manifest
from medviewer.study.session import ReadingError, ReadingSession, open_study_db
from medviewer.study.tidy import TIDY_COLUMNS, tidy_rows, write_tidy_csv

@pytest.fixture
def library(tmp_path):
    return make_library(tmp_path)


@pytest.fixture
def study(library):
    with Library(library) as lib:
        queries = select_queries(lib.cases(), 6, seed=1, stratify="label")
        summary = create_study(lib, "pilot", queries, brute_force_neighbours(lib), seed=7,
                               bundle_sha256="ab" * 32, index_version="exact-1")
    return library, summary


def test_stratified_selection_covers_every_label_group(library):
    with Library(library) as lib:
        chosen = select_queries(lib.cases(), 6, seed=3, stratify="label")
    assert sorted(c.labels[0] for c in chosen) == sorted(LABELS * 2)


def test_design_freezes_candidates_and_refuses_bad_neighbours(study):
    library, summary = study
    conn = open_study_db(library)
    counts = conn.execute("SELECT q.id, SUM(c.model_closest), COUNT(*) FROM study_queries q JOIN "
                          "study_candidates c ON c.query_ref = q.id GROUP BY q.id").fetchall()
    assert len(counts) == 6 and all(n_close == 5 and n == 10 for _q, n_close, n in counts)
    with Library(library) as lib:
        query = lib.cases()[0]
        with pytest.raises(StudyDesignError, match="query's patient|own candidate"):
            create_study(lib, "bad", [query], lambda cid: ([(cid, 0.0)] * 5, [(cid, 1.0)] * 5),
                         seed=1, bundle_sha256="", index_version="")
        with pytest.raises(StudyDesignError, match="exists already"):
            create_study(lib, "pilot", [query], brute_force_neighbours(lib), seed=1,
                         bundle_sha256="", index_version="")


def test_readers_get_their_own_blinded_order(study):
    library, summary = study
    conn = open_study_db(library)
    ann = ReadingSession(conn, summary.id, "ann")
    bob = ReadingSession(conn, summary.id, "bob")
    assert [q.query_id for q in ann.queries] != [q.query_id for q in bob.queries]
    assert sorted(q.query_id for q in ann.queries) == sorted(q.query_id for q in bob.queries)
    again = ReadingSession(conn, summary.id, "ann")
    assert again.queries == ann.queries  # the same reader always sees the same order
    # The view carries only ids: no distances, ranks or closest flags.
    assert all(len(pair) == 2 for q in ann.queries for pair in q.candidates)


def test_exactly_five_picks_to_go_on_and_audit_trail(study):
    library, summary = study
    conn = open_study_db(library)
    session = ReadingSession(conn, summary.id, "ann")
    query = session.queries[0]
    candidates = [c for c, _ in query.candidates]
    for c in candidates[:4]:
        session.toggle_pick(query.query_id, c)
    with pytest.raises(ReadingError, match="exactly 5"):
        session.finish(query.query_id)
    session.toggle_pick(query.query_id, candidates[4])
    with pytest.raises(ReadingError, match="picked already"):
        session.toggle_pick(query.query_id, candidates[5])
    session.finish(query.query_id)
    assert session.first_unanswered() == 1
    session.toggle_pick(query.query_id, candidates[0])  # a change after answering reopens it
    assert session.response(query.query_id).status == "in_progress"
    assert session.first_unanswered() == 0
    audit = conn.execute("SELECT action, before, after FROM study_audit ORDER BY id").fetchall()
    assert [a.split(": ")[1] for a, _b, _c in audit] == ["pick"] * 5 + ["answer", "unpick"]
    assert json.loads(audit[-1][1])["status"] == "answered"
    assert len(json.loads(audit[-1][2])["picked"]) == 4


def test_skip_needs_reason_and_counts_as_missing(study):
    library, summary = study
    conn = open_study_db(library)
    session = ReadingSession(conn, summary.id, "ann")
    first = session.queries[0].query_id
    with pytest.raises(ReadingError):
        session.skip(first, " ")
    session.skip(first, "motion artefact")
    rows = tidy_rows(conn, summary.id)
    assert len(rows) == 10 and all(r["picked"] == "" for r in rows)
    assert session.progress() == (0, 1, 6)


def answer_all(session: ReadingSession, rule) -> None:
    for view in session.queries:
        for c, case in view.candidates:
            if rule(view, c, case):
                session.toggle_pick(view.query_id, c)
        session.finish(view.query_id)


def test_tidy_export_feeds_the_statistics(study, tmp_path):
    from medviewer.stats import analyse_reader_study, load_picks

    library, summary = study
    conn = open_study_db(library)
    closest = {c for (c,) in conn.execute("SELECT id FROM study_candidates WHERE model_closest = 1")}
    # Two readers who agree with the model completely.
    for name in ("ann", "bob"):
        answer_all(ReadingSession(conn, summary.id, name), lambda v, c, case: c in closest)
    out = tmp_path / "picks.csv"
    assert write_tidy_csv(conn, summary.id, out) == 2 * 6 * 10
    with open(out) as fh:
        assert tuple(next(csv.reader(fh))) == TIDY_COLUMNS
    report = analyse_reader_study(load_picks(out), n_bootstrap=200, seed=0)
    assert report.fleiss_kappa.estimate == pytest.approx(1.0)
    assert report.cohen_kappa_consensus_model.estimate == pytest.approx(1.0)


def test_package_round_trip_merges_and_detects_conflicts(study, tmp_path):
    library, summary = study

    def loader(case_id):
        from medviewer.dicom.pixels import decode
        with Library(library) as lib:
            location = lib.conn.execute("SELECT i.location FROM cases c JOIN instances i ON "
                                        "i.id = c.instance_ref WHERE c.id = ?", (case_id,)).fetchone()[0]
        from medviewer.dicom.sources import FileRef
        return decode(FileRef.from_display(location)), 0

    package = export_package(library, summary.id, "carol", tmp_path / "pkg", loader)
    assert read_manifest(package)["reader"] == "carol"
    remote = open_study_db(package / "package.sqlite")
    # Blinded on the reader's machine: no closest flags, ranks or distances at all.
    assert remote.execute("SELECT MAX(model_closest), MAX(rank), MAX(distance) FROM "
                          "study_candidates").fetchone() == (0, 0, 0)
    # The practice query works on the reader's machine too, from the package's images.
    from medviewer.study.practice import practice_view

    remote_study = remote.execute("SELECT id FROM reader_studies").fetchone()[0]
    practice = practice_view(remote, remote_study, ReadingSession(remote, remote_study,
                                                                 "carol").seed)
    assert practice is not None
    assert package_image(package, practice.candidates[0][1]).frames[0].size
    session = ReadingSession(remote, summary.id, "carol")
    first_case = session.queries[0].candidates[0][1]
    assert package_image(package, first_case).frames.shape[0] == 1
    answer_all(session, lambda v, c, case: [x for x, _ in v.candidates].index(c) < 5)
    remote.close()
    report = import_results(library, package)
    assert (report.imported, report.duplicates, report.conflicts) == (6, 0, [])
    again = import_results(library, package)
    assert (again.imported, again.duplicates) == (0, 6)
    # Carol changes one answer at home; importing the package now reports a conflict.
    home = open_study_db(library)
    carol_home = ReadingSession(home, summary.id, "carol")
    view = carol_home.queries[0]
    picked = carol_home.response(view.query_id).picked
    carol_home.toggle_pick(view.query_id, sorted(picked)[0])
    other = next(c for c, _ in view.candidates if c not in picked)
    carol_home.toggle_pick(view.query_id, other)
    carol_home.finish(view.query_id)
    third = import_results(library, package)
    assert len(third.conflicts) == 1 and third.conflicts[0]["query"] == view.query_id
    assert carol_home.response(view.query_id).picked != picked  # home answer kept


WRITER = textwrap.dedent("""
    import sys
    from medviewer.study.session import ReadingSession, open_study_db
    conn = open_study_db(sys.argv[1])
    session = ReadingSession(conn, int(sys.argv[2]), "kill-test")
    for view in session.queries:
        for candidate, _case in view.candidates[:5]:
            session.toggle_pick(view.query_id, candidate)
            # Acknowledge only after the durable write returned, as the screen does.
            print(view.query_id, candidate, flush=True)
        session.finish(view.query_id)
        print("done", view.query_id, flush=True)
    import time
    time.sleep(30)
""")


def test_kill_mid_session_loses_no_acknowledged_pick(study, tmp_path):
    library, summary = study
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen([sys.executable, str(script), str(library), str(summary.id)],
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    acknowledged = []
    for line in proc.stdout:
        parts = line.split()
        if parts[0] != "done":
            acknowledged.append((int(parts[0]), int(parts[1])))
        if len(acknowledged) == 17:  # mid-way through the fourth query
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    conn = open_study_db(library)
    session = ReadingSession(conn, summary.id, "kill-test")
    for query_id, candidate in acknowledged:
        assert candidate in session.response(query_id).picked
    assert session.first_unanswered() == 3  # resumes at the first unanswered query


def test_design_refuses_another_image_of_the_querys_patient_and_out_of_domain_cases(library):
    with Library(library) as lib:
        cases = lib.cases()
        query = cases[0]
        sibling = next(c for c in cases if c.patient_id == query.patient_id and c.id != query.id)
        honest = brute_force_neighbours(lib)

        def leaky(case_id):
            near, far = honest(case_id)
            return [(sibling.id, 0.0)] + near[1:], far

        with pytest.raises(StudyDesignError, match="other images of the query's patient"):
            create_study(lib, "leak", [query], leaky, seed=1, bundle_sha256="",
                         index_version="")
        outside = {honest(query.id)[1][0][0]}

        def check(case):
            return "not a chest radiograph" if case.id in outside else ""

        with pytest.raises(StudyDesignError, match="candidate case .* outside the model's domain"):
            create_study(lib, "domain", [query], honest, seed=1, bundle_sha256="",
                         index_version="", domain_check=check)
        summary = create_study(lib, "fine", [query], honest, seed=1, bundle_sha256="",
                               index_version="", domain_check=lambda case: "")
    assert summary.queries == 1


def test_practice_query_uses_no_query_image_and_stores_nothing(study):
    from medviewer.study.practice import PRACTICE_QUERY_ID, practice_view

    library, summary = study
    conn = open_study_db(library)
    session = ReadingSession(conn, summary.id, "pat")
    view = practice_view(conn, summary.id, session.seed)
    queries = {v.case_id for v in session.queries}
    assert view.query_id == PRACTICE_QUERY_ID and len(view.candidates) == 10
    shown = {view.case_id} | {case for _c, case in view.candidates}
    assert len(shown) == 11 and not shown & queries
    assert all(c < 0 for c, _case in view.candidates)  # never a real candidate id
    assert practice_view(conn, summary.id, session.seed) == view  # the reader's, seeded


def test_reader_summary_has_time_per_query(study, tmp_path):
    from medviewer.study.tidy import reader_summary, write_reader_summary_csv

    library, summary = study
    conn = open_study_db(library)
    for reader, skip in (("ana", False), ("ben", True)):
        session = ReadingSession(conn, summary.id, reader)
        for view in session.queries[:2]:
            session.start_timer(view.query_id)
            if skip:
                session.skip(view.query_id, "image quality")
                continue
            for candidate, _case in view.candidates[:5]:
                session.toggle_pick(view.query_id, candidate)
            session.finish(view.query_id)
    rows = {r["reader"]: r for r in reader_summary(conn, summary.id)}
    assert (rows["ana"]["answered"], rows["ana"]["skipped"]) == (2, 0)
    assert (rows["ben"]["answered"], rows["ben"]["skipped"]) == (0, 2)
    seconds = [float(r[0]) for r in conn.execute(
        "SELECT s.seconds FROM study_responses s JOIN study_readers r ON r.id = s.reader_ref "
        "WHERE r.name = 'ana'")]
    assert rows["ana"]["total_seconds"] == pytest.approx(sum(seconds))
    out = tmp_path / "summary.csv"
    assert write_reader_summary_csv(list(rows.values()), out) == 2
    header = out.read_text().splitlines()[0].split(",")
    assert header[:4] == ["reader", "queries", "answered", "skipped"]
    assert "median_seconds" in header

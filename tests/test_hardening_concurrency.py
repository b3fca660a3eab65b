"""Two processes writing the same reader's picks (or the same teaching note) lose nothing.

Real processes, real SQLite files: each writer is a separate Python interpreter started
with :mod:`subprocess`, as when a reader opens the same study in two windows or on two
machines sharing a folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from helpers_study import brute_force_neighbours, make_library

from medviewer.store import Library
from medviewer.study.design import create_study, select_queries
from medviewer.study.session import ReadingSession, open_study_db

TOGGLES = 60  # per process; even, so each process's own candidate ends unpicked ...

PICKER = textwrap.dedent("""
    import sys
    from medviewer.study.session import ReadingSession, open_study_db
    path, study_id, slot, toggles, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \\
        int(sys.argv[4]), sys.argv[5]
    session = ReadingSession(open_study_db(path), study_id, "alice")
    view = session.queries[0]
    candidate = view.candidates[slot][0]
    import os, time
    while not os.path.exists(go):  # start both writers together
        time.sleep(0.001)
    for _ in range(toggles):
        session.toggle_pick(view.query_id, candidate)
    # ... and one more toggle leaves it picked.
    session.toggle_pick(view.query_id, candidate)
    print(view.query_id, candidate, flush=True)
""")


@pytest.fixture
def study(tmp_path):
    library = make_library(tmp_path)
    with Library(library) as lib:
        queries = select_queries(lib.cases(), 3, seed=1, stratify="label")
        summary = create_study(lib, "race", queries, brute_force_neighbours(lib), seed=7,
                               bundle_sha256="ab" * 32, index_version="exact-1")
    return library, summary


def _run_together(script: str, args_per_process: list[list[str]], go) -> list[str]:
    procs = [subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=dict(os.environ))
             for args in args_per_process]
    go.write_text("go")
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(out)
    return outputs


def test_same_reader_in_two_processes_loses_no_pick(study, tmp_path):
    library, summary = study
    go = tmp_path / "go"
    outputs = _run_together(PICKER, [[str(library), str(summary.id), str(slot), str(TOGGLES),
                                      str(go)] for slot in (0, 1)], go)
    picks = {tuple(map(int, out.split())) for out in outputs}
    query_id = next(iter(picks))[0]
    conn = open_study_db(library)
    session = ReadingSession(conn, summary.id, "alice")
    # Both processes' last acknowledged change survives.
    assert session.response(query_id).picked == {c for _q, c in picks}
    # Every audited change starts from the state the previous change left: none was
    # computed from a stale read.
    rows = conn.execute("SELECT before, after FROM study_audit WHERE reader_ref = ? AND "
                        "query_ref = ? ORDER BY id", (session.reader_id, query_id)).fetchall()
    assert len(rows) == 2 * (TOGGLES + 1)
    previous = None
    for before, after in rows:
        assert json.loads(before) == previous
        previous = json.loads(after)
    conn.close()


NOTE_WRITER = textwrap.dedent("""
    import os, sys, time
    from medviewer.store import Library
    from medviewer.teaching.store import TeachingStore
    path, case_id, field, rounds, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], \\
        int(sys.argv[4]), sys.argv[5]
    library = Library(path)
    store = TeachingStore(library)
    while not os.path.exists(go):
        time.sleep(0.001)
    lost = 0
    for i in range(rounds):
        # Only this process writes this field: it must still hold what we saved last.
        if i and getattr(store.note(case_id), field) != f"{field} {i - 1}":
            lost += 1
        store.save_note(case_id, **{field: f"{field} {i}"})
    library.close()
    print(lost, flush=True)
""")


def test_concurrent_edits_of_one_teaching_note_lose_no_field(tmp_path):
    library = make_library(tmp_path)
    with Library(library) as lib:
        case_id = lib.cases()[0].id
    go = tmp_path / "go"
    rounds = 80
    outputs = _run_together(NOTE_WRITER, [[str(library), str(case_id), field, str(rounds),
                                           str(go)] for field in ("findings", "diagnosis")], go)
    assert [int(out) for out in outputs] == [0, 0]
    with Library(library) as lib:
        from medviewer.teaching.store import TeachingStore

        note = TeachingStore(lib).note(case_id)
    assert (note.findings, note.diagnosis) == (f"findings {rounds - 1}", f"diagnosis {rounds - 1}")

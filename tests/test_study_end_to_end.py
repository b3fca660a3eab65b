"""A reader study end to end through the command line, with the demo model and its index.

Designed from the index, read by one reader at home and one through a reading
package on "another machine", merged, exported as tidy picks and analysed.
"""

from __future__ import annotations

import json
import pytest

from helpers_demo import DEMO_BUNDLE, synthetic_demo_library
from medviewer.cli.main import main
from medviewer.study.session import ReadingSession, open_study_db

@pytest.fixture(scope="module")
def indexed_library(tmp_path_factory):
    path = synthetic_demo_library(tmp_path_factory.mktemp("study"), 30, 8, size=128, ct_series=1,
                                  ct_size=64, ct_slices=4)
    assert main(["index", "build", "--library", str(path), "--model", str(DEMO_BUNDLE)]) == 0
    return path


def run_json(capsys, argv):
    capsys.readouterr()
    assert main(argv + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def read_like_the_model(session: ReadingSession, conn, agree_first: int) -> None:
    """Pick the model's closest cases, except swap one pick after ``agree_first`` queries."""
    closest = {c for (c,) in conn.execute("SELECT id FROM study_candidates WHERE model_closest = 1")}
    for n, view in enumerate(session.queries):
        near = [c for c, _ in view.candidates if c in closest]
        far = [c for c, _ in view.candidates if c not in closest]
        chosen = near if n < agree_first else near[:4] + far[:1]
        for candidate in chosen:
            session.toggle_pick(view.query_id, candidate)
        session.finish(view.query_id)


def test_design_read_package_merge_and_report(indexed_library, tmp_path, capsys, qtbot):
    library = str(indexed_library)
    created = run_json(capsys, ["study", "create", "--library", library, "--model",
                                str(DEMO_BUNDLE), "--name", "e2e", "--queries", "6", "--seed", "4",
                                "--stratify", "label"])
    assert created["queries"] == 6
    home = open_study_db(library)
    # Frozen at creation: the bundle's sha256 and the index version.
    sha, version = home.execute("SELECT bundle_sha256, index_version FROM reader_studies").fetchone()
    assert len(sha) == 64 and version
    read_like_the_model(ReadingSession(home, created["id"], "ann"), home, agree_first=6)

    package = tmp_path / "for-bob"
    exported = run_json(capsys, ["study", "export", "e2e", "--library", library, "--reader", "bob",
                                 "--out", str(package)])
    assert exported["reader"] == "bob"
    remote = open_study_db(package / "package.sqlite")
    study_id = remote.execute("SELECT id FROM reader_studies").fetchone()[0]
    # Bob's machine cannot tell closest from farthest; he reads from the images alone, so
    # here he reproduces the model on 3 queries using the home truth held by the test.
    bob = ReadingSession(remote, study_id, "bob")
    closest = {c for (c,) in home.execute("SELECT id FROM study_candidates WHERE model_closest = 1")}
    for n, view in enumerate(bob.queries):
        near = [c for c, _ in view.candidates if c in closest]
        far = [c for c, _ in view.candidates if c not in closest]
        for candidate in (near if n < 3 else near[:3] + far[:2]):
            bob.toggle_pick(view.query_id, candidate)
        bob.finish(view.query_id)
    remote.close()
    merged = run_json(capsys, ["study", "import", str(package), "--library", library])
    assert (merged["imported"], merged["duplicates"], merged["conflicts"]) == (6, 0, [])

    picks = tmp_path / "picks.csv"
    rows = run_json(capsys, ["study", "picks", "e2e", "--library", library, "--out", str(picks)])
    assert rows["rows"] == 2 * 6 * 10
    stats = run_json(capsys, ["study", "stats", "--picks", str(picks), "--bootstrap", "500"])
    assert stats["readers"]["ann"]["agreement"] == pytest.approx(1.0)
    # Bob swapped 2 of 5 picks on 3 of 6 queries: 4 disagreeing items there, of 60.
    assert stats["readers"]["bob"]["agreement"] == pytest.approx(1 - 12 / 60)
    assert len(stats["fleiss_kappa_ci"]) == 2

    # The same report in the app.
    from medviewer.qt.study_menu import StudyResultsDialog
    from medviewer.services.study_results import study_report
    from medviewer.stats import render_html

    report = study_report(library, created["id"], n_bootstrap=200)
    dialog = StudyResultsDialog(render_html(report), report)
    qtbot.addWidget(dialog)
    text = dialog.browser.toPlainText()
    assert "Fleiss" in text and "bob" in text and "ann" in text



def test_design_keeps_cases_outside_the_models_domain_out(indexed_library, tmp_path):
    import shutil

    from medviewer.inference.bundle import load_bundle
    from medviewer.services.reader_study import design_study, model_domain_check
    from medviewer.store import Library
    from medviewer.study.design import StudyDesignError

    bundle = tmp_path / "radiographs-only"
    shutil.copytree(DEMO_BUNDLE, bundle)
    meta = json.loads((bundle / "metadata.json").read_text())
    meta["domain"] = {"modalities": ["DX", "CR"], "description": "chest radiographs"}
    (bundle / "metadata.json").write_text(json.dumps(meta))
    model = load_bundle(bundle)
    with Library(indexed_library) as lib:
        cases = lib.cases()
        ct = {c.id for c in cases if c.modality == "CT"}
        assert ct and "CT" in model_domain_check(model)(next(c for c in cases if c.id in ct))
        summary = design_study(lib, model, "in-domain", queries=4, seed=1)
        used = {r[0] for r in lib.conn.execute(
            "SELECT case_ref FROM study_queries WHERE study_ref = ? UNION SELECT c.case_ref FROM "
            "study_candidates c JOIN study_queries q ON q.id = c.query_ref WHERE q.study_ref = ?",
            (summary.id, summary.id))}
        assert len(used) >= 4 + 10 and not used & ct
        # A CT query asked for explicitly is refused, with the reason in words.
        with pytest.raises(StudyDesignError, match="outside the model's domain"):
            design_study(lib, model, "ct query", case_ids=[min(ct)])

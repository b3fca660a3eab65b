"""BM25 text search: adversarial negations, uncertainty phrases and query-side synonyms."""

from __future__ import annotations

import pytest

from medviewer.reports import ReportStore, search_reports
from medviewer.reports.negation import analyse_sentence


@pytest.mark.parametrize("text, word, negated", [
    ("No evidence of effusion.", "effusion", True),
    ("Effusion is not seen.", "effusion", True),
    ("Without cardiomegaly.", "cardiomegaly", True),
    ("The effusion is no longer seen.", "effusion", True),
    ("Effusion is not clearly seen.", "effusion", True),
    ("Negative for pneumothorax.", "pneumothorax", True),
    ("The heart is not enlarged.", "enlarged", True),
    # Uncertainty is not absence (NegEx "possible" phrases).
    ("A small effusion cannot be excluded.", "effusion", False),
    ("Cannot exclude a small effusion.", "effusion", False),
    ("Pneumonia is not ruled out.", "pneumonia", False),
    ("Effusion can't be excluded.", "effusion", False),
    ("No change in the right effusion.", "effusion", False),
    ("No pneumothorax, but a small effusion.", "effusion", False),
])
def test_adversarial_negation_phrasings(text, word, negated):
    s = analyse_sentence(text)
    where = s.negated if negated else s.affirmed
    other = s.affirmed if negated else s.negated
    assert word in where and word not in other, (s.affirmed, s.negated)


REPORTS = {
    "pos_cardio_synonym": "FINDINGS: The cardiac silhouette is enlarged. Lungs clear.",
    "pos_cardio_heart": "FINDINGS: The heart is moderately enlarged.",
    "neg_cardio_heart": "FINDINGS: The heart is not enlarged. No effusion.",
    "neg_cardio_without": "FINDINGS: Without cardiomegaly. Small left pleural effusion.",
    "pos_emph": "FINDINGS: Hyperinflation, in keeping with COPD.",
    "neg_emph": "FINDINGS: No hyperinflation. Effusion is not seen.",
    "pos_opacity": "FINDINGS: Right lower zone airspace disease.",
    "neg_opacity": "FINDINGS: No focal consolidation. No evidence of effusion.",
    "uncertain_effusion": "FINDINGS: A small right effusion cannot be excluded.",
}


@pytest.fixture(scope="module")
def typed_library(tmp_path_factory):
    """A library whose cases carry the typed reports above: {name: case id}."""
    from medviewer.services.importer import import_paths
    from medviewer.store import Library
    from medviewer.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("negation")
    generate_dataset(root / "d", len(REPORTS), 3, size=64, ct_series=0, png=False)
    path = root / "lib.sqlite"
    with Library(path) as library:
        import_paths(library, [root / "d" / "dicom"])
        ids = [c.id for c in library.cases()][:len(REPORTS)]
        store = ReportStore(library)
        for case_id, text in zip(ids, REPORTS.values()):
            store.attach("case", case_id, text, "typed")
    return path, dict(zip(REPORTS, ids))


@pytest.mark.parametrize("phrase, expected", [
    ("cardiomegaly", {"pos_cardio_synonym", "pos_cardio_heart"}),
    ("enlarged heart", {"pos_cardio_synonym", "pos_cardio_heart"}),
    ("no cardiomegaly", {"neg_cardio_heart", "neg_cardio_without"}),
    ("emphysema", {"pos_emph"}),
    ("no emphysema", {"neg_emph"}),
    ("opacity", {"pos_opacity"}),
    ("consolidation", {"pos_opacity"}),
    ("no opacity", {"neg_opacity"}),
    # "cannot be excluded" is a possible effusion, not a negated one.
    ("effusion", {"neg_cardio_without", "uncertain_effusion"}),
    ("no effusion", {"neg_cardio_heart", "neg_emph", "neg_opacity"}),
])
def test_synonyms_bridge_wording_and_negated_mentions_never_match(typed_library, phrase, expected):
    from medviewer.store import Library

    path, ids = typed_library
    names = {v: k for k, v in ids.items()}
    with Library(path) as library:
        hits = search_reports(ReportStore(library), phrase, k=50)
    assert {names[h.case_id] for h in hits} == expected
    assert all(h.snippet for h in hits)  # the sentence that matched, synonyms included


def test_partial_match_that_contradicts_the_phrase_is_left_out(typed_library):
    from medviewer.store import Library

    path, ids = typed_library
    with Library(path) as library:
        hits = search_reports(ReportStore(library), "cardiomegaly with effusion", k=50)
    found = {h.case_id for h in hits}
    # Only partial matches exist; a report denying cardiomegaly or effusion is no match.
    assert ids["pos_cardio_synonym"] in found and ids["neg_cardio_without"] not in found
    assert ids["neg_cardio_heart"] not in found and ids["neg_emph"] not in found


def test_on_generated_reports_each_phrase_finds_exactly_its_films(tmp_path):
    """Synthetic reports word each finding 3-4 ways: positives found, negated phrases never do.

    The synonym list covers the generator's wording, so this is a check of the
    mechanism, not an independent measure of coverage on real reports.
    """
    from medviewer.reports.importers import import_reports
    from medviewer.services.importer import import_paths
    from medviewer.store import Library
    from medviewer.synthetic import generate_dataset

    manifest = generate_dataset(tmp_path / "d", 60, 21, size=64, ct_series=0, png=False)
    truth = {r.path: set(r.labels) for r in manifest.radiographs}
    with Library(tmp_path / "lib.sqlite") as library:
        import_paths(library, [tmp_path / "d" / "dicom"])
        store = ReportStore(library)
        import_reports(store, [manifest.reports_csv])
        by_case = {c.id: truth[c.location.split("/d/", 1)[1]] for c in library.cases()}
        for phrase, finding in (("cardiomegaly", "Cardiomegaly"), ("emphysema", "Emphysema"),
                                ("opacity", "Opacity")):
            positives = {c for c, labels in by_case.items() if finding in labels}
            assert positives and len(positives) < len(by_case)
            found = {h.case_id for h in search_reports(store, phrase, k=200)}
            assert found == positives, phrase
            negated = {h.case_id for h in search_reports(store, "no " + phrase, k=200)}
            assert negated and not negated & positives, phrase


def test_words_split_by_older_rules_are_split_again_before_searching(typed_library):
    """A library indexed before a rule change ("cannot be excluded") is re-split on first search."""
    from medviewer.store import Library

    path, ids = typed_library
    with Library(path) as library:
        store = ReportStore(library)
        case = ids["uncertain_effusion"]
        report = store.reports_for_case(case)[0].id
        # What the rules before version 2 stored: "effusion cannot be excluded" negated.
        with library.transaction() as conn:
            conn.execute("DELETE FROM report_terms WHERE rowid = ?", (report,))
            conn.execute("INSERT INTO report_terms (rowid, affirmed, negated) VALUES (?, ?, ?)",
                         (report, "findings a small right", "effusion"))
            conn.execute("UPDATE meta SET value = '1' WHERE key = 'report_terms_rules'")
        before = store.reports_version()
        hits = search_reports(store, "effusion", k=50)
        assert case in {h.case_id for h in hits} and store.reports_version() != before
        assert store.refresh_terms() is False  # done once

"""Reports in the library: sections, negation, import (CSV, .txt, SR), BM25 text search, CLI."""

from __future__ import annotations

import csv
import json

import pytest

from medviewer.reports import ReportError, ReportStore, TextQueryError, parse_query, search_reports
from medviewer.reports.importers import import_reports, read_sr, sr_text
from medviewer.reports.negation import analyse_sentence, split_sentences
from medviewer.reports.sections import split_sections


@pytest.fixture(scope="module")
def report_library(tmp_path_factory):
    """A 40-film synthetic library with its generated reports attached from reports.csv."""
    from medviewer.services.importer import import_paths
    from medviewer.store import Library
    from medviewer.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("reports")
    manifest = generate_dataset(root / "data", 40, 18, size=64, ct_series=0, png=False)
    path = root / "lib.sqlite"
    with Library(path) as library:
        import_paths(library, [root / "data" / "dicom"], labels=root / "data" / "labels.csv")
        summary = import_reports(ReportStore(library), [manifest.reports_csv])
    assert summary.attached == 40 and not summary.skipped
    return path, manifest


# -- negation and sections -------------------------------------------------------------------
@pytest.mark.parametrize("text, affirmed, negated", [
    ("No focal consolidation, effusion, or pneumothorax.", set(),
     {"consolidation", "effusion", "pneumothorax"}),
    ("Cardiomegaly with no effusion.", {"cardiomegaly"}, {"effusion"}),
    ("Effusion is not seen but there is cardiomegaly.", {"cardiomegaly"}, {"effusion"}),
    ("No change in the right lower lobe consolidation.", {"consolidation", "right"}, set()),
    ("The opacity has resolved.", set(), {"opacity"}),
    ("Without evidence of emphysema; the heart is enlarged.", {"heart", "enlarged"}, {"emphysema"}),
])
def test_negation_cues_scope_and_termination(text, affirmed, negated):
    s = analyse_sentence(text)
    assert affirmed <= set(s.affirmed) and not (negated & set(s.affirmed))
    assert negated <= set(s.negated) and not (affirmed & set(s.negated))


def test_sentences_split_on_periods_but_not_inside_numbers():
    assert split_sentences("Opacity measuring 2.5 cm. No effusion.") == [
        "Opacity measuring 2.5 cm.", "No effusion."]


def test_sections_by_heading_and_synonym():
    text = "Clinical history: cough.\nFINDINGS: Heart enlarged. No effusion.\nConclusion - Cardiomegaly."
    assert split_sections(text) == {"indication": "cough.", "findings": "Heart enlarged. No effusion.",
                                    "impression": "Cardiomegaly."}
    assert split_sections("Lungs clear.") == {"body": "Lungs clear."}


# -- store ---------------------------------------------------------------------------------
def test_attach_replaces_same_source_and_keeps_the_index_in_step(report_library):
    from medviewer.store import Library

    path, _ = report_library
    with Library(path) as library:
        store = ReportStore(library)
        case_id = library.cases()[0].id
        first = store.attach("case", case_id, "FINDINGS: Zebra-stripe artefact.", "typed")
        assert [h.case_id for h in search_reports(store, "zebra stripe")] == [case_id]
        second = store.attach("case", case_id, "FINDINGS: Unicorn sign.", "typed")
        assert search_reports(store, "zebra stripe") == []
        # The case's own typed report comes before its study's imported one.
        reports = store.reports_for_case(case_id)
        assert reports[0].id == second and reports[0].sections == {"findings": "Unicorn sign."}
        assert reports[1].source == "csv"
        store.remove(second)
        assert search_reports(store, "unicorn") == []
        with pytest.raises(ReportError, match="needs some text"):
            store.attach("case", case_id, "   ", "typed")
        with pytest.raises(ReportError, match="no case"):
            store.attach("case", 10**6, "text", "typed")


def test_study_level_report_ranks_every_case_of_the_study(tmp_library, tmp_path):
    from medviewer.services.importer import import_paths
    from medviewer.synthetic import generate_dataset

    generate_dataset(tmp_path / "d", 2, 5, size=64, ct_series=0, png=False)
    import_paths(tmp_library, [tmp_path / "d" / "dicom"])
    store = ReportStore(tmp_library)
    study = tmp_library.conn.execute("SELECT id, study_uid FROM studies ORDER BY id").fetchone()
    store.attach("study", study[0], "IMPRESSION: Dextrocardia.", "typed")
    hits = search_reports(store, "dextrocardia")
    assert len(hits) == 1 and hits[0].snippet == "Dextrocardia."


# -- text search -----------------------------------------------------------------------------
def test_negated_mentions_do_not_match_and_negated_queries_find_them(report_library):
    from medviewer.store import Library

    path, manifest = report_library
    truth = {r.path: set(r.labels) for r in manifest.radiographs}
    with Library(path) as library:
        store = ReportStore(library)
        for phrase, finding in (("cardiomegaly", "Cardiomegaly"), ("emphysema", "Emphysema"),
                                ("consolidation", "Opacity")):
            hits = search_reports(store, phrase, k=40)
            assert hits, phrase
            for hit in hits:
                rel = hit.location.split("/data/", 1)[1]
                assert finding in truth[rel], (phrase, hit.snippet)
        # "No cardiomegaly" only finds films without it.
        negative = search_reports(store, "no cardiomegaly", k=40)
        assert negative
        assert all("Cardiomegaly" not in truth[h.location.split("/data/", 1)[1]] for h in negative)
        assert all("no cardiomegaly" in h.snippet.lower() or "not" in h.snippet.lower()
                   for h in negative)


def test_query_parsing_drops_filler_and_refuses_empty_phrases():
    q = parse_query("cardiomegaly with no effusion")
    assert q.affirmed == ("cardiomegaly",) and q.negated == ("effusion",)
    assert parse_query('opacity" OR NEAR(x').affirmed == ("opacity", "near", "x")  # just words
    with pytest.raises(TextQueryError):
        parse_query("the no")


# -- importers ------------------------------------------------------------------------------
def test_import_from_txt_folder_and_accession_csv_with_reasons_for_skips(report_library, tmp_path):
    from medviewer.store import Library

    path, manifest = report_library
    first = manifest.radiographs[0]
    folder = tmp_path / "txt"
    folder.mkdir()
    (folder / (first.path.rsplit("/", 1)[1].removesuffix(".dcm") + ".txt")).write_text(
        "FINDINGS: Pectus excavatum.", encoding="utf-8")
    (folder / "nobody.txt").write_text("FINDINGS: nothing.", encoding="utf-8")
    with Library(path) as library:
        store = ReportStore(library)
        summary = import_reports(store, [folder])
        assert summary.attached == 1 and [r for _, r in summary.skipped] == [
            "no stem 'nobody' in the library"]
        assert search_reports(store, "pectus")[0].location.endswith(first.path)
        study, accession = library.conn.execute(
            "SELECT id, accession FROM studies WHERE accession != '' LIMIT 1").fetchone()
        table = tmp_path / "acc.csv"
        with open(table, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows([("accession", "report"), (accession, "Azygos lobe."),
                                      ("NOPE", "x"), ("", "")])
        summary = import_reports(store, [table])
        assert summary.attached == 1 and len(summary.skipped) == 2
        assert store.reports_for_case(search_reports(store, "azygos")[0].case_id)
        bad = tmp_path / "bad.csv"
        bad.write_text("name,words\na,b\n", encoding="utf-8")
        with pytest.raises(ReportError, match="key column"):
            import_reports(store, [bad])


def test_sr_text_content_is_read_with_headings(tmp_path):
    from pydicom.data import get_testdata_file

    incoming = read_sr(get_testdata_file("test-SR.dcm"))
    assert incoming.key_kind == "study_uid" and incoming.source == "sr"
    assert "A mass of" in incoming.text and "Diameter: 3 cm" in incoming.text
    with pytest.raises(ReportError, match="not a text structured report"):
        read_sr(get_testdata_file("CT_small.dcm"))
    not_dicom = tmp_path / "x.dcm"
    not_dicom.write_bytes(b"hello")
    with pytest.raises(ReportError, match="not a readable DICOM"):
        read_sr(not_dicom)


def test_sr_written_for_a_library_study_attaches_to_it(report_library, tmp_path):
    """A Basic Text SR with FINDINGS / IMPRESSION containers, written by pydicom, read back."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from medviewer.store import Library

    path, manifest = report_library
    study_uid = manifest.radiographs[1].study_uid

    def code(meaning):
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "121071", "DCM", meaning
        return Sequence([item])

    def container(meaning, text):
        inner = Dataset()
        inner.RelationshipType, inner.ValueType = "CONTAINS", "TEXT"
        inner.ConceptNameCodeSequence, inner.TextValue = code("Finding"), text
        outer = Dataset()
        outer.RelationshipType, outer.ValueType, outer.ContinuityOfContent = "CONTAINS", "CONTAINER", "SEPARATE"
        outer.ConceptNameCodeSequence, outer.ContentSequence = code(meaning), Sequence([inner])
        return outer

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = study_uid, generate_uid(), "SR"
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    ds.ConceptNameCodeSequence = code("Chest X-Ray Report")
    ds.ContentSequence = Sequence([container("Findings", "Kerley B lines at both bases."),
                                   container("Impression", "Interstitial oedema.")])
    sr_path = tmp_path / "sr.dcm"
    ds.save_as(sr_path, enforce_file_format=True)
    assert sr_text(ds) == "Findings:\nKerley B lines at both bases.\nImpression:\nInterstitial oedema."
    with Library(path) as library:
        store = ReportStore(library)
        assert import_reports(store, [sr_path]).attached == 1
        hit = search_reports(store, "kerley lines")[0]
        report = store.report(hit.report_id)
        assert report.source == "sr" and report.sections["impression"] == "Interstitial oedema."


# -- CLI ------------------------------------------------------------------------------------
def test_cli_text_search_json_and_report_commands(report_library, capsys):
    from medviewer.cli.main import main

    path, _ = report_library
    assert main(["search", "--library", str(path), "--text", "emphysema", "-k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "bm25" and 0 < len(out["hits"]) <= 3
    assert all("Emphysema" in h["labels"] for h in out["hits"])
    case = out["hits"][0]["case_id"]
    assert main(["report", "show", str(path), str(case)]) == 0
    assert "FINDINGS:" in capsys.readouterr().out
    assert main(["search", "--library", str(path), "--text", "the"]) == 2
    assert "no words to search" in capsys.readouterr().err
    assert main(["search", "--library", str(path)]) == 2


def test_bm25_index_is_saved_beside_the_library_and_rebuilt_when_reports_change(tmp_path):
    from medviewer.reports import ranker as ranker_module
    from medviewer.reports.ranker import ReportRanker, ranker_folder
    from medviewer.services.importer import import_paths
    from medviewer.store import Library
    from medviewer.synthetic import generate_dataset

    generate_dataset(tmp_path / "d", 3, 9, size=64, ct_series=0, png=False)
    with Library(tmp_path / "lib.sqlite") as library:
        import_paths(library, [tmp_path / "d" / "dicom"])
        store = ReportStore(library)
        ids = [c.id for c in library.cases()]
        store.attach("case", ids[0], "Small left effusions.", "typed")
        assert [h.case_id for h in search_reports(store, "effusion")] == [ids[0]]
        folder = ranker_folder(library.path)
        version = store.reports_version()
        assert ReportRanker.load(folder, version) is not None
        store.attach("case", ids[1], "No effusion. Large right effusion.", "typed")
        assert store.reports_version() != version
        assert ReportRanker.load(folder, store.reports_version()) is None  # the saved one is stale
        assert sorted(h.case_id for h in search_reports(store, "effusion")) == sorted(ids[:2])
        assert ReportRanker.load(folder, store.reports_version()) is not None  # rebuilt, saved
        store.attach("case", ids[2], "The heart is not enlarged. Small effusion.", "typed")
        found = [h.case_id for h in search_reports(store, "enlarged effusion", k=3)]
        assert ids[2] not in found  # a partial match that denies "enlarged" contradicts the phrase
        assert ids[0] in found  # "effusion" alone, nothing denied: a partial match
        # A damaged saved index is rebuilt, not trusted.
        ranker_module._BUILT.clear()
        (folder / "report_ids.npy").write_bytes(b"broken")
        assert [h.case_id for h in search_reports(store, "no effusion")] == [ids[1]]

"""Learned side of reports: region-to-sentence matching and honest fused ranking (tiny bundle)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

SENTENCES = ["Moderate cardiomegaly.", "No focal consolidation.", "Hyperinflated lungs.",
             "The heart is not enlarged.", "Patchy consolidation in the right lower zone."]


@pytest.fixture(scope="module")
def prior_library(tmp_path_factory):
    """(bundle folder, library path) of an untrained seeded image-text model and 12 films."""
    from medviewer.inference.preprocess import PreprocessConfig
    from medviewer.reports import ReportStore
    from medviewer.reports.importers import import_reports
    from medviewer.services.importer import import_paths
    from medviewer.services.retrieval import build_index
    from medviewer.store import Library
    from medviewer.synthetic import generate_dataset
    from models.prior import PriorConfig, PriorModel, train_tokenizer
    from models.prior_export import export_prior_bundle

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("prior-region")
    tok = train_tokenizer(SENTENCES * 4, 120, 12)
    cfg = PriorConfig(img_size=32, patch_size=8, vit_dim=32, vit_depth=2, vit_heads=2, joint_dim=16,
                      vocab_size=tok.get_vocab_size(), max_tokens=12, max_sentences=3, text_dim=32,
                      text_depth=1, text_heads=2, prototypes=4)
    model = PriorModel(cfg)
    pre = PreprocessConfig(input_size=32, resize=32, channels=3)
    torch.save({"model": model.state_dict(), "cfg": cfg.to_dict(), "epoch": 0,
                "preprocess": pre.to_metadata()}, root / "best.pt")
    tok.save(str(root / "tokenizer.json"))
    export_prior_bundle(root / "best.pt", root / "tokenizer.json", root / "bundle", source="test",
                        log=lambda *_: None)
    manifest = generate_dataset(root / "d", 12, 4, size=64, ct_series=0, png=False)
    path = root / "lib.sqlite"
    with Library(path) as library:
        import_paths(library, [root / "d" / "dicom"], labels=manifest.labels_csv)
        import_reports(ReportStore(library), [manifest.reports_csv])
        build_index(library, str(root / "bundle"))
    return root / "bundle", path


def test_a_region_is_the_pooled_patch_tokens_it_covers(prior_library):
    """64 px film -> 32 px input, 4x4 grid: the rectangle (16, 0, 16, 16) is patch (0, 1)."""
    from medviewer.inference import ModelRunner
    from medviewer.reports.learned import load_text_encoder
    from medviewer.retrieval.catalog import read_catalog
    from medviewer.retrieval.search import Region
    from medviewer.services.region_sentences import match_sentences
    from medviewer.services.retrieval import case_image
    from medviewer.store import Library

    bundle, path = prior_library
    with Library(path) as library:
        case_id = library.cases()[0].id
        found = match_sentences(library, case_id, str(bundle), region=Region(16, 0, 16, 16),
                                sentences=SENTENCES)
        image = case_image(read_catalog(library).get(case_id))
        whole = match_sentences(library, case_id, str(bundle), sentences=SENTENCES)
    tokens = ModelRunner(bundle, "cpu").run([image], ("tokens",))["tokens"][0]
    patch = tokens[1 + 1] / np.linalg.norm(tokens[1 + 1])  # one class token, then row-major patches
    text = load_text_encoder(bundle).encode(SENTENCES)
    expected = {s: float(v) for s, v in zip(SENTENCES, text @ patch)}
    assert found.patches == 1 and found.seen == pytest.approx(1.0)
    assert {m.sentence: m.cosine for m in found.own} == pytest.approx(expected, abs=1e-5)
    assert [m.cosine for m in found.own] == sorted((m.cosine for m in found.own), reverse=True)
    # The whole image goes through the global embedding instead: another ranking of scores.
    assert {m.sentence: m.cosine for m in whole.own} != pytest.approx(expected, abs=1e-3)
    assert found.applicability is not None and found.applicability.summary()


def test_region_outside_the_image_and_models_that_cannot_match_are_said_in_words(prior_library,
                                                                                tmp_path):
    from medviewer.inference.testing import write_toy_bundle
    from medviewer.retrieval.errors import QueryError
    from medviewer.retrieval.search import Region
    from medviewer.services.region_sentences import NO_MODEL, match_sentences, model_problem
    from medviewer.store import Library

    bundle, path = prior_library
    assert model_problem(None) == NO_MODEL
    image_only = write_toy_bundle(tmp_path / "toy")
    assert "image-only model" in model_problem(str(image_only))
    assert model_problem(str(bundle)) is None
    with Library(path) as library:
        case_id = library.cases()[0].id
        with pytest.raises(QueryError, match="outside the part of the image"):
            match_sentences(library, case_id, str(bundle), region=Region(200, 200, 30, 30))
        # Half off the film: only its seen half is pooled, and the panel is told.
        found = match_sentences(library, case_id, str(bundle), region=Region(48, 0, 32, 16),
                                include_library=True)
    assert found.seen == pytest.approx(0.5) and found.notes
    assert found.library and all(case_id not in m.cases for m in found.library)
    own = {m.sentence for m in found.own}
    assert not own & {m.sentence for m in found.library}


def test_fused_hits_say_which_ranker_found_them_with_raw_ranks_and_scores(prior_library, capsys):
    from medviewer.cli.main import main

    bundle, path = prior_library

    def search(*extra):
        assert main(["search", "--library", str(path), "--text", "cardiomegaly", "-k", "6",
                     "--model", str(bundle), "--json", *extra]) == 0
        return json.loads(capsys.readouterr().out)

    fused = search()
    learned = search("--rank", "learned", "-k", "30")
    assert main(["search", "--library", str(path), "--text", "cardiomegaly", "-k", "30",
                 "--json"]) == 0
    bm25 = json.loads(capsys.readouterr().out)
    bm25_rank = {h["case_id"]: (h["rank"], h["rankers"]["bm25"]["score"]) for h in bm25["hits"]}
    learned_rank = {h["case_id"]: (h["rank"], h["score"]) for h in learned["hits"]}
    assert fused["fusion"].startswith("reciprocal rank fusion")
    for hit in fused["hits"]:
        rankers = hit["rankers"]
        assert set(rankers) == {"bm25", "learned"} and hit["found_by"]
        assert set(hit["found_by"]) == {n for n, r in rankers.items() if r["rank"] is not None}
        if rankers["bm25"]["rank"] is not None:  # BM25's own rank and unshifted score
            assert (rankers["bm25"]["rank"], rankers["bm25"]["score"]) == \
                pytest.approx(bm25_rank[hit["case_id"]], abs=1e-5)
        else:
            assert hit["case_id"] not in list(bm25_rank)[:30]
        if rankers["learned"]["rank"] is not None:
            assert (rankers["learned"]["rank"], rankers["learned"]["score"]) == \
                pytest.approx(learned_rank[hit["case_id"]], abs=1e-5)
        assert rankers["learned"]["score"] is not None  # every film is indexed
        expected = sum(1 / (60 + r["rank"]) for r in rankers.values() if r["rank"] is not None)
        assert hit["score"] == pytest.approx(expected, abs=1e-6)


def test_cli_report_match_region_json(prior_library, capsys):
    from medviewer.cli.main import main
    from medviewer.store import Library

    bundle, path = prior_library
    with Library(path) as library:
        case_id = library.cases()[1].id
    assert main(["report", "match", str(path), str(case_id), "--model", str(bundle),
                 "--region", "0,32,32,32", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["region"] == {"x": 0, "y": 32, "width": 32, "height": 32} and out["patches"] == 4
    assert out["own_report"] and out["applicability"]["summary"]

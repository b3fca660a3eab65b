"""The PRIOR-style image-text recipe: losses, export, and the app's text side without torch."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import Qt

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from models.prior import PriorConfig, PriorModel, encode, train_tokenizer  # noqa: E402

SENTENCES = ["Moderate cardiomegaly.", "No focal consolidation.", "Hyperinflated lungs.",
             "The heart is not enlarged.", "Patchy consolidation in the right lower zone."]


def _tiny_cfg(vocab: int) -> PriorConfig:
    return PriorConfig(img_size=32, patch_size=8, vit_dim=32, vit_depth=2, vit_heads=2, joint_dim=16,
                       vocab_size=vocab, max_tokens=12, max_sentences=3, text_dim=32, text_depth=1,
                       text_heads=2, prototypes=4)


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    """An (untrained, seeded) tiny image-text model exported as a bundle."""
    from medviewer.inference.preprocess import PreprocessConfig
    from models.prior_export import export_prior_bundle

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("prior")
    tok = train_tokenizer(SENTENCES * 4, 120, 12)
    cfg = _tiny_cfg(tok.get_vocab_size())
    model = PriorModel(cfg)
    pre = PreprocessConfig(input_size=32, resize=32, channels=3)
    torch.save({"model": model.state_dict(), "cfg": cfg.to_dict(), "epoch": 0,
                "preprocess": pre.to_metadata()}, root / "best.pt")
    tok.save(str(root / "tokenizer.json"))
    meta = export_prior_bundle(root / "best.pt", root / "tokenizer.json", root / "bundle",
                               source="test", log=lambda *_: None)
    return root / "bundle", model.eval(), tok, meta


def test_every_loss_term_is_finite_and_trains_both_towers():
    tok = train_tokenizer(SENTENCES * 4, 120, 12)
    model = PriorModel(_tiny_cfg(tok.get_vocab_size()))
    ids, mask = encode(tok, SENTENCES[:3] * 2)
    ids, mask = ids.reshape(2, 3, 12), mask.reshape(2, 3, 12)
    valid = torch.tensor([[True, True, False], [True, True, True]])
    targets = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    losses = model.losses(torch.randn(2, 3, 32, 32), ids, mask, valid, targets, torch.ones_like(targets))
    assert set(losses) == {"total", "global", "local", "prototype", "labels"}
    assert all(torch.isfinite(v) for v in losses.values())
    losses["total"].backward()
    assert model.text.embed.weight.grad.abs().sum() > 0
    assert model.image.vit.vit.patch_embed.proj.weight.grad.abs().sum() > 0
    assert model.prototypes.grad.abs().sum() > 0
    # The image-only baseline: same tower and data, labels only; its text tower never trains.
    from dataclasses import replace

    base = PriorModel(replace(model.cfg, weight_global=0.0, weight_local=0.0, weight_prototype=0.0))
    only = base.losses(torch.randn(2, 3, 32, 32), ids, mask, valid, targets, torch.ones_like(targets))
    only["total"].backward()
    assert float(only["global"]) == 0.0 and base.text.embed.weight.grad is None
    assert base.image.label_head.weight.grad.abs().sum() > 0


def test_export_declares_one_space_and_the_app_encoder_matches_torch(tiny_bundle):
    from medviewer.inference import load_bundle
    from medviewer.reports.learned import load_text_encoder

    folder, model, tok, meta = tiny_bundle
    assert load_bundle(folder).embedding_dim == 16
    space = meta["image_text"]["joint_space"]
    assert space == {"dim": 16, "metric": "cosine", "image_output": "embedding",
                     "region_output": "tokens", "text_output": "text_embedding"}
    encoder = load_text_encoder(folder)
    ids, mask = encode(tok, SENTENCES)
    with torch.no_grad():
        ref = model.text(ids, mask).numpy()
    got = encoder.encode(SENTENCES)
    assert np.allclose((ref * got).sum(1), 1.0, atol=1e-5)


def test_a_changed_tokenizer_file_is_refused(tiny_bundle, tmp_path):
    import shutil

    from medviewer.inference.errors import BundleError
    from medviewer.reports.learned import load_text_encoder

    folder = tmp_path / "copy"
    shutil.copytree(tiny_bundle[0], folder)
    data = json.loads((folder / "tokenizer.json").read_text())
    data["model"]["vocab"]["zebra"] = 9999
    (folder / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match="tokenizer.json has changed"):
        load_text_encoder(folder)


def test_phrase_search_ranks_by_the_joint_space_and_fuses_with_bm25(tiny_bundle, tmp_path):
    """Learned ranking = cosine(text tower(phrase), image tower(case)); fusion keeps both lists."""
    from medviewer.reports import ReportStore
    from medviewer.reports.importers import import_reports
    from medviewer.services.importer import import_paths
    from medviewer.services.learned_search import matching_sentences
    from medviewer.services.reports import text_search
    from medviewer.services.retrieval import build_index, case_image, open_embedder
    from medviewer.retrieval.catalog import read_catalog
    from medviewer.reports.learned import load_text_encoder
    from medviewer.store import Library
    from medviewer.synthetic import generate_dataset

    folder = tiny_bundle[0]
    manifest = generate_dataset(tmp_path / "d", 12, 4, size=64, ct_series=0, png=False)
    with Library(tmp_path / "lib.sqlite") as library:
        import_paths(library, [tmp_path / "d" / "dicom"], labels=manifest.labels_csv)
        import_reports(ReportStore(library), [manifest.reports_csv])
        build_index(library, str(folder))
        learned = text_search(library, "cardiomegaly", k=12, model=str(folder), rank="learned")
        catalog = read_catalog(library)
        cases = [catalog.get(c.id) for c in library.cases()]
        images = open_embedder(str(folder)).embed([case_image(c) for c in cases])
        phrase = load_text_encoder(folder).encode(["cardiomegaly"])[0]
        expected = [cases[i].id for i in np.argsort(-(images @ phrase), kind="stable")]
        assert [h.case_id for h in learned.hits][:5] == expected[:5]
        assert all(h.report_id for h in learned.hits)  # every synthetic case has a report
        fused = text_search(library, "cardiomegaly", k=5, model=str(folder))
        bm25 = text_search(library, "cardiomegaly", k=5)
        assert fused.mode == "fused" and len(fused.hits) == 5
        assert all(set(h.scores) <= {"bm25", "learned"} for h in fused.hits)
        if bm25.hits:  # a BM25 top hit that the learned list also ranks well must be in the fusion
            both = [h.case_id for h in bm25.hits if h.case_id in expected[:5]]
            assert not both or both[0] in [h.case_id for h in fused.hits]
        ranked = matching_sentences(library, cases[0].id, str(folder))
        assert ranked and [s for s, _ in ranked] and all(-1.0 <= v <= 1.0 for _, v in ranked)
        assert ranked == sorted(ranked, key=lambda x: -x[1])


def test_report_panel_ranks_the_report_sentences_with_an_image_text_model(qtbot, tiny_bundle, tmp_path):
    from medviewer.qt.report_panel import ReportPanel
    from medviewer.reports import ReportStore
    from medviewer.reports.importers import import_reports
    from medviewer.services.importer import import_paths
    from medviewer.store import Library
    from medviewer.synthetic import generate_dataset

    manifest = generate_dataset(tmp_path / "d", 2, 6, size=64, ct_series=0, png=False)
    with Library(tmp_path / "lib.sqlite") as library:
        import_paths(library, [tmp_path / "d" / "dicom"])
        import_reports(ReportStore(library), [manifest.reports_csv])
        case_id = library.cases()[0].id
    panel = ReportPanel()
    qtbot.addWidget(panel)
    panel.show_case(str(tmp_path / "lib.sqlite"), case_id)
    assert not panel.match_button.isEnabled()  # no image-text model yet
    panel.set_model(str(tiny_bundle[0]))
    assert panel.match_button.isEnabled()
    qtbot.mouseClick(panel.match_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: "Sentences by similarity" in panel.message.text(), timeout=30000)
    sentences = panel.report.sections["findings"].split(". ")
    assert sentences[0].rstrip(".") in panel.message.text()

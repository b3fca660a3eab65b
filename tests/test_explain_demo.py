"""Maps, trust checks and the CLI with the committed demo bundle (ONNX Runtime only, no torch)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medviewer.explain import Explainer, ExplainRequest, seen_mask

DEMO = Path(__file__).resolve().parents[1] / "models" / "demo"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from medviewer.synthetic import generate_dataset

    if not (DEMO / "model.onnx").is_file():
        pytest.skip("the demo bundle models/demo is missing")
    root = tmp_path_factory.mktemp("explain-demo")
    manifest = generate_dataset(root, 10, 4, size=256, ct_series=0, png=False)
    return manifest


@pytest.fixture(scope="module")
def explainer(dataset):
    from medviewer.inference import ModelRunner, load_bundle

    return Explainer(ModelRunner(load_bundle(DEMO), "cpu", threads=1))


@pytest.fixture(scope="module")
def images(dataset):
    from medviewer.services.explain import display_image

    return [display_image(dataset.abspath(r.path)) for r in dataset.radiographs]


def test_maps_have_the_image_size_and_unit_range(explainer, images):
    image = images[0]
    for request in (ExplainRequest("rollout"), ExplainRequest("rollout", fusion="max", discard_ratio=0.9),
                    ExplainRequest("attention", block=2, head=1), ExplainRequest("occlusion")):
        e = explainer.explain(image, request)
        assert e.image_map.shape == image.shape and e.image_map.dtype == np.float32
        assert 0.0 <= e.image_map.min() and e.image_map.max() <= 1.0
        assert e.grid.shape == (8, 8) and e.model_sha256 == explainer.bundle.sha256
        # The demo crops 64 of 72 px: the border it never saw stays empty.
        assert (e.image_map[~seen_mask(e.geometry)] == 0).all()
    assert explainer.explain(image, ExplainRequest("occlusion")).label in explainer.labels


def test_one_model_run_serves_every_attention_map(explainer, images, monkeypatch):
    calls = []
    original = explainer.runner.run_tensor
    monkeypatch.setattr(explainer.runner, "run_tensor", lambda *a, **k: calls.append(1) or original(*a, **k))
    image = images[1].copy()
    image[0, 0] ^= 1  # pixels never seen before: not in the cache
    first = explainer.explain(image, ExplainRequest("rollout"))
    for block in range(explainer.depth):
        explainer.explain(image, ExplainRequest("attention", block=block))
    again = explainer.explain(image, ExplainRequest("rollout"))
    assert len(calls) == 1
    np.testing.assert_array_equal(first.image_map, again.image_map)
    # Different heads are different maps (the head parameter is used).
    h0 = explainer.explain(image, ExplainRequest("attention", head=0)).raw
    h1 = explainer.explain(image, ExplainRequest("attention", head=1)).raw
    assert not np.allclose(h0, h1)


def test_why_similar_pairs_are_symmetric(explainer, images):
    ab = explainer.explain_pair(images[0], images[1])
    ba = explainer.explain_pair(images[1], images[0])
    np.testing.assert_allclose(ab.query.raw, ba.other.raw, atol=1e-6)
    assert ab.query.image_map.shape == images[0].shape and ab.other.image_map.shape == images[1].shape
    assert 0.0 < ab.embedding_similarity <= 1.0
    self_pair = explainer.explain_pair(images[0], images[0])
    np.testing.assert_allclose(self_pair.query.raw, 1.0, atol=1e-5)  # every patch matches itself


def test_randomised_weights_change_the_maps(explainer, images):
    """Adebayo et al. 2018: maps must depend on the learned weights."""
    from medviewer.services.explain import randomisation_check

    pytest.importorskip("onnx")
    for method in ("rollout", "attention"):
        result = randomisation_check(explainer, images[:4], ExplainRequest(method))
        assert abs(result.mean_spearman) < 0.5, result.to_dict()
        assert result.mean_ssim < 0.9
    # Randomising only the head cannot change rollout (it never reads the head) ...
    head = randomisation_check(explainer, images[:2], ExplainRequest("rollout"), scope="head")
    assert head.mean_spearman == pytest.approx(1.0)
    # ... but it changes the class-specific map (on average over random heads: one random
    # 3 x 128 head can by chance point near the trained direction for a label).
    rhos = [randomisation_check(explainer, images[:2], ExplainRequest("occlusion", label="Cardiomegaly"),
                                scope="head", seed=seed).mean_spearman for seed in range(3)]
    assert np.mean(rhos) < 0.9, rhos


def test_randomised_bundle_is_a_valid_distinct_bundle(explainer, tmp_path):
    from medviewer.explain import randomised_bundle
    from medviewer.inference import load_bundle

    pytest.importorskip("onnx")
    folder = randomised_bundle(explainer.bundle, tmp_path / "rnd", seed=3)
    copy = load_bundle(folder)  # passes the app's own validation (checksum, graph)
    assert copy.sha256 != explainer.bundle.sha256 and "randomised" in copy.name
    assert copy.metadata["sanity_check"]["randomised_from"] == explainer.bundle.sha256


def test_trust_report_and_faithfulness(explainer, images):
    from medviewer.services.explain import trust_report

    report = trust_report(explainer, images[0], ExplainRequest("occlusion"), randomise=False, steps=8)
    f = report.faithfulness
    assert len(f["deletion"]) == 9 and f["label"] in explainer.labels
    # Both curves start/end on the untouched image's probability.
    assert f["deletion"][0] == pytest.approx(f["insertion"][-1], abs=1e-3)
    assert "deletion AUC" in report.text()


def test_lesion_figures_on_synthetic_masks(explainer, dataset):
    from medviewer.services.explain import lesion_figures

    figures = lesion_figures(explainer, dataset.out_dir, [ExplainRequest("rollout")], limit=3)
    assert figures.images >= 1 and figures.rows
    for row in figures.rows:
        assert 0.0 <= row["share"] <= 1.0 and 0.0 < row["area"] < 1.0
        # Random maps put about the mask's area inside it.
        assert row["random_share"] == pytest.approx(row["area"], abs=0.1)


def _cli(argv, monkeypatch):
    import medviewer.cli.main as cli_main

    if "medviewer.cli.explain_cmd" not in cli_main.COMMAND_MODULES:
        monkeypatch.setattr(cli_main, "COMMAND_MODULES",
                            [*cli_main.COMMAND_MODULES, "medviewer.cli.explain_cmd"])
    return cli_main.main(argv)


def test_cli_writes_npy_and_png(dataset, tmp_path, monkeypatch, capsys):
    from PIL import Image

    from medviewer.services.explain import display_image

    path = str(dataset.abspath(dataset.radiographs[0].path))
    shape = display_image(path).shape
    assert _cli(["explain", str(DEMO), path, "--method", "rollout", "--out", str(tmp_path / "m.npy"),
                 "--json"], monkeypatch) == 0
    payload = json.loads(capsys.readouterr().out)
    saved = np.load(tmp_path / "m.npy")
    # Bilinear between patch centres: the peak pixel comes close to, not always at, 1.
    assert saved.shape == shape and saved.dtype == np.float32 and 0 <= saved.min() and 0.9 < saved.max() <= 1
    assert payload["method"] == "rollout" and payload["shape"] == list(shape)
    assert _cli(["explain", str(DEMO), path, "--method", "occlusion", "--label", "Opacity",
                 "--out", str(tmp_path / "o.png")], monkeypatch) == 0
    with Image.open(tmp_path / "o.png") as png:
        assert png.width > shape[1] and png.height > shape[0]  # image + colour bar + caption
    other = str(dataset.abspath(dataset.radiographs[1].path))
    assert _cli(["explain", str(DEMO), path, "--method", "similarity", "--other", other,
                 "--out", str(tmp_path / "s.npy")], monkeypatch) == 0
    assert np.load(tmp_path / "s-other.npy").shape == display_image(other).shape
    capsys.readouterr()
    assert _cli(["explain", str(DEMO), path, "--method", "attention", "--block", "9",
                 "--out", str(tmp_path / "x.npy")], monkeypatch) == 2
    assert "block 9 out of range" in capsys.readouterr().err
    assert _cli(["explain", str(DEMO), path, "--out", str(tmp_path / "x.jpg")], monkeypatch) == 2


def test_cli_explain_check_reports_randomisation(dataset, monkeypatch, capsys):
    pytest.importorskip("onnx")
    paths = [str(dataset.abspath(r.path)) for r in dataset.radiographs[:2]]
    assert _cli(["explain-check", str(DEMO), *paths, "--method", "rollout", "--no-faithfulness", "--json"],
                monkeypatch) == 0
    payload = json.loads(capsys.readouterr().out)
    entry = payload["randomisation"][0]
    assert entry["images"] == 2 and entry["scope"] == "all"
    from medviewer.cli.explain_cmd import verdict

    assert abs(entry["mean_spearman"]) < 0.5 and entry["verdict"] == verdict(entry["mean_spearman"])
    assert not entry["verdict"].startswith("similar")

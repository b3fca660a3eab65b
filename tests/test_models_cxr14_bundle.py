"""The shipped chest X-ray bundle (models/cxr14): valid, small, honest, offered beside the demo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medviewer.inference import ModelRunner, load_bundle
from medviewer.services.models import default_bundle, find_bundles

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "models" / "cxr14"
PNEUMONIA_SET = REPO.parent / "shared" / "data" / "cxr14-nih-pneumonia-256px"


@pytest.fixture(scope="module")
def meta() -> dict:
    return json.loads((BUNDLE / "metadata.json").read_text())


def test_bundle_loads_in_onnx_runtime_and_is_under_30_mb(meta):
    bundle = load_bundle(BUNDLE)
    assert bundle.labels == ["Cardiomegaly", "Emphysema", "Opacity"]
    files = [BUNDLE / meta["model_file"]] + [BUNDLE / v["file"] for v in meta.get("variants", {}).values()]
    assert sum(f.stat().st_size for f in files) <= 30 * 1024 * 1024
    assert meta["architecture"]["family"] == "hybrid-vit" and meta["outputs"]["attention"]


def test_bundle_records_what_it_was_trained_on_and_its_sources(meta):
    trained = meta["training_data"]["trained_on"]
    assert len(trained["patient_sha256"]) > 500 and len(trained["image_sha256"]) > 800
    card = (BUNDLE / "card.md").read_text()
    assert "NIH Clinical Center" in card
    for phrase in ("random retrieval", "16 x 16 raw pixels", "Off-the-shelf ImageNet EfficientNet-Lite0",
                   "PEAC", "ISImed", "0.73", "0.787", "AP@k"):
        assert phrase in card, phrase


def test_viewer_offers_it_and_the_demo_stays_the_default():
    found = find_bundles([REPO / "models"])
    assert BUNDLE.resolve() in found
    assert default_bundle(extra_folders=[str(REPO / "models")]).name == "demo"


@pytest.mark.shared_data
def test_pneumonia_films_score_higher_opacity_than_normal_ones():
    table = PNEUMONIA_SET / "labels.csv"
    if not table.is_file():
        pytest.skip("shared NIH 256 px sample absent")
    from medviewer.services.retrieval import file_image

    rows = [line.split(",") for line in table.read_text().splitlines()[1:]]
    pneumonia = [PNEUMONIA_SET / r[0] for r in rows if "Pneumonia" in r[-1]][:12]
    normal = [PNEUMONIA_SET / r[0] for r in rows if r[-1] == "No Finding"][:12]
    runner = ModelRunner(load_bundle(BUNDLE), "cpu")
    out = runner.run([file_image(p) for p in pneumonia + normal], ("logits", "attention"))
    opacity = out["logits"][:, 2]
    # Most of these were trained on; this checks the bundle works on real films, not its accuracy.
    assert opacity[:12].mean() > opacity[12:].mean()
    assert out["attention"].shape[1:] == (2, 2, 50, 50)
    assert np.allclose(out["attention"].sum(-1), 1.0, atol=1e-4)

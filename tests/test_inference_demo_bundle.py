"""The committed demo bundle (models/demo) loads, passes its checks and still reads synthetic films."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from medviewer.inference import ChecksumMismatchError, ModelRunner, load_bundle

DEMO = Path(__file__).resolve().parents[1] / "models" / "demo"
pytestmark = pytest.mark.skipif(not (DEMO / "model.onnx").exists(), reason="models/demo not present")


def test_demo_bundle_is_valid_and_small():
    bundle = load_bundle(DEMO)
    assert bundle.task == "multilabel"
    assert bundle.labels == ["Cardiomegaly", "Emphysema", "Opacity"]
    assert sum(f.stat().st_size for f in DEMO.iterdir()) <= 20 * 1024 * 1024
    assert bundle.warnings == [] and "Intended use" in bundle.card_text
    assert "int8" in bundle.variants
    fresh = bundle.metadata["metrics"]["fresh_synthetic"]["results"]["png"]
    assert all(v["auc_vs_no-finding"] >= 0.9 and v["auc_vs_rest"] >= 0.9 for v in fresh.values())


def test_demo_bundle_with_one_byte_changed_fails(tmp_path):
    copy = tmp_path / "demo"
    shutil.copytree(DEMO, copy)
    data = bytearray((copy / "model.onnx").read_bytes())
    data[len(data) // 3] ^= 0x10
    (copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError):
        load_bundle(copy)


def test_demo_bundle_ranks_findings_on_fresh_synthetic_films(tmp_path):
    pytest.importorskip("sklearn")
    from sklearn.metrics import roc_auc_score

    from medviewer.synthetic.dataset import generate_dataset
    from models.data import read_label_table
    from models.imageio import load_image

    manifest = generate_dataset(tmp_path / "fresh", 48, seed=12345, size=512, ct_series=0)
    records = read_label_table(manifest.data_entry_csv, fmt="cxr14")
    runner = ModelRunner(load_bundle(DEMO), "cpu")
    probs = runner.classify([load_image(r.path) for r in records])
    for name in runner.bundle.labels:
        y = np.array([name in r.labels for r in records])
        if 0 < y.sum() < len(y):
            assert roc_auc_score(y, [p[name] for p in probs]) > 0.8, name

"""Running bundles: classification, embeddings, attention, progress, cancel and providers."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("onnx")

from medviewer.errors import TaskCancelled
from medviewer.inference import ModelRunner, PreprocessError, describe, load_bundle
from medviewer.inference import providers as prov
from medviewer.inference.session import physical_core_count, session_options
from medviewer.inference.testing import write_toy_bundle
from medviewer.tasks import TaskState


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    return ModelRunner(load_bundle(write_toy_bundle(tmp_path_factory.mktemp("b") / "toy")), batch_size=4)


def _images(n=6):
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (40 + i, 50), dtype=np.uint8) for i in range(n)]


def test_classify_gives_a_probability_per_label(runner):
    results = runner.classify(_images())
    assert len(results) == 6
    for row in results:
        assert list(row) == ["Cardiomegaly", "Emphysema", "Opacity"]
        assert all(0.0 <= p <= 1.0 for p in row.values())


def test_batching_does_not_change_results(runner):
    images = _images(5)
    full = runner.run(images, ("logits",), batch_size=5)["logits"]
    split = runner.run(images, ("logits",), batch_size=2)["logits"]
    np.testing.assert_allclose(full, split, atol=1e-6)


def test_embeddings_are_unit_vectors(runner):
    emb = runner.embed(_images())
    assert emb.shape == (6, 16) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    raw = runner.embed(_images(), normalise=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)


def test_attention_is_stacked_per_block_with_softmax_rows(runner):
    attn = runner.attention(_images(2))
    assert attn.shape == (2, 2, 2, 17, 17)  # N, blocks, heads, T, T
    np.testing.assert_allclose(attn.sum(-1), 1.0, atol=1e-5)


def test_several_outputs_in_one_pass(runner):
    out = runner.run(_images(3), ("logits", "embedding", "tokens"))
    assert out["logits"].shape == (3, 3) and out["tokens"].shape == (3, 17, 16)


def test_empty_input(runner):
    assert runner.classify([]) == []
    assert runner.embed([]).shape == (0, 16)


def test_progress_reaches_one(runner):
    state = TaskState()
    runner.classify(_images(6), state=state)
    assert state.progress == 1.0 and "6/6" in state.status


def test_cancel_stops_between_batches(runner):
    state = TaskState()

    class Lazy:
        """Requests cancel while the second batch is being loaded."""

        def __len__(self):
            return 12

        def __getitem__(self, i):
            if i == 5:
                state.request_cancel()
            return np.zeros((40, 40), np.uint8)

    with pytest.raises(TaskCancelled):
        runner.classify(Lazy(), state=state)
    assert state.progress < 1.0


def test_bad_image_names_its_index(runner):
    images = _images(3)
    images[1] = np.zeros((2, 3, 4, 5))
    with pytest.raises(PreprocessError, match="image 1"):
        runner.classify(images)


def test_concurrent_use_from_worker_threads(runner):
    images = _images(4)
    expected = runner.run(images, ("logits",))["logits"]
    results = []
    threads = [threading.Thread(target=lambda: results.append(runner.run(images, ("logits",))["logits"]))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_allclose(r, expected, atol=1e-6)


def test_multiclass_probabilities_sum_to_one(tmp_path):
    r = ModelRunner(write_toy_bundle(tmp_path / "mc", task="multiclass", labels=("normal", "pneumonia")))
    for row in r.classify(_images(3)):
        assert sum(row.values()) == pytest.approx(1.0)


def test_regression_returns_raw_values(tmp_path):
    r = ModelRunner(write_toy_bundle(tmp_path / "reg", task="regression", labels=("weight_kg",)))
    logits = r.run(_images(2), ("logits",))["logits"]
    values = [row["weight_kg"] for row in r.classify(_images(2))]
    np.testing.assert_allclose(values, logits[:, 0], rtol=1e-6)


def test_provider_report_is_never_silent(runner):
    report = runner.provider_report()
    assert report.provider in report.active
    assert report.message.endswith(f"running on {report.provider_label}")
    if report.provider_label == "CPU" and "CUDAExecutionProvider" in prov.available_providers():
        assert "CUDA not available:" in report.message
    info = describe(runner)
    assert info["sha256"] == runner.bundle.sha256 and info["provider"] == report.provider_label


def test_cuda_fallback_is_reported_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.setattr(prov, "available_providers", lambda: [prov.CUDA, prov.CPU])
    monkeypatch.setattr(prov, "cuda_driver_problem", lambda: "no NVIDIA driver (test)")
    r = ModelRunner(write_toy_bundle(tmp_path / "t"), "cuda")
    assert r.provider == "CPU"
    assert r.provider_report().message == "CUDA not available: no NVIDIA driver (test); running on CPU"


def test_strict_refuses_to_fall_back(monkeypatch, tmp_path):
    from medviewer.inference import ProviderUnavailableError

    monkeypatch.setattr(prov, "available_providers", lambda: [prov.CUDA, prov.CPU])
    monkeypatch.setattr(prov, "cuda_driver_problem", lambda: "no NVIDIA driver (test)")
    with pytest.raises(ProviderUnavailableError, match="CUDA not available"):
        ModelRunner(write_toy_bundle(tmp_path / "t"), "cuda", strict=True)


def test_provider_dropped_by_onnxruntime_is_reported():
    report = prov.ProviderReport(requested=[prov.CUDA, prov.CPU])
    prov.finish_report(report, [prov.CUDA, prov.CPU], [prov.CPU])
    assert report.message.startswith("CUDA not available: ONNX Runtime could not start it")


def test_auto_skips_providers_missing_from_the_build(monkeypatch):
    monkeypatch.setattr(prov, "available_providers", lambda: [prov.CPU])
    chosen, report = prov.plan_providers("auto")
    assert chosen == [prov.CPU]
    assert report.message.endswith("running on CPU")


def test_resolve_preference():
    assert prov.resolve_preference("cpu") == [prov.CPU]
    assert prov.resolve_preference(["dml", "cuda"]) == [prov.DIRECTML, prov.CUDA, prov.CPU]
    assert prov.resolve_preference("auto")[-1] == prov.CPU
    with pytest.raises(ValueError, match="unknown execution provider"):
        prov.resolve_preference("tpu")


def test_session_options_suit_a_gui():
    opts = session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert opts.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    assert opts.intra_op_num_threads == physical_core_count() >= 1

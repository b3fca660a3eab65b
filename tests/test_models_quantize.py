"""The int8 variant the export ships: which ops are quantised, and how."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from models.export import INT8_OPS, export_onnx, measure_agreement, quantize_int8  # noqa: E402
from models.graph import ExportGraph  # noqa: E402
from models.vit import ArchConfig, build_model  # noqa: E402


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model(ArchConfig(model="vit_tiny_patch16_224", num_outputs=3, img_size=32, depth=2)).eval()
    folder = tmp_path_factory.mktemp("q")
    fp32, int8 = folder / "model.onnx", folder / "model.int8.onnx"
    export_onnx(ExportGraph(model), fp32, {"input_size": 32, "channels": 3}, 17)
    quantize_int8(fp32, int8, log=lambda line: None)
    return fp32, int8


def test_only_the_matmuls_are_quantised_and_the_patch_embedding_stays_fp32(int8_model):
    fp32, int8 = int8_model
    after = onnx.load(str(int8)).graph
    ops = [n.op_type for n in after.node]
    assert INT8_OPS == ("MatMul",)
    assert "Conv" in ops and "ConvInteger" not in ops  # the patch embedding
    # Every linear layer: qkv, proj, fc1, fc2 per block (2 blocks) and at least the head.
    assert ops.count("MatMulInteger") >= 4 * 2 + 1
    # Products of two activations (q @ k^T, attention @ v: 2 per block) are left in fp32.
    assert ops.count("MatMul") == 2 * 2
    assert not {"QLinearMatMul", "QAttention"} & set(ops)


def test_weights_are_quantised_per_output_channel(int8_model):
    _, int8 = int8_model
    graph = onnx.load(str(int8)).graph
    init = {t.name: t for t in graph.initializer}
    for node in (n for n in graph.node if n.op_type == "MatMulInteger"):
        weight = init[node.input[1]]
        scale = next(t for name, t in init.items() if name == node.input[1].replace("_quantized", "_scale"))
        assert weight.data_type == onnx.TensorProto.INT8
        assert list(scale.dims) == [weight.dims[1]]  # one scale per output column


def test_int8_agrees_with_fp32(int8_model):
    fp32, int8 = int8_model
    x = np.random.default_rng(0).standard_normal((48, 3, 32, 32)).astype(np.float32)
    agreement = measure_agreement(fp32, int8, {"x": x})
    assert agreement["n"] == 48 and agreement["embedding_mean_cosine"] >= 0.99


def test_the_app_session_fuses_the_quantised_matmuls(int8_model, tmp_path):
    # The speed comes from ONNX Runtime fusing DynamicQuantizeLinear + MatMulInteger + scale
    # into DynamicQuantizeMatMul at the optimisation level the app's sessions use.
    import onnxruntime as ort

    from medviewer.inference import session as app_session

    _, int8 = int8_model
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]
    assert ops.count("DynamicQuantizeMatMul") >= 9 and "MatMulInteger" not in ops
    assert "ORT_ENABLE_ALL" in open(app_session.__file__, encoding="utf-8").read()

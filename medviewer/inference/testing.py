"""Write a tiny, valid model bundle in milliseconds, for tests of code that runs models.

The graph is not a ViT, but it has a ViT bundle's interface: input ``image``
(N, C, S, S) and outputs ``logits`` (N, K), ``embedding`` (N, D), ``tokens``
(N, T, D) and ``attn_i`` (N, H, T, T) with softmax rows.  Needs the ``onnx``
package (a test/train dependency, not an app one); no torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from medviewer.inference.bundle import sha256_file
from medviewer.inference.metadata import FORMAT_NAME, FORMAT_VERSION


def write_toy_bundle(
    folder: str | Path,
    *,
    labels: tuple[str, ...] = ("Cardiomegaly", "Emphysema", "Opacity"),
    task: str = "multilabel",
    input_size: int = 32,
    resize: int = 36,
    channels: int = 3,
    patch_size: int = 8,
    embed_dim: int = 16,
    depth: int = 2,
    num_heads: int = 2,
    seed: int = 0,
    card: bool = True,
) -> Path:
    """Create a bundle folder with a small random ONNX graph; return the folder.

    Logits are a linear function of the per-channel image mean, so a brighter
    image gives different probabilities than a darker one.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    k, d = len(labels), embed_dim
    grid = input_size // patch_size
    tokens_n = 1 + grid * grid
    inits = [
        numpy_helper.from_array(rng.standard_normal((channels, d)).astype(np.float32), "w_emb"),
        numpy_helper.from_array(rng.standard_normal(d).astype(np.float32) * 0.1, "b_emb"),
        numpy_helper.from_array(rng.standard_normal((d, k)).astype(np.float32), "w_head"),
        numpy_helper.from_array(np.zeros(k, np.float32), "b_head"),
        numpy_helper.from_array(np.array([1, tokens_n, 1], np.int64), "tile_tokens"),
        numpy_helper.from_array(np.array([1, num_heads, 1, 1], np.int64), "tile_heads"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(
            np.linspace(0.5, 1.5, tokens_n, dtype=np.float32).reshape(1, tokens_n, 1), "token_scale"
        ),
    ]
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled4"]),
        helper.make_node("Flatten", ["pooled4"], ["pooled"]),
        helper.make_node("Gemm", ["pooled", "w_emb", "b_emb"], ["embedding"]),
        helper.make_node("Gemm", ["embedding", "w_head", "b_head"], ["logits"]),
        helper.make_node("Unsqueeze", ["embedding", "axis1"], ["emb3"]),
        helper.make_node("Tile", ["emb3", "tile_tokens"], ["tokens_flat"]),
        helper.make_node("Mul", ["tokens_flat", "token_scale"], ["tokens"]),
        helper.make_node("Transpose", ["tokens"], ["tokens_t"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["tokens", "tokens_t"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["probs3"], axis=-1),
        helper.make_node("Unsqueeze", ["probs3", "axis1"], ["probs4"]),
        helper.make_node("Tile", ["probs4", "tile_heads"], ["attn_0"]),
    ]
    outputs = [
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", k]),
        helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", d]),
        helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["batch", tokens_n, d]),
        helper.make_tensor_value_info(
            "attn_0", TensorProto.FLOAT, ["batch", num_heads, tokens_n, tokens_n]
        ),
    ]
    for i in range(1, depth):
        nodes.append(helper.make_node("Identity", ["attn_0"], [f"attn_{i}"]))
        outputs.append(helper.make_tensor_value_info(
            f"attn_{i}", TensorProto.FLOAT, ["batch", num_heads, tokens_n, tokens_n]))
    graph = helper.make_graph(
        nodes, "toy_vit_interface",
        [helper.make_tensor_value_info(
            "image", TensorProto.FLOAT, ["batch", channels, input_size, input_size]
        )],
        outputs, inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="medviewer-toy"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(folder / "model.onnx"))
    meta = toy_metadata(
        labels=list(labels), task=task, input_size=input_size, resize=resize, channels=channels,
        patch_size=patch_size, embed_dim=d, depth=depth, num_heads=num_heads,
        sha256=sha256_file(folder / "model.onnx"),
    )
    (folder / "metadata.json").write_text(json.dumps(meta, indent=2))
    if card:
        (folder / "card.md").write_text("# Toy model\n\nRandom weights, for tests only.\n")
    return folder


def toy_metadata(*, labels: list[str], task: str, input_size: int, resize: int, channels: int,
                 patch_size: int, embed_dim: int, depth: int, num_heads: int,
                 sha256: str) -> dict[str, Any]:
    """Return metadata describing a toy bundle (the same schema exported bundles use)."""
    grid = input_size // patch_size
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "name": "toy",
        "task": task,
        "labels": labels,
        "preprocessing": {"input_size": input_size, "resize": resize, "channels": channels,
                          "mean": [0.5], "std": [0.25], "window_policy": "display",
                          "interpolation": "bilinear"},
        "input": {"name": "image", "layout": "NCHW", "dtype": "float32"},
        "outputs": {"logits": "logits", "embedding": "embedding", "tokens": "tokens",
                    "attention": [f"attn_{i}" for i in range(depth)]},
        "embedding": {"dim": embed_dim, "metric": "cosine"},
        "architecture": {"family": "vit", "patch_size": patch_size, "grid": [grid, grid],
                         "num_prefix_tokens": 1, "depth": depth, "num_heads": num_heads,
                         "embed_dim": embed_dim, "pos_embed": "learned"},
        "model_file": "model.onnx",
        "model_sha256": sha256,
        "recipe": {"note": "random weights"},
        "training_data": {"source": "none"},
        "versions": {},
    }

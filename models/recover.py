"""Recover a torch checkpoint from a bundle's ``model.onnx``, to re-export an old bundle without retraining.

The TorchScript exporter keeps parameter names for everything except the
weights of ``Linear`` layers applied to 3-D inputs, which become transposed
``onnx::MatMul_*`` constants; each of those feeds a ``MatMul`` whose output is
added to the layer's named bias, so the weight's name follows from the bias's.
:func:`checkpoint_from_bundle` rebuilds the model from the bundle's metadata,
loads the recovered weights strictly (every parameter found, nothing left
over) and proves them by comparing the rebuilt model's logits with ONNX
Runtime's on random inputs (max abs diff <= 1e-4), so a re-export computes
what the old bundle computed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from medviewer.errors import MedViewerError
from models.vit import ArchConfig, build_model


class RecoveryError(MedViewerError):
    """The bundle's ONNX weights cannot be mapped back onto the model."""


def onnx_state_dict(onnx_path: Path) -> dict[str, torch.Tensor]:
    """Return the named parameters and buffers stored in an exported ``model.onnx``."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    state = {name[len("model."):]: torch.from_numpy(np.array(value))
             for name, value in inits.items() if name.startswith("model.")}
    for node in model.graph.node:
        if node.op_type != "MatMul" or node.input[1] not in inits or node.input[1].startswith("model."):
            continue
        bias = next((other for add in consumers.get(node.output[0], []) if add.op_type == "Add"
                     for other in add.input if other.endswith(".bias") and other in inits), None)
        if bias is None:
            raise RecoveryError(f"no bias names the weight {node.input[1]}", path=onnx_path)
        key = bias[len("model."):].replace(".bias", ".weight")
        state[key] = torch.from_numpy(np.ascontiguousarray(inits[node.input[1]].T))
    return state


def checkpoint_from_bundle(bundle_dir: str | Path, train_config: dict[str, Any]) -> dict[str, Any]:
    """Return a checkpoint dict (as ``models.train`` writes) rebuilt from a bundle.

    Parameters
    ----------
    bundle_dir : path
        The bundle to recover.
    train_config : dict
        ``TrainConfig.to_dict()`` of the recipe (the exporter re-reads the
        training data from its ``data`` block for the domain and OOD summary).

    Raises
    ------
    RecoveryError
        A parameter is missing or left over, or the rebuilt model disagrees with ONNX Runtime.
    """
    import json

    from medviewer.inference.session import create_session

    bundle_dir = Path(bundle_dir)
    meta = json.loads((bundle_dir / "metadata.json").read_text())
    arch_meta, pre = meta["architecture"], meta["preprocessing"]
    weights = onnx_state_dict(bundle_dir / meta.get("model_file", "model.onnx"))
    hidden = int(weights["vit.blocks.0.mlp.fc1.weight"].shape[0])
    arch = ArchConfig(model=arch_meta.get("timm_model", "custom"), num_outputs=len(meta["labels"]),
                      img_size=int(pre["input_size"]), in_chans=int(pre["channels"]),
                      patch_size=int(arch_meta["patch_size"]), embed_dim=int(arch_meta["embed_dim"]),
                      depth=int(arch_meta["depth"]), num_heads=int(arch_meta["num_heads"]),
                      mlp_ratio=hidden / int(arch_meta["embed_dim"]), pos_embed=arch_meta.get("pos_embed", "learned"))
    model = build_model(arch).eval()
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise RecoveryError(f"recovered weights do not fit: missing {missing}, left over {unexpected}",
                            path=bundle_dir)
    session, _ = create_session(bundle_dir / meta.get("model_file", "model.onnx"), "cpu")
    x = np.random.default_rng(0).standard_normal((4, arch.in_chans, arch.img_size, arch.img_size)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = session.run([meta["outputs"]["logits"]], {meta["input"]["name"]: x})[0]
    diff = float(np.abs(ref - got).max())
    if diff > 1e-4:
        raise RecoveryError(f"the rebuilt model differs from model.onnx by {diff:.2e}", path=bundle_dir)
    recipe = meta.get("recipe", {})
    return {
        "format": "medviewer-vit-checkpoint",
        "arch": arch.to_dict(),
        "preprocess": pre,
        "spec": meta["training_data"]["task"],
        "model": model.state_dict(),
        "epoch": int(recipe.get("best_epoch", 1)) - 1,
        "best_score": (meta.get("metrics", {}).get("val") or {}).get("score"),
        "history": [],
        "train_config": train_config,
        "data": meta.get("training_data", {}),
        "val_metrics": (meta.get("metrics") or {}).get("val"),
        "test_metrics": (meta.get("metrics") or {}).get("test"),
        "parity_inputs": None,
        "recovered_from": {"bundle": str(bundle_dir), "model_sha256": meta["model_sha256"],
                           "logits_max_abs_diff": float(f"{diff:.3g}")},
    }

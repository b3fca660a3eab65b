"""The Grad-CAM graph of a bundle: last block's ``norm1`` activations and the class-logit gradient, in ONNX.

References
----------
Selvaraju et al., "Grad-CAM", ICCV 2017, eq. 1-2 (``models/gradcam.py`` is
the torch reference).  The gradient is the vector-Jacobian product of the
last block and the head, written out with explicit tensor operations so the
TorchScript ONNX exporter traces it like any forward graph (``torch.autograd``
inside an exported function does not trace, and ``make_fx`` leaves ATen
backward ops that have no ONNX symbolic):

* LayerNorm ``y = w (x - mu) / sigma + b``: ``dx = (g' - mean(g') - x^ mean(g' x^)) / sigma``
  with ``g' = g w`` and ``x^`` the normalised input;
* GELU (erf): ``d/dz = Phi(z) + z phi(z)``; tanh approximation differentiated as written;
* softmax rows ``P``: ``dS = P (dP - sum(dP P))``; ``S = (q s) k^T``: ``dq = s dS k``, ``dk = s dS^T q``;
* the residual ``x + attn(norm1(x))`` adds nothing to ``d logit / d norm1(x)``: only the
  attention branch depends on the activations Grad-CAM explains.

The graph's inputs are ``image`` (B, C, S, S) and ``target`` (B, K): the
gradient is that of ``sum_k target[b, k] * logit[b, k]``, so a one-hot row
explains one class and a single run serves any label.  Outputs: ``logits``,
``gradcam_activations`` and ``gradcam_gradients`` (both B, T, d).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medviewer.explain.gradcam import cam_from_gradients
from models.vit import ViTClassifier

GRADCAM_FILE = "gradcam.onnx"
INPUT_NAMES = ["image", "target"]
OUTPUT_NAMES = ["logits", "gradcam_activations", "gradcam_gradients"]
PARITY_MIN_PEARSON = 0.99


class GradcamUnsupportedError(TypeError):
    """The model's last block or head has a part the hand-written backward does not cover."""


def _check_supported(model: ViTClassifier) -> None:
    from timm.layers.attention import Attention
    from timm.models.vision_transformer import Block

    block = model.blocks[-1]
    vit = model.vit
    problems = []
    if type(block) is not Block or type(block.attn) is not Attention:
        problems.append(f"last block is {type(block).__name__}/{type(block.attn).__name__}")
    else:
        attn = block.attn
        for name in ("q_norm", "k_norm", "norm"):
            if not isinstance(getattr(attn, name), nn.Identity):
                problems.append(f"attention {name} is {type(getattr(attn, name)).__name__}")
        if getattr(attn, "gate", None) is not None:
            problems.append("gated attention")
        if not isinstance(block.mlp.act, nn.GELU):
            problems.append(f"MLP activation {type(block.mlp.act).__name__}")
        if not isinstance(getattr(block.mlp, "norm", nn.Identity()), nn.Identity):
            problems.append("MLP norm")
        for name in ("norm1", "norm2"):
            if not isinstance(getattr(block, name), nn.LayerNorm):
                problems.append(f"{name} is {type(getattr(block, name)).__name__}")
    for name in ("norm", "fc_norm"):
        part = getattr(vit, name, nn.Identity())
        if not isinstance(part, (nn.Identity, nn.LayerNorm)):
            problems.append(f"vit.{name} is {type(part).__name__}")
    if getattr(vit, "attn_pool", None) is not None:
        problems.append("attention pooling")
    if vit.global_pool not in ("token", "avg"):
        problems.append(f"global pool {vit.global_pool!r}")
    if not isinstance(vit.head, nn.Linear):
        problems.append(f"head is {type(vit.head).__name__}")
    if problems:
        raise GradcamUnsupportedError("Grad-CAM graph not supported: " + "; ".join(problems))


def _layer_norm_backward(norm: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    if isinstance(norm, nn.Identity):
        return grad
    mu = x.mean(-1, keepdim=True)
    rstd = torch.rsqrt(((x - mu) ** 2).mean(-1, keepdim=True) + norm.eps)
    xhat = (x - mu) * rstd
    g = grad * norm.weight if norm.weight is not None else grad
    return rstd * (g - g.mean(-1, keepdim=True) - xhat * (g * xhat).mean(-1, keepdim=True))


def _gelu_derivative(act: nn.GELU, z: torch.Tensor) -> torch.Tensor:
    if act.approximate == "tanh":
        c = math.sqrt(2.0 / math.pi)
        u = c * (z + 0.044715 * z ** 3)
        t = torch.tanh(u)
        return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * c * (1 + 3 * 0.044715 * z * z)
    cdf = 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))
    pdf = torch.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return cdf + z * pdf


def _scale(module: nn.Module) -> torch.Tensor | float:
    """Return a LayerScale's gamma (1 for Identity)."""
    return module.gamma if hasattr(module, "gamma") else 1.0


class GradcamGraph(nn.Module):
    """Return (logits, norm1 activations, d(target . logits)/d activations) of the last block.

    Parameters
    ----------
    model : ViTClassifier
        A timm-based ViT in eval mode (dropout and drop-path are identities).

    Raises
    ------
    GradcamUnsupportedError
        The last block or the head uses a part the written-out backward lacks.
    """

    def __init__(self, model: ViTClassifier) -> None:
        super().__init__()
        _check_supported(model)
        self.model = model.eval()
        # Eval mode for the wrapper too: torch.onnx.export restores the mode it found, and a wrapper
        # in training mode would leave a hybrid's BatchNorm on batch statistics.
        self.eval()

    def forward(self, image: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Return ``logits`` (B, K), ``activations`` and ``gradients`` (B, T, d)."""
        m, vit = self.model, self.model.vit
        block = m.blocks[-1]
        attn = block.attn
        x = m.prepare_tokens(image)
        for earlier in list(m.blocks)[:-1]:
            x = earlier(x)
        b, n, _ = x.shape
        heads, hd = attn.num_heads, attn.head_dim
        # Forward of the last block and the head, keeping what the backward needs.
        a = block.norm1(x)
        qkv = attn.qkv(a).reshape(b, n, 3, heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        probs = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        merged = (probs @ v).transpose(1, 2).reshape(b, n, attn.attn_dim)
        x1 = x + block.ls1(attn.proj(merged))
        n2 = block.norm2(x1)
        z = block.mlp.fc1(n2)
        x2 = x1 + block.ls2(block.mlp.fc2(block.mlp.act(z)))
        tokens = vit.norm(x2)
        if vit.global_pool == "avg":
            pooled = tokens[:, m.num_prefix_tokens:].mean(dim=1)
        else:
            pooled = tokens[:, 0]
        embedding = vit.fc_norm(pooled)
        logits = m.head(embedding)
        # Backward: d(sum_k target_k logit_k) / d a.
        g_emb = (target * m.target_scale) @ vit.head.weight                      # (B, d)
        g_pooled = _layer_norm_backward(vit.fc_norm, pooled, g_emb)
        weights = torch.zeros(n, 1, dtype=x.dtype)
        if vit.global_pool == "avg":
            weights[m.num_prefix_tokens:] = 1.0 / (n - m.num_prefix_tokens)
        else:
            weights[0] = 1.0
        g_tokens = weights.unsqueeze(0) * g_pooled.unsqueeze(1)                 # (B, T, d)
        g_x2 = _layer_norm_backward(vit.norm, x2, g_tokens)
        g_h = (g_x2 * _scale(block.ls2)) @ block.mlp.fc2.weight
        g_z = g_h * _gelu_derivative(block.mlp.act, z)
        g_x1 = g_x2 + _layer_norm_backward(block.norm2, x1, g_z @ block.mlp.fc1.weight)
        g_merged = (g_x1 * _scale(block.ls1)) @ attn.proj.weight                  # (B, T, attn_dim)
        g_out = g_merged.reshape(b, n, heads, hd).transpose(1, 2)                 # (B, H, T, hd)
        g_probs = g_out @ v.transpose(-2, -1)
        g_v = probs.transpose(-2, -1) @ g_out
        g_scores = probs * (g_probs - (g_probs * probs).sum(-1, keepdim=True))
        g_q = (g_scores @ k) * attn.scale
        g_k = (g_scores.transpose(-2, -1) @ q) * attn.scale
        g_qkv = torch.stack([g_q, g_k, g_v]).permute(1, 3, 0, 2, 4).reshape(b, n, 3 * attn.attn_dim)
        g_a = g_qkv @ attn.qkv.weight
        return logits, a, g_a


def export_gradcam_graph(model: ViTClassifier, path: Path, preprocess: dict[str, Any], opset: int = 17) -> None:
    """Write the Grad-CAM ONNX graph of ``model`` with a dynamic batch axis."""
    import onnx

    graph = GradcamGraph(model)
    size, channels = int(preprocess["input_size"]), int(preprocess["channels"])
    k = int(model.arch.num_outputs)
    example = (torch.randn(2, channels, size, size), torch.eye(k)[torch.tensor([0, k - 1])])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings: the parity check is the proof
        torch.onnx.export(graph, example, str(path), dynamo=False, opset_version=opset,
                          input_names=INPUT_NAMES, output_names=OUTPUT_NAMES, do_constant_folding=True,
                          dynamic_axes={name: {0: "batch"} for name in INPUT_NAMES + OUTPUT_NAMES})
    onnx.checker.check_model(str(path))
    store_weights_half(path)


def store_weights_half(path: Path, min_elements: int = 4096) -> None:
    """Store the graph's large float32 weights as float16, cast back to float32 inside the graph.

    Halves the file (the Grad-CAM graph repeats the model's weights) while
    every operation still runs in float32; ONNX Runtime folds the casts into
    constants when the session starts, so inference speed is unchanged.  The
    parity check with torch runs on the file as stored.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    casts, keep = [], []
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and int(np.prod(init.dims)) >= min_elements:
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), f"{init.name}__fp16")
            keep.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                          name=f"{init.name}__cast"))
        else:
            keep.append(init)
    del graph.initializer[:]
    graph.initializer.extend(keep)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def gradcam_parity(model: ViTClassifier, path: Path, images: np.ndarray) -> dict[str, Any]:
    """Compare the ONNX graph's Grad-CAM with torch autograd Grad-CAM, per image and label.

    The per-image Pearson r is taken on the signed maps (before the ReLU,
    which would leave some maps empty and r undefined) and, where both are
    non-empty, on the published ReLU maps.
    """
    from medviewer.inference.session import create_session
    from models.gradcam import vit_gradcam

    session, _ = create_session(path, "cpu")
    k = int(model.arch.num_outputs)
    prefix, grid = model.num_prefix_tokens, model.grid
    signed, relu_r, worst_logit = [], [], 0.0
    for index in range(k):
        target = np.zeros((len(images), k), np.float32)
        target[:, index] = 1.0
        logits, acts, grads = session.run(OUTPUT_NAMES, {"image": images, "target": target})
        with torch.no_grad():
            ref_logits = model(torch.from_numpy(images)).numpy()
        worst_logit = max(worst_logit, float(np.abs(ref_logits - logits).max()))
        got_signed = cam_from_gradients(acts, grads, prefix, grid, relu=False)
        ref_signed = vit_gradcam(model, torch.from_numpy(images), index, relu=False)
        for g, r in zip(got_signed, ref_signed):
            signed.append(_pearson(g, r))
            gr, rr = np.maximum(g, 0), np.maximum(r, 0)
            if gr.std() > 0 and rr.std() > 0:
                relu_r.append(_pearson(gr, rr))
    signed_arr = np.array(signed)
    relu_arr = np.array(relu_r) if relu_r else np.array([np.nan])
    return {
        "reference": "models.gradcam.vit_gradcam (torch autograd, blocks[-1].norm1)",
        "n_maps": int(len(signed_arr)),
        "pearson_min": float(f"{np.nanmin(signed_arr):.6f}"),
        "pearson_median": float(f"{np.nanmedian(signed_arr):.6f}"),
        "pearson_relu_min": float(f"{np.nanmin(relu_arr):.6f}"),
        "logits_max_abs_diff": float(f"{worst_logit:.3g}"),
        "limit": f"per-image Pearson r >= {PARITY_MIN_PEARSON}",
    }


def add_gradcam_graph(model: ViTClassifier, folder: Path, preprocess: dict[str, Any], images: np.ndarray,
                      opset: int = 17, log=print) -> dict[str, Any] | None:
    """Export, check and describe the Grad-CAM graph in a bundle folder.

    Returns the ``gradcam`` block of the metadata, or None (with a message,
    and no file left behind) when the architecture is unsupported or the
    parity with torch is below the limit: the app then falls back to
    occlusion and says so.
    """
    from medviewer.fileio import sha256_file

    path = folder / GRADCAM_FILE
    try:
        export_gradcam_graph(model, path, preprocess, opset)
    except GradcamUnsupportedError as exc:
        log(f"gradcam: {exc}; the bundle will offer occlusion only")
        return None
    parity = gradcam_parity(model, path, images)
    if not parity["pearson_min"] >= PARITY_MIN_PEARSON:
        path.unlink(missing_ok=True)
        log(f"gradcam: NOT written, parity with torch too low ({parity})")
        return None
    log(f"gradcam: written ({parity})")
    return {
        "file": GRADCAM_FILE,
        "sha256": sha256_file(path),
        "layer": "blocks[-1].norm1",
        "inputs": {"image": "image", "target": "target"},
        "outputs": {"logits": OUTPUT_NAMES[0], "activations": OUTPUT_NAMES[1], "gradients": OUTPUT_NAMES[2]},
        "formula": "ReLU(sum_k mean_patches(dy/dA_k) A_k) over patch tokens (Selvaraju et al. 2017)",
        "parity": parity,
    }

"""Grad-CAM of a ViT on the last block's ``norm1``: the torch reference for the app's saliency maps.

References
----------
Selvaraju RR, Cogswell M, Das A, Vedantam R, Parikh D, Batra D. "Grad-CAM:
Visual Explanations from Deep Networks via Gradient-based Localization",
ICCV 2017, eq. 1-2: weights alpha_k = mean over positions of d y_c / d A_k,
map = ReLU(sum_k alpha_k A_k).
Gildenblat J et al., ``pytorch-grad-cam`` (``vit_example.py``): for a ViT the
activations A are the output of ``blocks[-1].norm1`` at the patch tokens
(the class token dropped), reshaped to the patch grid; the retrieval paper
the app builds on shows the same map.

The app cannot run this (no torch): the exporter writes the same computation
as an ONNX graph (``models/gradcam_graph.py``) and checks it against this
function; ``tests/test_gradcam_onnx.py`` repeats that check, and
``tests/test_explain_gradcam.py`` measures how well the gradient-free
occlusion map agrees with it.
"""

from __future__ import annotations

import numpy as np
import torch

from models.vit import ViTClassifier


def vit_gradcam(model: ViTClassifier, images: torch.Tensor, label_index: int, *,
                relu: bool = True) -> np.ndarray:
    """Return Grad-CAM maps (N, grid rows, grid cols) of one output for a preprocessed batch.

    Parameters
    ----------
    model : ViTClassifier
        The model (its weights are not changed; gradients are discarded).
    images : torch.Tensor
        (N, C, S, S) preprocessed inputs.
    label_index : int
        The logit explained.
    relu : bool
        Apply the final ReLU (Grad-CAM as published); False keeps the signed map.
    """
    model.eval()
    captured: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        output.retain_grad()
        captured["a"] = output

    hook = model.blocks[-1].norm1.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            logits = model(images)
            model.zero_grad(set_to_none=True)
            logits[:, label_index].sum().backward()
    finally:
        hook.remove()
    prefix = model.num_prefix_tokens
    acts = captured["a"][:, prefix:].detach()
    grads = captured["a"].grad[:, prefix:]
    weights = grads.mean(dim=1, keepdim=True)  # alpha_k: mean gradient over the patches
    cam = (weights * acts).sum(dim=-1)
    if relu:
        cam = torch.relu(cam)
    rows, cols = model.grid
    model.zero_grad(set_to_none=True)
    return cam.reshape(-1, rows, cols).numpy()

"""The module that is exported to ONNX: logits, embedding, tokens and every block's attention.

timm's attention uses fused ``scaled_dot_product_attention``, which never
materialises the attention probabilities.  :class:`ExportGraph` runs the same
blocks with the attention written out (the unfused path of
``timm.layers.attention.Attention``) so the probabilities become outputs;
:func:`check_wrapper_matches` proves on the model itself that the rewrite
computes the same logits as ``model(x)``.
"""

from __future__ import annotations

import torch
from torch import nn

from models.vit import ViTClassifier


def attention_block(block: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run one timm ``Block`` (eval mode) and return (output tokens, attention probabilities).

    Raises
    ------
    TypeError
        The block is not a standard timm pre-norm ``Block`` with ``Attention``.
    """
    from timm.layers.attention import Attention
    from timm.models.vision_transformer import Block

    if type(block) is not Block or type(block.attn) is not Attention:
        raise TypeError(
            f"attention maps can be exported only for timm Block/Attention, not "
            f"{type(block).__name__}/{type(getattr(block, 'attn', None)).__name__}"
        )
    attn = block.attn
    b, n, _ = x.shape
    h = block.norm1(x)
    qkv = attn.qkv(h).reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    probs = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
    out = (probs @ v).transpose(1, 2).reshape(b, n, attn.attn_dim)
    out = attn.norm(out)
    if getattr(attn, "gate", None) is not None:
        out = out * attn.gate(h).sigmoid()
    x = x + block.ls1(attn.proj(out))
    x = x + block.ls2(block.mlp(block.norm2(x)))
    return x, probs


class ExportGraph(nn.Module):
    """Wrap a :class:`ViTClassifier` so its forward returns every output a bundle carries.

    Outputs, in order: ``logits`` (B, K), ``embedding`` (B, d), ``tokens``
    (B, T, d), then ``attn_0`` ... ``attn_{L-1}`` (B, heads, T, T).
    """

    def __init__(self, model: ViTClassifier) -> None:
        super().__init__()
        self.model = model
        # The wrapper itself in eval mode: torch.onnx.export restores the mode it found, and a
        # wrapper left in training mode would switch a hybrid's BatchNorm to batch statistics.
        self.eval()

    @property
    def output_names(self) -> list[str]:
        """Return the ONNX output names, in forward order."""
        depth = len(self.model.blocks)
        return ["logits", "embedding", "tokens", *[f"attn_{i}" for i in range(depth)]]

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Return (logits, embedding, tokens, attn_0, ..., attn_{L-1})."""
        x = self.model.prepare_tokens(image)
        maps = []
        for block in self.model.blocks:
            x, probs = attention_block(block, x)
            maps.append(probs)
        tokens = self.model.vit.norm(x)
        embedding = self.model.pre_logits(tokens)
        logits = self.model.head(embedding)
        return (logits, embedding, tokens, *maps)


@torch.no_grad()
def check_wrapper_matches(model: ViTClassifier, x: torch.Tensor, atol: float = 1e-5) -> float:
    """Return max |ExportGraph logits - model(x)|; raise if above ``atol``."""
    model.eval()
    diff = float((ExportGraph(model)(x)[0] - model(x)).abs().max())
    if diff > atol:
        raise AssertionError(f"the export graph differs from the model by {diff:.2e} (> {atol:.0e})")
    return diff

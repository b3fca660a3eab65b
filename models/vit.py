"""Vision Transformers for MedViewer: timm ViTs with a learned or similarity-based positional encoding.

References
----------
Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021 (ViT; timm's
``VisionTransformer``).
Leonardi, Portinale, Santomauro, "Similarity-based positional encoding for
enhanced classification in medical images", 2024 (CEUR-WS Vol-3880 paper 16):
convolutional features per patch, cosine-similarity matrix ``S`` (N x N) between
patches, positional encoding ``PE = S W`` with ``W`` learnable (N x d), added to
the patch embeddings.  Here ``S`` is divided by N so that ``PE`` starts at the
magnitude of timm's learned embedding (std 0.02); the scale is absorbed by
``W`` and changes nothing else.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medviewer.errors import MedViewerError

POS_EMBEDS = ("learned", "similarity")


class PretrainedUnavailableError(MedViewerError):
    """timm's pretrained weights cannot be obtained (no network, unknown tag)."""


@dataclass
class ArchConfig:
    """Everything needed to rebuild a model from a checkpoint.

    ``model`` is a timm name (``vit_tiny_patch16_224``, ``vit_small_patch32_224``,
    ...) or ``custom``; the size fields override the named model's (or define
    the custom one when given).
    """

    model: str = "vit_small_patch16_224"
    num_outputs: int = 1
    img_size: int = 224
    in_chans: int = 3
    patch_size: int | None = None
    embed_dim: int | None = None
    depth: int | None = None
    num_heads: int | None = None
    mlp_ratio: float | None = None
    pos_embed: str = "learned"
    sim_features: int = 32
    drop_path: float = 0.0
    drop_rate: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict."""
        return asdict(self)


class SimilarityPositionalEncoding(nn.Module):
    """PE = (S / N) W with S the cosine similarity of convolutional patch features.

    Parameters
    ----------
    in_chans : int
        Image channels.
    patch_size : int
        ViT patch size: the second convolution has this kernel and stride, so
        it yields one feature vector per patch.
    num_patches : int
        N, the number of patches.
    embed_dim : int
        d, the token dimension.
    features : int
        Width of the convolutional features.
    """

    def __init__(self, in_chans: int, patch_size: int, num_patches: int, embed_dim: int,
                 features: int = 32) -> None:
        super().__init__()
        hidden = max(8, features // 2)
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, hidden, kernel_size=3, padding=1),
            nn.GELU(),
            nn.Conv2d(hidden, features, kernel_size=patch_size, stride=patch_size),
        )
        self.num_patches = num_patches
        self.weight = nn.Parameter(torch.zeros(num_patches, embed_dim))
        nn.init.trunc_normal_(self.weight, std=0.02)

    def similarity(self, x: torch.Tensor) -> torch.Tensor:
        """Return S, the (B, N, N) cosine similarity between patch features."""
        f = self.features(x).flatten(2).transpose(1, 2)  # (B, N, features)
        f = F.normalize(f, dim=-1, eps=1e-6)
        return f @ f.transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the (B, N, d) positional encoding of image batch ``x``."""
        return (self.similarity(x) / self.num_patches) @ self.weight


class ViTClassifier(nn.Module):
    """A timm ViT with an optional similarity-based positional encoding.

    The regression targets are standardised during training; the buffers
    ``target_scale`` and ``target_shift`` map the head's output back to target
    units, so an exported model outputs real values (1 and 0 otherwise).
    """

    def __init__(self, arch: ArchConfig, pretrained: bool = False) -> None:
        super().__init__()
        self.arch = arch
        self.vit = _create_timm_vit(arch, pretrained)
        self.sim_pe = None
        if arch.pos_embed == "similarity":
            pe = self.vit.patch_embed
            self.sim_pe = SimilarityPositionalEncoding(
                arch.in_chans, pe.patch_size[0], pe.num_patches, self.vit.embed_dim, arch.sim_features
            )
        self.register_buffer("target_scale", torch.ones(arch.num_outputs))
        self.register_buffer("target_shift", torch.zeros(arch.num_outputs))

    @property
    def blocks(self) -> nn.Sequential:
        """Return the transformer blocks."""
        return self.vit.blocks

    @property
    def num_prefix_tokens(self) -> int:
        """Return the number of class/register tokens before the patches."""
        return int(self.vit.num_prefix_tokens)

    @property
    def grid(self) -> tuple[int, int]:
        """Return the patch grid (rows, columns)."""
        return tuple(self.vit.patch_embed.grid_size)

    def prepare_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Return the token sequence that enters the first block."""
        vit = self.vit
        tokens = vit.patch_embed(x)
        if self.sim_pe is not None:
            tokens = tokens + self.sim_pe(x)
        tokens = vit._pos_embed(tokens)  # class token (+ learned PE when pos_embed="learned")
        tokens = vit.patch_drop(tokens)
        return vit.norm_pre(tokens)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the final normalised tokens (B, T, d)."""
        return self.vit.norm(self.vit.blocks(self.prepare_tokens(x)))

    def pre_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """Return the embedding (pooled, pre-logits) from the final tokens."""
        return self.vit.forward_head(tokens, pre_logits=True)

    def head(self, embedding: torch.Tensor) -> torch.Tensor:
        """Return logits (or target-unit regression values) from an embedding."""
        return self.vit.head(embedding) * self.target_scale + self.target_shift

    def raw_head(self, embedding: torch.Tensor) -> torch.Tensor:
        """Return the head output before the target scaling (the training loss uses this)."""
        return self.vit.head(embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits (B, num_outputs)."""
        return self.head(self.pre_logits(self.forward_features(x)))


def _create_timm_vit(arch: ArchConfig, pretrained: bool) -> nn.Module:
    import timm
    from timm.models.vision_transformer import VisionTransformer

    if arch.pos_embed not in POS_EMBEDS:
        raise ValueError(f"pos_embed must be one of {POS_EMBEDS}, not {arch.pos_embed!r}")
    overrides = {
        k: v
        for k, v in {
            "patch_size": arch.patch_size,
            "embed_dim": arch.embed_dim,
            "depth": arch.depth,
            "num_heads": arch.num_heads,
            "mlp_ratio": arch.mlp_ratio,
        }.items()
        if v is not None
    }
    common = {
        "num_classes": arch.num_outputs,
        "img_size": arch.img_size,
        "in_chans": arch.in_chans,
        "drop_path_rate": arch.drop_path,
        "drop_rate": arch.drop_rate,
        "pos_embed": "none" if arch.pos_embed == "similarity" else "learn",
    }
    if arch.model == "custom":
        if pretrained:
            raise PretrainedUnavailableError(
                "a custom ViT has no pretrained weights", hint="drop --pretrained or pick a timm model"
            )
        missing = [k for k in ("patch_size", "embed_dim", "depth", "num_heads") if k not in overrides]
        if missing:
            raise ValueError(f"a custom ViT needs {', '.join(missing)}")
        return VisionTransformer(**common, **overrides)
    if not arch.model.startswith(("vit_", "deit_")):
        raise ValueError(f"{arch.model!r} is not a timm ViT (vit_* or deit_*) nor 'custom'")
    if not pretrained:
        return timm.create_model(arch.model, pretrained=False, **common, **overrides)
    try:
        with _hub_offline():  # the local cache first: no network, no retries
            return timm.create_model(arch.model, pretrained=True, **common, **overrides)
    except Exception:  # not cached: try the network below
        pass
    if not _hub_reachable():
        raise PretrainedUnavailableError(
            f"pretrained weights for {arch.model} are unavailable (huggingface.co cannot be "
            "reached and they are not in the local Hugging Face cache)",
            hint=_PRETRAINED_HINT,
        )
    try:
        return timm.create_model(arch.model, pretrained=True, **common, **overrides)
    except Exception as exc:  # hub/network errors come in many types
        why = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise PretrainedUnavailableError(
            f"pretrained weights for {arch.model} are unavailable ({why})", hint=_PRETRAINED_HINT
        ) from exc


_PRETRAINED_HINT = (
    "train from scratch (omit --pretrained, or add --allow-scratch), or put the weights in the "
    "Hugging Face cache (HF_HOME) from a machine with network access"
)


@contextmanager
def _hub_offline():
    """Make huggingface_hub use its cache only, for the duration of the block."""
    try:
        from huggingface_hub import constants
    except ImportError:
        yield
        return
    previous = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = previous


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Return whether huggingface.co accepts a connection (so a download can be tried)."""
    import os
    import socket

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def build_model(arch: ArchConfig, pretrained: bool = False) -> ViTClassifier:
    """Build a :class:`ViTClassifier` from its configuration."""
    return ViTClassifier(arch, pretrained=pretrained)


def architecture_summary(model: ViTClassifier) -> dict[str, Any]:
    """Return the ``architecture`` block of a bundle's metadata."""
    vit = model.vit
    block = vit.blocks[0]
    return {
        "family": "vit",
        "timm_model": model.arch.model,
        "patch_size": int(vit.patch_embed.patch_size[0]),
        "grid": list(model.grid),
        "num_prefix_tokens": model.num_prefix_tokens,
        "depth": len(vit.blocks),
        "num_heads": int(block.attn.num_heads),
        "embed_dim": int(vit.embed_dim),
        "pos_embed": model.arch.pos_embed,
        "global_pool": vit.global_pool,
        "parameters": int(sum(p.numel() for p in model.parameters())),
    }

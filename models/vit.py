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
Hybrid ViT (Dosovitskiy et al. 2021, section 3.1): the patch embedding is a
CNN feature map, here ImageNet EfficientNet-Lite0 (:mod:`models.pretrained`)
cut at a chosen stage, each feature-map position projected (1 x 1 conv) to one
token; the transformer and its attention are unchanged, so rollout still applies.
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
STEMS = ("efficientnet_lite0",)
# Where the EfficientNet-Lite0 stem is cut: name -> (blocks kept, with conv_head, channels, stride).
STEM_LAYERS = {"stage4": (5, False, 112, 16), "stage6": (7, False, 320, 32), "head": (7, True, 1280, 32)}


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
    stem: str | None = None  # a CNN stem makes a hybrid ViT (STEMS)
    stem_layer: str = "head"  # where the stem is cut (STEM_LAYERS)

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


class CNNStem(nn.Module):
    """A hybrid ViT's patch embedding: EfficientNet-Lite0 features, one token per position.

    Parameters
    ----------
    img_size : int
        Input size (a multiple of the stem's stride).
    embed_dim : int
        Token width.
    layer : str
        Where the CNN is cut (:data:`STEM_LAYERS`).
    pretrained : bool
        Start from the ImageNet weights of :mod:`models.pretrained`.
    state_dict : mapping, optional
        Weights in the package's layout, instead of the package's file.
    """

    def __init__(self, img_size: int, embed_dim: int, layer: str = "head", pretrained: bool = False,
                 state_dict=None) -> None:
        super().__init__()
        from models.pretrained import efficientnet_lite0

        if layer not in STEM_LAYERS:
            raise ValueError(f"stem_layer must be one of {sorted(STEM_LAYERS)}, not {layer!r}")
        blocks, head, channels, stride = STEM_LAYERS[layer]
        if img_size % stride:
            raise ValueError(f"a hybrid ViT cut at {layer} needs an input size that is a multiple of {stride}")
        cnn = efficientnet_lite0(pretrained=pretrained, state_dict=state_dict)
        self.conv_stem, self.bn1, self.blocks = cnn.conv_stem, cnn.bn1, cnn.blocks[:blocks]
        self.conv_head = cnn.conv_head if head else nn.Identity()
        self.bn2 = cnn.bn2 if head else nn.Identity()
        self.feature_channels = channels
        self.proj = nn.Conv2d(channels, embed_dim, kernel_size=1)
        self.img_size = (img_size, img_size)
        self.patch_size = (stride, stride)
        self.grid_size = (img_size // stride, img_size // stride)
        self.num_patches = self.grid_size[0] * self.grid_size[1]

    def cnn_parameters(self) -> list[nn.Parameter]:
        """Return the CNN's parameters (not the token projection)."""
        return [p for n, p in self.named_parameters() if not n.startswith("proj.")]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the CNN feature map (B, C, h, w)."""
        return self.bn2(self.conv_head(self.blocks(self.bn1(self.conv_stem(x)))))

    def tokens(self, features: torch.Tensor) -> torch.Tensor:
        """Return the tokens (B, h*w, d) of a feature map."""
        return self.proj(features).flatten(2).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the tokens (B, N, d) of an image batch."""
        return self.tokens(self.features(x))


class ViTClassifier(nn.Module):
    """A timm ViT with an optional similarity-based positional encoding.

    The regression targets are standardised during training; the buffers
    ``target_scale`` and ``target_shift`` map the head's output back to target
    units, so an exported model outputs real values (1 and 0 otherwise).
    """

    def __init__(self, arch: ArchConfig, pretrained: bool = False, stem_pretrained: bool = False,
                 stem_state_dict=None) -> None:
        super().__init__()
        self.arch = arch
        self.vit = _create_timm_vit(arch, pretrained)
        self.sim_pe = None
        if arch.stem is not None:
            if arch.stem not in STEMS:
                raise ValueError(f"stem must be one of {STEMS}, not {arch.stem!r}")
            if arch.pos_embed != "learned":
                raise ValueError("a hybrid ViT uses the learned positional embedding")
            stem = CNNStem(arch.img_size, self.vit.embed_dim, arch.stem_layer, stem_pretrained,
                           stem_state_dict)
            if stem.num_patches != self.vit.patch_embed.num_patches:
                raise ValueError(f"the stem's {stem.grid_size} grid does not match the ViT's patch grid; "
                                 f"set patch_size to the stem's stride {stem.patch_size[0]}")
            self.vit.patch_embed = stem
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

    @property
    def is_hybrid(self) -> bool:
        """Return whether the patch embedding is a CNN stem."""
        return isinstance(self.vit.patch_embed, CNNStem)

    def prepare_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Return the token sequence that enters the first block."""
        vit = self.vit
        tokens = vit.patch_embed(x)
        if self.sim_pe is not None:
            tokens = tokens + self.sim_pe(x)
        return self.finish_tokens(tokens)

    def finish_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Add the class token and positional embedding to patch tokens (B, N, d)."""
        vit = self.vit
        tokens = vit._pos_embed(tokens)  # class token (+ learned PE when pos_embed="learned")
        tokens = vit.patch_drop(tokens)
        return vit.norm_pre(tokens)

    def forward_stem_features(self, features: torch.Tensor) -> torch.Tensor:
        """Return the final tokens from a hybrid's CNN feature map (cached-feature training)."""
        return self.vit.norm(self.vit.blocks(self.finish_tokens(self.vit.patch_embed.tokens(features))))

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
    if arch.stem is not None:
        overrides["patch_size"] = STEM_LAYERS.get(arch.stem_layer, (0, 0, 0, 16))[3]
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


def build_model(arch: ArchConfig, pretrained: bool = False, stem_pretrained: bool = False,
                stem_state_dict=None) -> ViTClassifier:
    """Build a :class:`ViTClassifier` from its configuration.

    ``pretrained`` loads timm's ViT weights; ``stem_pretrained`` a hybrid's
    ImageNet EfficientNet-Lite0 stem (from ``stem_state_dict`` or the package).
    """
    return ViTClassifier(arch, pretrained=pretrained, stem_pretrained=stem_pretrained,
                         stem_state_dict=stem_state_dict)


def architecture_summary(model: ViTClassifier) -> dict[str, Any]:
    """Return the ``architecture`` block of a bundle's metadata."""
    vit = model.vit
    block = vit.blocks[0]
    summary = {
        "family": "hybrid-vit" if model.is_hybrid else "vit",
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
    if model.is_hybrid:
        summary["stem"] = {"cnn": model.arch.stem, "layer": model.arch.stem_layer,
                           "channels": model.vit.patch_embed.feature_channels,
                           "stride": int(vit.patch_embed.patch_size[0])}
    return summary

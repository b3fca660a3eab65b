"""PRIOR-style image-text model: a ViT image tower and a small sentence encoder in one space.

Recipe (after Cheng et al., PRIOR: Prototype Representation Joint Learning from
Medical Images and Reports, ICCV 2023), kept small enough to train on a CPU:

- **image tower**: a timm ViT (:class:`models.vit.ViTClassifier`), its class
  embedding and patch tokens projected into the joint space (dim ``D``); an
  auxiliary finding head keeps the bundle a normal classifier too;
- **text tower**: a tokenizer trained on the training reports
  (``tokenizers`` WordPiece), a 2-block transformer over one sentence,
  masked mean pooling, projection to ``D``; a report is the mean of its
  sentences;
- **global alignment**: symmetric InfoNCE between image and report (CLIP);
- **sentence-wise prototype memory bank (SPB)**: ``K`` learned prototypes;
  each sentence is rebuilt as a soft (temperature-scaled) mixture of them and
  pulled towards its own embedding (a VQ-style commitment both ways), so
  sentences that say the same thing share prototypes; the local alignment
  uses the rebuilt sentences, as PRIOR does;
- **local sentence-region alignment (LLA)**: each sentence attends over the
  patch tokens of every image in the batch; the attended region of its own
  image must be the most similar (InfoNCE over images).

Not included: PRIOR's cross-modality conditional reconstruction (the decoders
that rebuild one modality from the other).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.vit import ArchConfig, ViTClassifier, build_model

PAD, UNK = "[PAD]", "[UNK]"


@dataclass
class PriorConfig:
    """Sizes of both towers and the loss weights."""

    img_size: int = 64
    patch_size: int = 8
    vit_dim: int = 64
    vit_depth: int = 4
    vit_heads: int = 4
    joint_dim: int = 64
    vocab_size: int = 600
    max_tokens: int = 24
    max_sentences: int = 8
    text_dim: int = 64
    text_depth: int = 2
    text_heads: int = 4
    prototypes: int = 32
    prototype_temperature: float = 0.1
    local_temperature: float = 0.1
    weight_global: float = 1.0
    weight_local: float = 1.0
    weight_prototype: float = 0.5
    weight_labels: float = 0.5
    num_labels: int = 3

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict."""
        return asdict(self)


# -- tokenizer --------------------------------------------------------------------------------
def train_tokenizer(sentences: list[str], vocab_size: int, max_tokens: int):
    """Train a lower-casing WordPiece tokenizer on report sentences (``tokenizers``).

    The tokenizer pads and truncates to ``max_tokens``; ``[PAD]`` is id 0.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase(),
                                           normalizers.StripAccents()])
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=[PAD, UNK],
                                        min_frequency=1)
    tok.train_from_iterator(sentences, trainer)
    tok.enable_padding(pad_id=0, pad_token=PAD, length=max_tokens)
    tok.enable_truncation(max_length=max_tokens)
    return tok


def encode(tokenizer, sentences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (input_ids, attention_mask) int64 tensors (N, max_tokens)."""
    encoded = tokenizer.encode_batch(sentences)
    ids = torch.tensor([e.ids for e in encoded], dtype=torch.int64)
    mask = torch.tensor([e.attention_mask for e in encoded], dtype=torch.int64)
    return ids, mask


# -- text tower ------------------------------------------------------------------------------
class TextBlock(nn.Module):
    """A pre-norm transformer block with a key padding mask (written out, so ONNX export is plain)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Return the block's output; ``bias`` (B, 1, 1, L) is 0 for tokens, -1e4 for padding."""
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(
            2, 0, 3, 1, 4).unbind(0)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads) + bias
        out = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, d)
        x = x + self.proj(out)
        return x + self.mlp(self.norm2(x))


class SentenceEncoder(nn.Module):
    """Token ids of one sentence -> L2-normalised joint-space embedding."""

    def __init__(self, cfg: PriorConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.text_dim, padding_idx=0)
        self.pos = nn.Parameter(torch.zeros(1, cfg.max_tokens, cfg.text_dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(TextBlock(cfg.text_dim, cfg.text_heads) for _ in range(cfg.text_depth))
        self.norm = nn.LayerNorm(cfg.text_dim)
        self.proj = nn.Linear(cfg.text_dim, cfg.joint_dim)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Return (N, D) unit vectors."""
        mask = attention_mask.to(torch.float32)
        x = self.embed(input_ids) + self.pos[:, : input_ids.shape[1]]
        bias = ((1.0 - mask) * -1e4)[:, None, None, :]
        for block in self.blocks:
            x = block(x, bias)
        x = self.norm(x)
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
        return F.normalize(self.proj(pooled), dim=-1)


# -- image tower -----------------------------------------------------------------------------
class ImageTower(nn.Module):
    """A ViT whose class embedding and tokens are projected into the joint space."""

    def __init__(self, cfg: PriorConfig) -> None:
        super().__init__()
        arch = ArchConfig(model="custom", num_outputs=cfg.num_labels, img_size=cfg.img_size,
                          in_chans=3, patch_size=cfg.patch_size, embed_dim=cfg.vit_dim,
                          depth=cfg.vit_depth, num_heads=cfg.vit_heads, mlp_ratio=2.0)
        self.vit: ViTClassifier = build_model(arch)
        self.proj = nn.Linear(cfg.vit_dim, cfg.joint_dim)
        self.label_head = nn.Linear(cfg.joint_dim, cfg.num_labels)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (logits (B, K), embedding (B, D), tokens (B, T, D)), none normalised."""
        tokens = self.vit.forward_features(image)
        embedding = self.proj(self.vit.pre_logits(tokens))
        return self.label_head(embedding), embedding, self.proj(tokens)


class PriorModel(nn.Module):
    """Both towers, the prototype bank and the learnable temperature."""

    def __init__(self, cfg: PriorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.image = ImageTower(cfg)
        self.text = SentenceEncoder(cfg)
        self.prototypes = nn.Parameter(F.normalize(torch.randn(cfg.prototypes, cfg.joint_dim), dim=-1))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def sentences(self, ids: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Encode (B, S, L) sentence tokens into (B, S, D); invalid sentence slots are zero."""
        b, s, length = ids.shape
        flat = valid.reshape(-1)
        out = torch.zeros(b * s, self.cfg.joint_dim, dtype=torch.float32, device=ids.device)
        out[flat] = self.text(ids.reshape(-1, length)[flat], mask.reshape(-1, length)[flat])
        return out.reshape(b, s, -1)

    def losses(self, images, ids, mask, valid, targets, target_mask) -> dict[str, torch.Tensor]:
        """Return every loss term and their weighted sum (``total``)."""
        cfg = self.cfg
        logits, img_emb, tokens = self.image(images)
        img = F.normalize(img_emb, dim=-1)
        uses_text = bool(cfg.weight_global or cfg.weight_local or cfg.weight_prototype)
        if uses_text:  # the image-only baseline trains no text tower
            sent = self.sentences(ids, mask, valid)  # (B, S, D), unit rows where valid
            vf = valid.to(sent.dtype)
            report = F.normalize((sent * vf[..., None]).sum(1) / vf.sum(1, keepdim=True).clamp(min=1),
                                 dim=-1)
        zero = img.sum() * 0.0
        global_loss = proto_loss = local_loss = zero
        if cfg.weight_global:
            scale = self.logit_scale.exp().clamp(max=100.0)
            sim = scale * img @ report.T
            arange = torch.arange(len(img), device=img.device)
            global_loss = 0.5 * (F.cross_entropy(sim, arange) + F.cross_entropy(sim.T, arange))
        if cfg.weight_prototype or cfg.weight_local:
            # Sentence-wise prototype bank: rebuild each sentence from the prototypes.
            protos = F.normalize(self.prototypes, dim=-1)
            flat = sent[valid]  # (M, D)
            weights = (flat @ protos.T / cfg.prototype_temperature).softmax(dim=-1)
            rebuilt = F.normalize(weights @ protos, dim=-1)
            proto_loss = ((1 - (rebuilt * flat.detach()).sum(-1)).mean()
                          + 0.25 * (1 - (flat * rebuilt.detach()).sum(-1)).mean())
        if cfg.weight_local:
            # Local alignment: each (rebuilt) sentence attends over every image's patches.
            patches = F.normalize(tokens[:, self.image.vit.num_prefix_tokens:], dim=-1)  # (B, P, D)
            owner = torch.arange(len(img), device=img.device)[:, None].expand_as(valid)[valid]  # (M,)
            att = torch.einsum("md,bpd->mbp", rebuilt, patches) / cfg.local_temperature
            region = F.normalize(torch.einsum("mbp,bpd->mbd", att.softmax(-1), patches), dim=-1)
            local_sim = torch.einsum("md,mbd->mb", rebuilt, region) / cfg.local_temperature
            local_loss = F.cross_entropy(local_sim, owner)

        bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        label_loss = (bce * target_mask).sum() / target_mask.sum().clamp(min=1)
        total = (cfg.weight_global * global_loss + cfg.weight_local * local_loss
                 + cfg.weight_prototype * proto_loss + cfg.weight_labels * label_loss)
        return {"total": total, "global": global_loss, "local": local_loss, "prototype": proto_loss,
                "labels": label_loss}


# -- export graphs ---------------------------------------------------------------------------
class ImageExportGraph(nn.Module):
    """logits, embedding, tokens and every block's attention: the outputs of a normal bundle."""

    def __init__(self, tower: ImageTower) -> None:
        super().__init__()
        self.tower = tower.eval()

    @property
    def output_names(self) -> list[str]:
        """Return the ONNX output names, in forward order."""
        return ["logits", "embedding", "tokens", *[f"attn_{i}" for i in range(len(self.tower.vit.blocks))]]

    def forward(self, image: torch.Tensor):
        """Return (logits, embedding, tokens, attn_0, ...)."""
        from models.graph import attention_block

        vit = self.tower.vit
        x = vit.prepare_tokens(image)
        maps = []
        for block in vit.blocks:
            x, probs = attention_block(block, x)
            maps.append(probs)
        tokens = vit.vit.norm(x)
        embedding = self.tower.proj(vit.pre_logits(tokens))
        return (self.tower.label_head(embedding), embedding, self.tower.proj(tokens), *maps)

"""Self-supervised pretraining on unlabelled radiographs: ``python -m models.pretrain --library LIB --out RUN``.

Two objectives of the seeds, on the same ViT (or hybrid) backbones as
:mod:`models.train`, and needing no labels:

- **PEAC** (Zhou et al., "Learning Anatomically Consistent Embedding for Chest
  Radiography", BMVC 2023): a student and a teacher whose weights are an
  exponential moving average (EMA) of the student's.  Two overlapping crops of
  one image; a *global* consistency loss between the student's embedding of
  one crop and the teacher's of the other, and a *local* consistency loss
  between their patch embeddings where the crops overlap, matched cell by cell
  on the patch grid (the crops are placed on the grid, so the matching is
  exact and stable).  Both losses are BYOL's normalised MSE
  (``2 - 2 cos``) through a predictor on the student side (Grill et al.,
  NeurIPS 2020), which keeps the EMA pair from collapsing.
- **ISImed** (Kelm et al., "ISImed: a framework for self-supervised learning
  using intrinsic spatial information in medical images", 2024): several crops
  per image; the matrix of distances between their embeddings is made to match
  the matrix of their true physical distances (crop centres times the pixel
  spacing, in units of ``distance_scale_mm``), by mean squared error.

Crops are windows of the token grid: the image is embedded once (patch
embedding, or a hybrid's CNN stem), each window keeps its tokens and the
positional embeddings of its place in the full grid, and only the transformer
runs per crop.  With a frozen hybrid stem the same code runs on cached CNN
feature maps (``models.experiments.cxr14_bundle``).

``RUN/last.pt`` allows ``--resume``; ``RUN/pretrained.pt`` feeds
``python -m models.train --init RUN/pretrained.pt``.  Seeded; bf16 autocast on
CUDA.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medviewer.errors import MedViewerError
from models.vit import ArchConfig, ViTClassifier, build_model

METHODS = ("peac", "isimed", "both")
FORMAT = "medviewer-vit-pretrain"


class PretrainDataError(MedViewerError):
    """The images for pretraining cannot be used (none found, none readable)."""


@dataclass
class PretrainConfig:
    """A pretraining run."""

    method: str = "peac"
    arch: ArchConfig = field(default_factory=lambda: ArchConfig(model="custom", patch_size=16, embed_dim=192,
                                                                depth=6, num_heads=3))
    stem_pretrained: bool = False
    freeze_stem: bool = True
    input_size: int = 224
    resize: int = 256
    crop_fraction: float = 0.6  # crop side as a share of the grid side
    isimed_crops: int = 6
    distance_scale_mm: float = 100.0
    pixel_spacing_mm: float | None = None  # for images without (0028,0030) Pixel Spacing
    local_weight: float = 1.0
    proj_dim: int = 256
    ema: float = 0.996
    epochs: int = 10
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 0.05
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    threads: int | None = None
    max_seconds: float | None = None
    out: str = "runs/pretrain"
    resume: bool = False
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict."""
        return asdict(self)


def mlp(dim_in: int, dim_out: int, hidden: int | None = None) -> nn.Module:
    """Return BYOL's projector/predictor: linear, batch-free layer norm, GELU, linear."""
    hidden = hidden or max(dim_in, dim_out) * 2
    return nn.Sequential(nn.Linear(dim_in, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Linear(hidden, dim_out))


def byol_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return the mean of ``2 - 2 cos(prediction, target)`` over the leading dimensions."""
    return (2 - 2 * F.cosine_similarity(prediction.float(), target.float(), dim=-1)).mean()


class GridEncoder(nn.Module):
    """Run a :class:`ViTClassifier`'s transformer on windows of its token grid.

    ``grid_tokens`` embeds images (or cached CNN maps) once; ``encode`` runs a
    window ``(top, left, size)`` of that grid, with the positional embeddings of
    the window's cells, and returns the pooled embedding and the window's patch
    tokens.
    """

    def __init__(self, model: ViTClassifier) -> None:
        super().__init__()
        if model.sim_pe is not None:
            raise ValueError("grid-window pretraining needs the learned positional embedding")
        self.model = model

    @property
    def grid(self) -> tuple[int, int]:
        """Return the token grid (rows, columns)."""
        return self.model.grid

    def grid_tokens(self, images: torch.Tensor | None = None, features: torch.Tensor | None = None) -> torch.Tensor:
        """Return patch tokens (B, rows, cols, d) of images, or of a hybrid's cached CNN map."""
        embed = self.model.vit.patch_embed
        tokens = embed.tokens(features) if features is not None else embed(images)
        rows, cols = self.grid
        return tokens.reshape(tokens.shape[0], rows, cols, tokens.shape[-1])

    def encode(self, grid_tokens: torch.Tensor, top: Sequence[int], left: Sequence[int],
               size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (embedding (B, d), patch tokens (B, size*size, d)) of one window per sample."""
        vit = self.model.vit
        b, rows, cols, d = grid_tokens.shape
        pos = vit.pos_embed  # (1, prefix + rows*cols, d), class token first
        prefix = self.model.num_prefix_tokens
        pos_grid = pos[:, prefix:].reshape(1, rows, cols, d)
        windows, pos_windows = [], []
        for i in range(b):
            t, l = int(top[i]), int(left[i])
            windows.append(grid_tokens[i, t:t + size, l:l + size].reshape(size * size, d))
            pos_windows.append(pos_grid[0, t:t + size, l:l + size].reshape(size * size, d))
        x = torch.stack(windows) + torch.stack(pos_windows)
        cls = (vit.cls_token + pos[:, :1]).expand(b, -1, -1)
        x = vit.norm_pre(torch.cat([cls, x], dim=1))
        x = vit.norm(vit.blocks(x))
        return self.model.pre_logits(x), x[:, prefix:]


class PretrainModel(nn.Module):
    """Student encoder with projector and predictor, and its EMA teacher (no gradients)."""

    def __init__(self, model: ViTClassifier, proj_dim: int = 256) -> None:
        super().__init__()
        d = model.vit.embed_dim
        self.student = GridEncoder(model)
        self.projector = mlp(d, proj_dim)
        self.predictor = mlp(proj_dim, proj_dim)
        self.local_projector = mlp(d, proj_dim)
        self.local_predictor = mlp(proj_dim, proj_dim)
        self.teacher = copy.deepcopy(self.student)
        self.teacher_projector = copy.deepcopy(self.projector)
        self.teacher_local_projector = copy.deepcopy(self.local_projector)
        for module in self.teacher_modules():
            for p in module.parameters():
                p.requires_grad = False

    def teacher_modules(self) -> list[nn.Module]:
        """Return the EMA copies."""
        return [self.teacher, self.teacher_projector, self.teacher_local_projector]

    def student_modules(self) -> list[nn.Module]:
        """Return the modules the teachers follow, in the same order."""
        return [self.student, self.projector, self.local_projector]

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """Move each teacher weight towards the student's: ``t = m t + (1 - m) s``."""
        for teacher, student in zip(self.teacher_modules(), self.student_modules()):
            for t, s in zip(teacher.parameters(), student.parameters()):
                t.mul_(momentum).add_(s.detach(), alpha=1 - momentum)
            for t, s in zip(teacher.buffers(), student.buffers()):
                t.copy_(s)


def overlapping_windows(rows: int, cols: int, size: int, n: int,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the corners (top_a, left_a, top_b, left_b) of ``n`` pairs of overlapping windows.

    Each pair's windows are offset by less than ``size`` cells in both
    directions, so they always share at least one cell.
    """
    if size > min(rows, cols):
        raise ValueError(f"window {size} does not fit the {rows}x{cols} grid")
    top_a = rng.integers(0, rows - size + 1, n)
    left_a = rng.integers(0, cols - size + 1, n)
    span = max(1, size - 1)
    top_b = np.clip(top_a + rng.integers(-span, span + 1, n), 0, rows - size)
    left_b = np.clip(left_a + rng.integers(-span, span + 1, n), 0, cols - size)
    return top_a, left_a, top_b, left_b


def overlap_pairs(top_a: int, left_a: int, top_b: int, left_b: int, size: int) -> tuple[list[int], list[int]]:
    """Return the indices, within window A and window B, of the grid cells both windows cover.

    Index ``r * size + c`` is the cell at row ``r``, column ``c`` of a window;
    the i-th entries of the two lists are the same cell of the full grid.
    """
    ia, ib = [], []
    for row in range(max(top_a, top_b), min(top_a, top_b) + size):
        for col in range(max(left_a, left_b), min(left_a, left_b) + size):
            ia.append((row - top_a) * size + (col - left_a))
            ib.append((row - top_b) * size + (col - left_b))
    return ia, ib


def peac_loss(net: PretrainModel, grid_s: torch.Tensor, grid_t: torch.Tensor, size: int,
              rng: np.random.Generator, local_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Return PEAC's global + local consistency loss for one batch (symmetrised over the two crops).

    ``grid_s`` and ``grid_t`` are the token grids of two augmented views of the
    same images (student and teacher inputs).
    """
    b, rows, cols, _ = grid_s.shape
    ta, la, tb, lb = overlapping_windows(rows, cols, size, b, rng)
    total_g, total_l = 0.0, 0.0
    for (t1, l1, t2, l2) in ((ta, la, tb, lb), (tb, lb, ta, la)):
        emb_s, patches_s = net.student.encode(grid_s, t1, l1, size)
        with torch.no_grad():
            emb_t, patches_t = net.teacher.encode(grid_t, t2, l2, size)
            target_g = net.teacher_projector(emb_t)
            target_l = net.teacher_local_projector(patches_t)
        total_g = total_g + byol_loss(net.predictor(net.projector(emb_s)), target_g)
        pred_l = net.local_predictor(net.local_projector(patches_s))
        matched_s, matched_t = [], []
        for i in range(b):
            ia, ib = overlap_pairs(t1[i], l1[i], t2[i], l2[i], size)
            matched_s.append(pred_l[i, ia])
            matched_t.append(target_l[i, ib])
        total_l = total_l + byol_loss(torch.cat(matched_s), torch.cat(matched_t))
    loss = (total_g + local_weight * total_l) / 2
    return loss, {"global": float(total_g.detach()) / 2, "local": float(total_l.detach()) / 2}


def isimed_loss(net: PretrainModel, grid: torch.Tensor, size: int, crops: int, spacing_mm: torch.Tensor,
                cell_pixels: float, scale_mm: float, rng: np.random.Generator) -> tuple[torch.Tensor, dict[str, float]]:
    """Return ISImed's loss: MSE between embedding distances and physical distances of crops.

    Parameters
    ----------
    grid : torch.Tensor
        Token grids (B, rows, cols, d).
    spacing_mm : torch.Tensor
        (B,) millimetres per model-input pixel of each image.
    cell_pixels : float
        Input pixels per grid cell (the patch size or the stem's stride).
    scale_mm : float
        The physical distance that should become an embedding distance of 1.
    """
    b, rows, cols, _ = grid.shape
    tops = rng.integers(0, rows - size + 1, (crops, b))
    lefts = rng.integers(0, cols - size + 1, (crops, b))
    embs = torch.stack([net.projector(net.student.encode(grid, tops[k], lefts[k], size)[0])
                        for k in range(crops)], dim=1).float()  # (B, K, p)
    emb_dist = torch.cdist(embs, embs)
    centres = torch.from_numpy(np.stack([tops, lefts], axis=-1).transpose(1, 0, 2)).float().to(grid.device)
    centre_dist = torch.cdist(centres, centres) * cell_pixels  # (B, K, K) input pixels
    phys = centre_dist * spacing_mm.view(-1, 1, 1).float() / scale_mm
    off_diag = ~torch.eye(crops, dtype=torch.bool, device=grid.device)
    loss = F.mse_loss(emb_dist[:, off_diag], phys[:, off_diag])
    return loss, {"isimed": float(loss.detach())}


# ---------------------------------------------------------------------------------------------
# Data: images from a library, a label table or a folder (labels are not needed).


@dataclass
class UnlabelledImage:
    """One pretraining image: its pixels (display space) and millimetres per pixel, if known."""

    name: str
    image: np.ndarray
    spacing_mm: float | None = None


def images_from_folder(folder: str | Path, limit: int | None = None) -> list[UnlabelledImage]:
    """Read every PNG, JPEG and DICOM file below a folder as the viewer displays it."""
    from models.imageio import load_image

    folder = Path(folder)
    if not folder.is_dir():
        raise PretrainDataError(f"{folder} is not a folder", path=folder)
    suffixes = {".png", ".jpg", ".jpeg", ".dcm", ".dicom", ""}
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    out = []
    for path in files[:limit] if limit else files:
        try:
            out.append(UnlabelledImage(str(path), load_image(path), _dicom_spacing(path)))
        except Exception:  # not an image (a README, a broken file): pretraining skips it
            continue
    return out


def images_from_table(table: str | Path, limit: int | None = None) -> list[UnlabelledImage]:
    """Read the images of a label table (its labels are ignored)."""
    from models.data import read_label_table
    from models.imageio import load_image

    records = read_label_table(table)
    records = records[:limit] if limit else records
    return [UnlabelledImage(r.path, load_image(r.path), _dicom_spacing(Path(r.path))) for r in records]


def images_from_library(library: str | Path, limit: int | None = None) -> list[UnlabelledImage]:
    """Read every case of a MedViewer library, with its (0028,0030) Pixel Spacing where the file has one."""
    from models.library_data import read_library

    return [UnlabelledImage(r.path, r.image, r.pixel_spacing)
            for r in read_library(library, require_labels=False, limit=limit)]


def _dicom_spacing(path: Path) -> float | None:
    """Return the mean of (0028,0030) Pixel Spacing or (0018,1164) Imager Pixel Spacing, if the file is DICOM."""
    try:
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:  # not DICOM
        return None
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = getattr(ds, keyword, None)
        if value is not None and len(value) >= 2 and float(value[0]) > 0:
            return float(value[0] + value[1]) / 2
    return None


class PretrainDataset(torch.utils.data.Dataset):
    """Two augmented model inputs per image, and the millimetres per model-input pixel."""

    def __init__(self, images: Sequence[UnlabelledImage], config, default_spacing_mm: float | None,
                 seed: int = 0) -> None:
        from medviewer.inference.preprocess import resized_unit
        from models.dataset import FlipRotate

        self.config = config
        self.cache = [resized_unit(im.image, config) for im in images]
        self.spacing = []
        for im, resized in zip(images, self.cache):
            mm = im.spacing_mm or default_spacing_mm or 1.0
            # The resize scales the pixel size by original/resized (shorter sides).
            self.spacing.append(mm * min(im.image.shape[:2]) / min(resized.shape[:2]))
        self.augment = FlipRotate(degrees=5.0, flip=0.0, seed=seed)
        self.rng = np.random.default_rng(seed + 1)

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from medviewer.inference.preprocess import finish_from_resized

        views = []
        for _ in range(2):
            x = finish_from_resized(self.cache[index], self.config, self.augment)
            gain = float(self.rng.uniform(0.9, 1.1))  # brightness/contrast jitter
            views.append(torch.from_numpy(x * gain + float(self.rng.normal(0, 0.05))))
        return views[0], views[1], torch.tensor(self.spacing[index], dtype=torch.float32)


# ---------------------------------------------------------------------------------------------
# The loop.


def pretrain(cfg: PretrainConfig, images: Sequence[UnlabelledImage], preprocess=None, log=print) -> dict[str, Any]:
    """Pretrain a backbone without labels; return a summary (paths, losses, images/s).

    Raises
    ------
    PretrainDataError
        No images were given.
    ValueError
        Unknown method, or a crop that does not fit the grid.
    """
    from medviewer.inference.preprocess import PreprocessConfig
    from models.train import seed_everything

    if cfg.method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {cfg.method!r}")
    if not images:
        raise PretrainDataError("no images to pretrain on: the library, table or folder holds none",
                                hint="import images first (medviewer import), or point at another source")
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    seed_everything(cfg.seed)
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if cfg.device == "auto" else cfg.device))
    if preprocess is None:
        if cfg.arch.stem:
            from models.pretrained import IMAGENET_MEAN, IMAGENET_STD

            preprocess = PreprocessConfig(cfg.input_size, cfg.resize, 3, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        else:
            preprocess = PreprocessConfig(cfg.input_size, cfg.resize, cfg.arch.in_chans)
    cfg.arch.img_size = preprocess.input_size
    cfg.arch.in_chans = preprocess.channels
    model = build_model(cfg.arch, stem_pretrained=cfg.stem_pretrained)
    net = PretrainModel(model, cfg.proj_dim).to(device)
    frozen = cfg.freeze_stem and model.is_hybrid
    if frozen:
        for p in model.vit.patch_embed.cnn_parameters():
            p.requires_grad = False
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    data = PretrainDataset(images, preprocess, cfg.pixel_spacing_mm, cfg.seed)
    loader = torch.utils.data.DataLoader(data, batch_size=min(cfg.batch_size, len(data)), shuffle=True,
                                         drop_last=len(data) >= cfg.batch_size,
                                         generator=torch.Generator().manual_seed(cfg.seed))
    steps = max(1, cfg.epochs * len(loader))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    last_path = out / "last.pt"
    start_epoch, history, step = 0, [], 0
    rng = np.random.default_rng(cfg.seed)
    if cfg.resume and last_path.exists():
        state = torch.load(last_path, map_location=device, weights_only=False)
        net.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, history, step = state["epoch"] + 1, state["history"], state["step"]
        rng.bit_generator.state = state["rng"]["numpy"]
        torch.set_rng_state(state["rng"]["torch"])
        log(f"resumed from {last_path} at epoch {start_epoch + 1}")
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2, default=str))
    rows, cols = model.grid
    size = max(1, min(rows, cols, round(cfg.crop_fraction * min(rows, cols))))
    cell = float(cfg.input_size) / rows
    use_amp = cfg.amp and device.type == "cuda"
    started, seen = time.time(), 0
    for epoch in range(start_epoch, cfg.epochs):
        from tqdm import tqdm

        net.train()
        if frozen:
            model.vit.patch_embed.eval()  # frozen BatchNorm statistics
        sums: dict[str, float] = {}
        bar = tqdm(loader, desc=f"{cfg.method} epoch {epoch + 1}/{cfg.epochs}", leave=False,
                   disable=not cfg.progress or None, file=sys.stderr)
        for view_a, view_b, spacing in bar:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * _cosine(step, steps)
            view_a, view_b, spacing = view_a.to(device), view_b.to(device), spacing.to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss, parts = step_loss(net, cfg, view_a, view_b, spacing, size, cell, rng, frozen)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 3.0)
            optimizer.step()
            net.update_teacher(1 - (1 - cfg.ema) * (math.cos(math.pi * step / steps) + 1) / 2)
            step += 1
            seen += len(view_a)
            for k, v in {"loss": float(loss.detach()), **parts}.items():
                sums[k] = sums.get(k, 0.0) + v * len(view_a)
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
            if cfg.max_seconds and time.time() - started > cfg.max_seconds:
                break
        entry = {"epoch": epoch + 1, **{k: v / max(1, len(data)) for k, v in sums.items()},
                 "seconds": round(time.time() - started, 1)}
        history.append(entry)
        _save_pretrain(last_path, net, cfg, preprocess, epoch, history, step, optimizer, rng)
        log(f"epoch {epoch + 1:3d}  " + "  ".join(f"{k} {v:.4f}" for k, v in entry.items() if k not in ("epoch", "seconds")))
        if cfg.max_seconds and time.time() - started > cfg.max_seconds:
            log(f"stopped after {time.time() - started:.0f}s (--max-seconds)")
            break
    final = out / "pretrained.pt"
    _save_pretrain(final, net, cfg, preprocess, len(history) - 1, history, step, None, rng)
    elapsed = time.time() - started
    return {"checkpoint": str(final), "history": history, "images_per_second": seen / max(elapsed, 1e-9),
            "images": len(data)}


def step_loss(net: PretrainModel, cfg: PretrainConfig, view_a: torch.Tensor, view_b: torch.Tensor,
              spacing: torch.Tensor, size: int, cell: float, rng: np.random.Generator,
              frozen_stem: bool) -> tuple[torch.Tensor, dict[str, float]]:
    """Return the method's loss for one batch of two views."""
    if frozen_stem:  # the CNN is frozen: only its token projection and the transformer learn
        embed = net.student.model.vit.patch_embed
        with torch.no_grad():
            fa, fb = embed.features(view_a), embed.features(view_b)
        grid_a = net.student.grid_tokens(features=fa)
        with torch.no_grad():
            grid_b = net.teacher.grid_tokens(features=fb)
    else:
        grid_a = net.student.grid_tokens(view_a)
        with torch.no_grad():
            grid_b = net.teacher.grid_tokens(view_b)
    return combined_loss(net, cfg, grid_a, grid_b, spacing, size, cell, rng)


def combined_loss(net: PretrainModel, cfg: PretrainConfig, grid_a: torch.Tensor, grid_b: torch.Tensor,
                  spacing: torch.Tensor, size: int, cell: float,
                  rng: np.random.Generator) -> tuple[torch.Tensor, dict[str, float]]:
    """Return PEAC, ISImed or their sum on two views' token grids (student ``grid_a``, teacher ``grid_b``)."""
    parts: dict[str, float] = {}
    loss = grid_a.new_zeros(())
    if cfg.method in ("peac", "both"):
        peac, p = peac_loss(net, grid_a, grid_b, size, rng, cfg.local_weight)
        loss, parts = loss + peac, {**parts, **p}
    if cfg.method in ("isimed", "both"):
        crops = max(2, cfg.isimed_crops)
        isi, p = isimed_loss(net, grid_a, max(1, size - 1), crops, spacing, cell, cfg.distance_scale_mm, rng)
        loss, parts = loss + isi, {**parts, **p}
    return loss, parts


def _cosine(step: int, total: int) -> float:
    warmup = max(1, total // 20)
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def _save_pretrain(path: Path, net: PretrainModel, cfg: PretrainConfig, preprocess, epoch: int,
                   history: list, step: int, optimizer, rng: np.random.Generator) -> None:
    state = {"format": FORMAT, "method": cfg.method, "arch": cfg.arch.to_dict(),
             "preprocess": preprocess.to_metadata(), "model": net.student.model.state_dict(),
             "epoch": epoch, "step": step, "history": history, "pretrain_config": cfg.to_dict()}
    if optimizer is not None:
        state.update(net=net.state_dict(), optimizer=optimizer.state_dict(),
                     rng={"numpy": rng.bit_generator.state, "torch": torch.get_rng_state()})
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a killed run never leaves a half-written checkpoint


def load_pretrained_backbone(model: ViTClassifier, checkpoint: str | Path | dict[str, Any]) -> list[str]:
    """Load a pretraining checkpoint's backbone into ``model``; return the names it did not hold (heads).

    Raises
    ------
    ValueError
        The file is not a pretraining checkpoint, or its backbone does not fit.
    """
    state = checkpoint if isinstance(checkpoint, dict) else torch.load(checkpoint, map_location="cpu",
                                                                        weights_only=False)
    if state.get("format") != FORMAT:
        raise ValueError(f"{checkpoint} is not a pretraining checkpoint of models.pretrain")
    weights = {k: v for k, v in state["model"].items() if not k.startswith(("vit.head.", "target_"))}
    own = model.state_dict()
    bad = [k for k, v in weights.items() if k not in own or own[k].shape != v.shape]
    if bad:
        raise ValueError(f"the pretrained backbone does not fit this model ({len(bad)} tensors differ, "
                         f"first {bad[0]}); use the same --model/--embed-dim/--depth/--stem")
    missing, _ = model.load_state_dict(weights, strict=False)
    return list(missing)


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser of ``python -m models.pretrain``."""
    p = argparse.ArgumentParser(prog="python -m models.pretrain", description=__doc__.split("\n\n")[0])
    src = p.add_argument_group("images (one of)")
    src.add_argument("--library", help="a MedViewer library (.sqlite): every case")
    src.add_argument("--labels", help="a label table; only its images are used")
    src.add_argument("--images", help="a folder of PNG/JPEG/DICOM files")
    src.add_argument("--max-images", type=int)
    src.add_argument("--pixel-spacing", type=float, help="mm per pixel for images without Pixel Spacing")
    m = p.add_argument_group("model")
    m.add_argument("--method", default="peac", choices=METHODS)
    m.add_argument("--model", default="custom")
    m.add_argument("--patch-size", type=int, default=16)
    m.add_argument("--embed-dim", type=int, default=192)
    m.add_argument("--depth", type=int, default=6)
    m.add_argument("--num-heads", type=int, default=3)
    m.add_argument("--stem", choices=["efficientnet_lite0"], help="a hybrid ViT with this CNN stem")
    m.add_argument("--stem-layer", default="head", choices=["stage4", "stage6", "head"])
    m.add_argument("--stem-pretrained", action="store_true", help="ImageNet weights for the stem")
    m.add_argument("--train-stem", action="store_true", help="also train the CNN stem (default: frozen)")
    m.add_argument("--input-size", type=int, default=224)
    m.add_argument("--resize", type=int, default=256)
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, default=10)
    o.add_argument("--batch-size", type=int, default=32)
    o.add_argument("--lr", type=float, default=5e-4)
    o.add_argument("--ema", type=float, default=0.996)
    o.add_argument("--crops", type=int, default=6, help="ISImed crops per image")
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--device", default="auto")
    o.add_argument("--no-amp", action="store_true")
    o.add_argument("--threads", type=int)
    o.add_argument("--max-seconds", type=float, help="stop after this long (a bounded CPU run)")
    o.add_argument("--out", required=True)
    o.add_argument("--resume", action="store_true")
    o.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m models.pretrain``; return the exit code."""
    args = build_parser().parse_args(argv)
    sources = [s for s in (args.library, args.labels, args.images) if s]
    if len(sources) != 1:
        print("models.pretrain: error: give exactly one of --library, --labels, --images", file=sys.stderr)
        return 2
    arch = ArchConfig(model=args.model, patch_size=args.patch_size, embed_dim=args.embed_dim, depth=args.depth,
                      num_heads=args.num_heads, stem=args.stem, stem_layer=args.stem_layer)
    cfg = PretrainConfig(method=args.method, arch=arch, stem_pretrained=args.stem_pretrained,
                         freeze_stem=not args.train_stem, input_size=args.input_size, resize=args.resize,
                         isimed_crops=args.crops, pixel_spacing_mm=args.pixel_spacing, ema=args.ema,
                         epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                         device=args.device, amp=not args.no_amp, threads=args.threads,
                         max_seconds=args.max_seconds, out=args.out, resume=args.resume,
                         progress=not args.no_progress)
    readers: dict[str, Callable] = {"library": images_from_library, "labels": images_from_table,
                                    "images": images_from_folder}
    try:
        kind = next(k for k in readers if getattr(args, k))
        images = readers[kind](getattr(args, kind), args.max_images)
        summary = pretrain(cfg, images)
    except (MedViewerError, ValueError, FileNotFoundError) as exc:
        print(f"models.pretrain: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

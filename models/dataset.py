"""Torch datasets built on the app's preprocessing, plus the training augmentation.

Every tensor comes from :mod:`medviewer.inference.preprocess`: the
deterministic half (:func:`resized_unit`) is computed once per image and
cached; each epoch applies :func:`finish_from_resized` with the random
augmentation.  Without augmentation this is exactly ``preprocess_image``, the
function the app calls (``tests/test_models_preprocess_parity.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from medviewer.inference.preprocess import (
    PreprocessConfig,
    crop_from_resized,
    finish_from_resized,
    resized_unit,
)
from models.data import Record, TaskSpec
from models.imageio import load_image


class FlipRotate:
    """Random horizontal flip and rotation within +-``degrees`` (the paper's augmentation).

    Applied to the resized image before the centre crop, so the crop hides
    most of the corners a rotation leaves empty.  Seeded and reproducible.
    """

    def __init__(self, degrees: float = 5.0, flip: float = 0.5, seed: int = 0) -> None:
        self.degrees = float(degrees)
        self.flip = float(flip)
        self.rng = np.random.default_rng(seed)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Return a randomly flipped and rotated copy of a 2-D float32 image."""
        if self.rng.random() < self.flip:
            image = image[:, ::-1]
        angle = float(self.rng.uniform(-self.degrees, self.degrees)) if self.degrees else 0.0
        if angle:
            pil = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32))
            image = np.asarray(pil.rotate(angle, resample=Image.Resampling.BILINEAR), dtype=np.float32)
        return np.ascontiguousarray(image, dtype=np.float32)


class ImageDataset(torch.utils.data.Dataset):
    """Images, targets and task masks for training or evaluation.

    Parameters
    ----------
    records : sequence of Record
        The images.
    spec : TaskSpec
        Defines targets and masks.
    config : PreprocessConfig
        The bundle's preprocessing.
    augment : FlipRotate, optional
        Training augmentation (None for evaluation).
    targets, masks : np.ndarray, optional
        Precomputed (e.g. balanced) targets and masks.
    """

    def __init__(
        self,
        records: Sequence[Record],
        spec: TaskSpec,
        config: PreprocessConfig,
        augment: FlipRotate | None = None,
        targets: np.ndarray | None = None,
        masks: np.ndarray | None = None,
        cache: list[np.ndarray] | None = None,
    ) -> None:
        self.records = list(records)
        self.spec = spec
        self.config = config
        self.augment = augment
        if targets is None or masks is None:
            pairs = [spec.targets(r) for r in self.records]
            targets = np.stack([p[0] for p in pairs]) if pairs else np.zeros((0, len(spec.names)))
            masks = np.stack([p[1] for p in pairs]) if pairs else np.zeros((0, len(spec.names)))
        self.targets = np.asarray(targets, np.float32)
        self.masks = np.asarray(masks, np.float32)
        self.cache = cache if cache is not None else [resized_unit(raw_image(r), config) for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = finish_from_resized(self.cache[index], self.config, self.augment)
        return (torch.from_numpy(x), torch.from_numpy(self.targets[index]),
                torch.from_numpy(self.masks[index]))

    def subset(self, rows: np.ndarray, masks: np.ndarray | None = None,
               augment: FlipRotate | None = None) -> ImageDataset:
        """Return a dataset of some rows, sharing the cached images."""
        rows = np.asarray(rows, dtype=int)
        return ImageDataset(
            [self.records[i] for i in rows], self.spec, self.config, augment,
            self.targets[rows], self.masks[rows] if masks is None else masks,
            [self.cache[i] for i in rows],
        )


def raw_image(record: Record) -> np.ndarray:
    """Return a record's pixels (from memory or from its file)."""
    return record.image if record.image is not None else load_image(record.path)


def dataset_mean_std(images: Sequence[np.ndarray], config: PreprocessConfig) -> tuple[float, float]:
    """Return the pixel mean and std of centre-cropped [0, 1] training images (no augmentation)."""
    total = total_sq = count = 0.0
    for resized in images:
        crop = crop_from_resized(resized, config).astype(np.float64)
        total += crop.sum()
        total_sq += np.square(crop).sum()
        count += crop.size
    mean = total / max(count, 1)
    std = float(np.sqrt(max(total_sq / max(count, 1) - mean**2, 1e-12)))
    return float(mean), std

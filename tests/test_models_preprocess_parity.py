"""Training and the app preprocess identically: the tensors are equal, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from medviewer.inference.preprocess import PreprocessConfig, preprocess_image
from models.data import Record, TaskSpec
from models.dataset import FlipRotate, ImageDataset


def test_training_dataset_without_augmentation_equals_the_app_path():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (60 + 7 * i, 50 + 3 * i), dtype=np.uint8) for i in range(4)]
    images.append(rng.random((64, 64)).astype(np.float32))  # a float 0..1 display image
    records = [Record(f"mem{i}", f"P{i}", ("A",), image=img) for i, img in enumerate(images)]
    cfg = PreprocessConfig(input_size=32, resize=36, channels=3, mean=(0.45,), std=(0.2,))
    ds = ImageDataset(records, TaskSpec("multilabel", ["A"]), cfg)
    for i, img in enumerate(images):
        train_tensor = ds[i][0].numpy()
        np.testing.assert_array_equal(train_tensor, preprocess_image(img, cfg))


def test_augmentation_is_seeded_and_only_moves_pixels_slightly():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    cfg = PreprocessConfig(input_size=32, resize=36, channels=1)
    rec = [Record("m", "P", ("A",), image=img)]
    a = ImageDataset(rec, TaskSpec("multilabel", ["A"]), cfg, augment=FlipRotate(5, 0.5, seed=7))[0][0]
    b = ImageDataset(rec, TaskSpec("multilabel", ["A"]), cfg, augment=FlipRotate(5, 0.5, seed=7))[0][0]
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.shape == (1, 32, 32)

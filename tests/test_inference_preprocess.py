"""The one preprocessing shared by training and the app (medviewer.inference.preprocess)."""

from __future__ import annotations

import numpy as np
import pytest

from medviewer.inference.errors import PreprocessError
from medviewer.inference.preprocess import (
    PreprocessConfig,
    center_crop,
    finish_from_resized,
    preprocess_batch,
    preprocess_image,
    resize_shorter_side,
    resized_unit,
    to_unit_range,
)

CFG = PreprocessConfig(input_size=32, resize=36, channels=3, mean=(0.5,), std=(0.25,))


def _image(h=50, w=70, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


def test_output_shape_dtype_and_determinism():
    img = _image()
    a = preprocess_image(img, CFG)
    b = preprocess_image(img.copy(), CFG)
    assert a.shape == (3, 32, 32) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[0], a[2])  # grey replicated to every channel


def test_uint8_and_unit_float_and_255_float_give_the_same_tensor():
    img = _image()
    from_uint8 = preprocess_image(img, CFG)
    np.testing.assert_allclose(preprocess_image(img / 255.0, CFG), from_uint8, atol=1e-5)
    np.testing.assert_allclose(preprocess_image(img.astype(np.float32), CFG), from_uint8, atol=1e-5)


def test_mean_std_and_single_channel():
    cfg = PreprocessConfig(input_size=8, resize=8, channels=1, mean=(0.2,), std=(0.5,))
    out = preprocess_image(np.full((8, 8), 255, np.uint8), cfg)
    assert out.shape == (1, 8, 8)
    np.testing.assert_allclose(out, (1.0 - 0.2) / 0.5)


def test_per_channel_mean_std():
    cfg = PreprocessConfig(input_size=4, resize=4, channels=3, mean=(0.0, 0.5, 1.0), std=(1.0, 1.0, 2.0))
    out = preprocess_image(np.ones((4, 4), np.float32), cfg)
    np.testing.assert_allclose(out[:, 0, 0], [1.0, 0.5, 0.0])


def test_resize_shorter_side_keeps_aspect_for_portrait_and_landscape():
    assert resize_shorter_side(np.zeros((100, 200), np.float32), 50).shape == (50, 100)
    assert resize_shorter_side(np.zeros((300, 100), np.float32), 50).shape == (150, 50)
    assert resize_shorter_side(np.zeros((10, 10), np.float32), 40).shape == (40, 40)


def test_center_crop_takes_the_middle():
    img = np.arange(36, dtype=np.float32).reshape(6, 6)
    np.testing.assert_array_equal(center_crop(img, 2), img[2:4, 2:4])
    with pytest.raises(PreprocessError):
        center_crop(img, 7)


def test_rgb_input_is_averaged_to_grey():
    grey = _image()
    rgb = np.stack([grey] * 3, axis=-1)
    np.testing.assert_allclose(preprocess_image(rgb, CFG), preprocess_image(grey, CFG), atol=1e-5)


def test_minmax_policy_and_constant_image():
    cfg = PreprocessConfig(input_size=8, resize=8, window_policy="minmax")
    raw = np.linspace(-1000, 3000, 64).reshape(8, 8)
    unit = to_unit_range(raw, "minmax")
    assert unit.min() == 0.0 and unit.max() == 1.0
    assert np.all(preprocess_image(np.full((8, 8), 7.0), cfg) == (0.0 - 0.5) / 0.25)


def test_unwindowed_float_image_is_refused_with_a_hint():
    with pytest.raises(PreprocessError, match="window"):
        to_unit_range(np.array([[-1000.0, 3000.0]]), "display")


def test_non_finite_values_are_refused():
    img = np.ones((8, 8), np.float32)
    img[0, 0] = np.nan
    with pytest.raises(PreprocessError, match="NaN"):
        preprocess_image(img, CFG)


def test_wrong_shapes_are_refused():
    with pytest.raises(PreprocessError):
        preprocess_image(np.zeros((2, 8, 8, 3)), CFG)
    with pytest.raises(PreprocessError):
        preprocess_image(np.zeros((0, 8)), CFG)


def test_explicit_value_range():
    img = np.full((8, 8), 2048, np.uint16)
    unit = to_unit_range(img, "display", value_range=(0, 4096))
    np.testing.assert_allclose(unit, 0.5)


def test_uint16_uses_its_full_range():
    np.testing.assert_allclose(to_unit_range(np.full((2, 2), 65535, np.uint16)), 1.0)


def test_composition_equals_preprocess_image():
    img = _image(80, 60)
    np.testing.assert_array_equal(
        finish_from_resized(resized_unit(img, CFG), CFG), preprocess_image(img, CFG)
    )


def test_augment_runs_between_resize_and_crop():
    seen = []

    def augment(resized):
        seen.append(resized.shape)
        return resized[:, ::-1]

    img = _image(50, 70)
    flipped = preprocess_image(img, CFG, augment=augment)
    assert seen == [(36, 50)]
    assert flipped.shape == (3, 32, 32)


def test_batch():
    batch = preprocess_batch([_image(seed=i) for i in range(3)], CFG)
    assert batch.shape == (3, 3, 32, 32)
    assert preprocess_batch([], CFG).shape == (0, 3, 32, 32)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"resize": 16, "input_size": 32},
        {"channels": 2},
        {"std": (0.0,)},
        {"mean": (0.1, 0.2)},
        {"window_policy": "auto"},
    ],
)
def test_invalid_configs_are_rejected(kwargs):
    with pytest.raises(ValueError):
        PreprocessConfig(**kwargs)


def test_metadata_round_trip():
    block = CFG.to_metadata()
    assert PreprocessConfig.from_metadata(block) == CFG
    assert block["mean"] == [0.5]

"""The map algorithms on hand-made inputs: geometry, rollout, occlusion, matching, scores, rendering."""

from __future__ import annotations

import numpy as np
import pytest

from medviewer.explain import (
    ExplainRequest,
    attention_rollout,
    blend,
    compose,
    deletion_insertion,
    grid_to_image,
    image_to_grid,
    input_geometry,
    mask_share,
    mass_share,
    occlusion_map,
    occlusion_windows,
    patch_matches,
    pearson,
    raw_attention,
    scale_unit,
    seen_mask,
    spearman,
    ssim,
    viridis_lut,
)
from medviewer.inference.preprocess import PreprocessConfig, preprocess_image


def test_grid_to_image_follows_resize_and_centre_crop():
    """A patch's map value lands on the image pixels that preprocessing puts in that patch."""
    config = PreprocessConfig(input_size=32, resize=40, channels=1, mean=(0.0,), std=(1.0,))
    shape = (90, 60)  # portrait: the crop cuts rows top and bottom, and columns too (resize 40 > 32)
    geometry = input_geometry(shape, config, (4, 4))
    for patch in [(0, 0), (1, 2), (3, 3)]:
        one_hot = np.zeros((4, 4))
        one_hot[patch] = 1.0
        image_map = grid_to_image(one_hot, geometry, interpolation="nearest")
        # Preprocess the map itself (as an image): the patch's region must come out bright.
        tensor = preprocess_image(image_map, config)[0]
        r, c = patch
        inside = tensor[r * 8 + 1:(r + 1) * 8 - 1, c * 8 + 1:(c + 1) * 8 - 1]
        outside = np.delete(np.delete(tensor, np.s_[r * 8:(r + 1) * 8], 0), np.s_[c * 8:(c + 1) * 8], 1)
        assert inside.min() > 0.9 and outside.max() < 0.1, patch
    seen = seen_mask(geometry)
    assert seen.shape == shape and not seen[0].any() and not seen[:, 0].any() and seen[45, 30]
    assert (grid_to_image(np.ones((4, 4)), geometry)[~seen] == 0).all()


def test_image_to_grid_is_the_inverse_of_grid_to_image_for_blocks():
    config = PreprocessConfig(input_size=32, resize=32, channels=1)
    geometry = input_geometry((64, 64), config, (4, 4))
    grid = np.arange(16, dtype=float).reshape(4, 4)
    back = image_to_grid(grid_to_image(grid, geometry, interpolation="nearest"), geometry)
    np.testing.assert_allclose(back, grid, atol=1e-5)


def _attention_to(patch: int, tokens: int = 5, heads: int = 2, depth: int = 3, strength: float = 0.9):
    """Attention where every token attends mostly to itself, and the class token to ``patch``."""
    attn = np.tile(np.eye(tokens) * 0.6 + 0.4 / tokens, (1, depth, heads, 1, 1))
    attn[..., 0, :] = (1 - strength) / (tokens - 1)
    attn[..., 0, 1 + patch] = strength
    return attn / attn.sum(-1, keepdims=True)


def test_rollout_follows_the_class_token_to_the_attended_patch():
    attn = _attention_to(patch=2)
    rollout = attention_rollout(attn)
    assert rollout.shape == (1, 4) and int(np.argmax(rollout[0])) == 2
    # Uniform attention gives a flat map: rollout adds no structure of its own.
    flat = attention_rollout(np.full((1, 3, 2, 5, 5), 0.2))
    np.testing.assert_allclose(flat, flat[0, 0])


def test_rollout_equals_the_product_of_the_blocks():
    """Abnar and Zuidema 2020: R = A_L ... A_1 with A_l = (W_l + I) / 2, rows re-normalised."""
    rng = np.random.default_rng(4)
    attn = rng.random((1, 3, 2, 6, 6))
    attn /= attn.sum(-1, keepdims=True)
    product = np.eye(6)
    for block in range(3):
        a = 0.5 * attn[0, block].mean(0) + 0.5 * np.eye(6)
        product = (a / a.sum(-1, keepdims=True)) @ product  # later blocks on the left
    np.testing.assert_allclose(attention_rollout(attn)[0], product[0, 1:], rtol=1e-5)


def test_rollout_head_fusion_and_discard_ratio():
    attn = _attention_to(patch=1, heads=2)
    attn[:, :, 1, 0, :] = 0.0  # head 1: the class token looks at patch 3 only
    attn[:, :, 1, 0, 4] = 1.0
    mean = attention_rollout(attn, fusion="mean")[0]
    maximum = attention_rollout(attn, fusion="max")[0]
    minimum = attention_rollout(attn, fusion="min")[0]
    assert maximum[3] > mean[3] > minimum[3]
    # Discarding the lowest weights sharpens the map (the top patch's share grows).
    sharp = attention_rollout(attn, discard_ratio=0.6)[0]
    assert sharp[1] / sharp.sum() > mean[1] / mean.sum()
    with pytest.raises(ValueError):
        attention_rollout(attn, discard_ratio=1.0)
    with pytest.raises(ValueError):
        attention_rollout(attn, fusion="median")


def test_raw_attention_picks_block_and_head():
    attn = np.random.default_rng(0).random((1, 3, 2, 5, 5))
    np.testing.assert_allclose(raw_attention(attn, block=1, head=0)[0], attn[0, 1, 0, 0, 1:])
    np.testing.assert_allclose(raw_attention(attn, block=-1)[0], attn[0, 2, :, 0, 1:].mean(0))
    with pytest.raises(ValueError, match="block 3 out of range"):
        raw_attention(attn, block=3)
    with pytest.raises(ValueError, match="head 2 out of range"):
        raw_attention(attn, head=2)


def test_occlusion_finds_the_patch_the_logit_depends_on():
    grid = (4, 4)

    def logits(batch):  # label 1 reads patch (2, 1) only; label 0 reads patch (0, 3)
        return np.stack([batch[:, :, 0:8, 24:32].mean(axis=(1, 2, 3)),
                         batch[:, :, 16:24, 8:16].mean(axis=(1, 2, 3))], axis=1)

    tensor = np.ones((3, 32, 32), np.float32)
    saliency, base = occlusion_map(tensor, logits, 1, grid, window=1, batch_size=5)
    assert base == pytest.approx(1.0)
    assert np.unravel_index(np.argmax(saliency), grid) == (2, 1) and saliency[2, 1] == pytest.approx(1.0)
    assert np.count_nonzero(saliency) == 1
    wide, _ = occlusion_map(tensor, logits, 0, grid, window=2)
    assert np.unravel_index(np.argmax(wide), grid) == (0, 3)
    # Windows overhanging the border are clipped, so corner patches are covered as often as others.
    counts = np.zeros(grid)
    for r0, r1, c0, c1 in occlusion_windows(grid, 2, 1):
        counts[r0:r1, c0:c1] += 1
    assert (counts == 4).all()


def test_patch_matches_find_the_moved_patch():
    rng = np.random.default_rng(1)
    query = rng.normal(size=(5, 8))
    other = query.copy()
    other[[1, 2]] = other[[2, 1]]  # the patches moved
    other[4] = rng.normal(size=8)  # patch 4 has no counterpart
    matches = patch_matches(query, other)
    assert list(matches.query_match[:2]) == [1, 0]
    np.testing.assert_allclose(matches.query_best[:3], 1.0)
    assert matches.other_best[3] < 0.99 and matches.query_best[3] < 0.99


def test_map_comparisons():
    rng = np.random.default_rng(2)
    a = rng.random((32, 32))
    assert spearman(a, a) == pytest.approx(1.0) and ssim(a, a) == pytest.approx(1.0)
    assert spearman(a, 1 - a) == pytest.approx(-1.0)
    assert abs(spearman(a, rng.random((32, 32)))) < 0.2 and ssim(a, rng.random((32, 32))) < 0.2
    assert spearman(a, a ** 3) == pytest.approx(1.0) and pearson(a, a ** 3) < 0.99  # ranks, not values
    assert np.isnan(pearson(np.ones(4), np.arange(4)))


def test_deletion_beats_random_order_for_a_faithful_map():
    grid = (4, 4)
    weights = np.arange(16, dtype=float).reshape(grid)

    def score(batch):  # a "probability" from the weighted texture (SD) of the patches
        per_patch = batch.reshape(len(batch), 3, 4, 8, 4, 8).std(axis=(1, 3, 5))
        return 1 / (1 + np.exp(-((per_patch * weights).sum(axis=(1, 2)) - 60) / 20))

    # Noise: deleting (zeros) and blurring (the insertion canvas) both remove texture.
    tensor = np.random.default_rng(3).normal(size=(3, 32, 32)).astype(np.float32)
    good = deletion_insertion(tensor, weights, score, steps=16)
    bad = deletion_insertion(tensor, -weights, score, steps=16)
    assert good.deletion_auc < good.random_deletion_auc < bad.deletion_auc
    assert good.insertion_auc > good.random_insertion_auc > bad.insertion_auc
    assert good.deletion[0] == pytest.approx(good.insertion[-1])  # the untouched image, both ends


def test_mass_share_and_random_reference():
    config = PreprocessConfig(input_size=32, resize=32, channels=1)
    geometry = input_geometry((32, 32), config, (4, 4))
    mask = np.zeros((32, 32), bool)
    mask[:8, :8] = True
    hot = np.zeros((4, 4))
    hot[0, 0] = 1.0
    result = mask_share(grid_to_image(hot, geometry, interpolation="nearest"), mask, geometry)
    assert result.share == pytest.approx(1.0) and result.hit
    assert result.area == pytest.approx(1 / 16)
    assert 0.02 < result.random_share < 0.15  # random maps: about the area
    assert np.isnan(mass_share(np.zeros((32, 32)), mask))


def test_scaling_and_rendering():
    scaled, (low, high) = scale_unit(np.array([-1.0, 0.0, 2.0]), "max")
    np.testing.assert_allclose(scaled, [0.0, 0.0, 1.0])  # evidence against is not drawn
    assert (low, high) == (0.0, 2.0)
    lut = viridis_lut()
    assert tuple(lut[0]) == (68, 1, 84) and tuple(lut[-1]) == (253, 231, 37)
    luminance = lut.astype(float) @ [0.2126, 0.7152, 0.0722]
    assert np.all(np.diff(luminance[::8]) > 0)  # brighter = higher, also in greyscale
    image = np.full((20, 30), 100, np.uint8)
    image_map = np.zeros((20, 30))
    image_map[5:10, 5:10] = 1.0
    out = blend(image, image_map, opacity=0.5, threshold=0.3)
    assert (out[0, 0] == 100).all()  # below the threshold: the image untouched
    assert tuple(out[7, 7]) == tuple(np.round((np.array([100, 100, 100]) + lut[-1]) / 2).astype(int))
    composed = compose(image, image_map, title="test")
    assert composed.shape[0] > 20 and composed.shape[1] > 30 and composed.dtype == np.uint8


def test_request_validation():
    with pytest.raises(ValueError):
        ExplainRequest("lime")
    with pytest.raises(ValueError):
        ExplainRequest("occlusion", fill="noise")
    assert "block 5" in ExplainRequest("attention", block=-1).describe(depth=6)

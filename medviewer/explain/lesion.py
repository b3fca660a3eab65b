"""How much of a map falls inside a lesion mask, against random maps of the same smoothness.

The *mass share* is sum(map * mask) / sum(map) over the pixels the model saw
(energy-based pointing game: Wang H et al., "Score-CAM", CVPR-W 2020,
section 4.2); the *pointing hit* says whether the map's maximum lies in the
mask (Zhang J et al., "Top-down Neural Attention by Excitation Backprop",
ECCV 2016).  A uniform map's share equals the mask's area fraction; the
random reference here is a map of independent uniform values per patch,
upsampled exactly as the real maps are, so it has their smoothness.
Synthetic lesion masks mark where a finding was drawn; a model may rightly
use other evidence (the heart's border for cardiomegaly, the diaphragm for
emphysema), so these figures describe behaviour, not correctness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medviewer.explain.geometry import InputGeometry, grid_to_image, seen_mask


@dataclass(frozen=True)
class MaskShare:
    """One map against one mask.

    Attributes
    ----------
    share : float
        Share of the map's mass inside the mask (pixels the model saw).
    area : float
        The mask's share of those pixels (a uniform map's share).
    random_share : float
        Mean share of ``random_maps`` random patch maps.
    hit : bool
        The map's maximum lies inside the mask.
    """

    share: float
    area: float
    random_share: float
    hit: bool


def mass_share(image_map: np.ndarray, mask: np.ndarray, seen: np.ndarray | None = None) -> float:
    """Return sum(map * mask) / sum(map) over ``seen`` pixels (NaN for an empty map)."""
    image_map = np.clip(np.asarray(image_map, dtype=np.float64), 0.0, None)
    mask = np.asarray(mask) > 0
    if image_map.shape != mask.shape:
        raise ValueError(f"map {image_map.shape} and mask {mask.shape} differ in size")
    if seen is not None:
        image_map = np.where(seen, image_map, 0.0)
    total = image_map.sum()
    return float((image_map * mask).sum() / total) if total > 0 else float("nan")


def mask_share(image_map: np.ndarray, mask: np.ndarray, geometry: InputGeometry, *,
               random_maps: int = 20, seed: int = 0) -> MaskShare:
    """Return a map's mass share and pointing hit in a mask, with the random reference."""
    mask = np.asarray(mask) > 0
    seen = seen_mask(geometry)
    share = mass_share(image_map, mask, seen)
    area = float(mask[seen].mean()) if seen.any() else float("nan")
    rng = np.random.default_rng(seed)
    randoms = [mass_share(grid_to_image(rng.random(geometry.grid), geometry), mask, seen)
               for _ in range(random_maps)]
    masked = np.where(seen, image_map, -np.inf)
    peak = np.unravel_index(int(np.argmax(masked)), masked.shape)
    return MaskShare(share, area, float(np.nanmean(randoms)) if randoms else float("nan"), bool(mask[peak]))

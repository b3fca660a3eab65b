"""Where each image pixel lands in the model input, and back: maps at the image's pixel size.

The app's preprocessing (:mod:`medviewer.inference.preprocess`) resizes the
shorter side to ``resize`` and takes the central ``input_size`` square, so a
model's patch grid covers only part of a non-square (or ``resize > input_size``)
image.  :func:`grid_to_image` undoes exactly that geometry: every image pixel
centre is carried through the resize (Pillow maps output pixel centre ``i + 0.5``
to input ``(i + 0.5) * in / out``) and the crop offset into the patch grid, where
the map is sampled bilinearly between patch centres.  Pixels the model never
saw (outside the crop) get ``outside`` (0 by default) and are reported by
:func:`seen_mask`, so an overlay never pretends the model looked where it did not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medviewer.inference.preprocess import PreprocessConfig


@dataclass(frozen=True)
class InputGeometry:
    """How one image maps onto the model input.

    Attributes
    ----------
    image_shape : tuple of int
        (rows, cols) of the displayed image.
    resized_shape : tuple of int
        (rows, cols) after resizing the shorter side to ``resize``.
    offset : tuple of int
        (top, left) of the centre crop in the resized image.
    input_size : int
        Side of the square model input.
    grid : tuple of int
        Patch grid (rows, cols).
    """

    image_shape: tuple[int, int]
    resized_shape: tuple[int, int]
    offset: tuple[int, int]
    input_size: int
    grid: tuple[int, int]

    @property
    def patch(self) -> tuple[float, float]:
        """Return the patch size in model-input pixels (rows, cols)."""
        return self.input_size / self.grid[0], self.input_size / self.grid[1]


def resized_shape(shape: tuple[int, int], size: int) -> tuple[int, int]:
    """Return the (rows, cols) that ``resize_shorter_side`` produces (same rounding)."""
    h, w = int(shape[0]), int(shape[1])
    if min(h, w) == size:
        return h, w
    scale = size / min(h, w)
    new_h = size if h <= w else max(size, int(round(h * scale)))
    new_w = size if w < h else max(size, int(round(w * scale)))
    return new_h, new_w


def input_geometry(image_shape: tuple[int, ...], config: PreprocessConfig,
                   grid: tuple[int, int] | list[int]) -> InputGeometry:
    """Return the geometry of ``config``'s preprocessing for an image of ``image_shape``.

    Parameters
    ----------
    image_shape : tuple of int
        The displayed image's shape ((rows, cols) or (rows, cols, channels)).
    config : PreprocessConfig
        The bundle's preprocessing.
    grid : tuple of int
        The model's patch grid (``architecture.grid`` in the metadata).
    """
    rows, cols = int(image_shape[0]), int(image_shape[1])
    size = int(config.input_size)
    hr, wr = resized_shape((rows, cols), int(config.resize))
    # Same expression as medviewer.inference.preprocess.center_crop (Python's round).
    top, left = int(round((hr - size) / 2.0)), int(round((wr - size) / 2.0))
    return InputGeometry((rows, cols), (hr, wr), (top, left), size, (int(grid[0]), int(grid[1])))


def _axis_samples(n_image: int, n_resized: int, offset: int, size: int, cells: int,
                  interpolation: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return, per image pixel along one axis, (low cell, high cell, weight of high, inside crop)."""
    centres = (np.arange(n_image) + 0.5) * (n_resized / n_image) - offset  # crop coordinate
    inside = (centres >= 0.0) & (centres <= size)
    cell = centres / (size / cells) - 0.5  # in units of patch centres
    if interpolation == "nearest":
        index = np.clip(np.floor(cell + 0.5).astype(int), 0, cells - 1)
        return index, index, np.zeros(n_image), inside
    cell = np.clip(cell, 0.0, cells - 1.0)
    low = np.floor(cell).astype(int)
    return low, np.minimum(low + 1, cells - 1), cell - low, inside


def grid_to_image(grid_map: np.ndarray, geometry: InputGeometry, *, interpolation: str = "bilinear",
                  outside: float = 0.0) -> np.ndarray:
    """Return a patch-grid map resampled to the image's pixels (float32, (rows, cols)).

    Parameters
    ----------
    grid_map : np.ndarray
        (grid rows, grid cols) values, one per patch.
    geometry : InputGeometry
        From :func:`input_geometry`.
    interpolation : str
        ``"bilinear"`` (between patch centres) or ``"nearest"`` (patch blocks).
    outside : float
        Value of the pixels the model never saw (outside the centre crop).
    """
    grid_map = np.asarray(grid_map, dtype=np.float32)
    if grid_map.shape != geometry.grid:
        raise ValueError(f"map shape {grid_map.shape} differs from the patch grid {geometry.grid}")
    if interpolation not in ("bilinear", "nearest"):
        raise ValueError(f"interpolation must be 'bilinear' or 'nearest', not {interpolation!r}")
    (rows, cols), (hr, wr) = geometry.image_shape, geometry.resized_shape
    top, left = geometry.offset
    r0, r1, fr, in_r = _axis_samples(rows, hr, top, geometry.input_size, geometry.grid[0], interpolation)
    c0, c1, fc, in_c = _axis_samples(cols, wr, left, geometry.input_size, geometry.grid[1], interpolation)
    # Separable gather-and-blend: element-wise numpy only.  A BLAS product would be
    # smaller code, but waking BLAS threads costs milliseconds on a busy machine.
    fr, fc = fr.astype(np.float32)[:, None], fc.astype(np.float32)[None, :]
    by_row = grid_map[r0] * (1 - fr) + grid_map[r1] * fr  # (rows, grid cols)
    image = by_row[:, c0] * (1 - fc) + by_row[:, c1] * fc
    image[~in_r, :] = outside
    image[:, ~in_c] = outside
    return image


def seen_mask(geometry: InputGeometry) -> np.ndarray:
    """Return a (rows, cols) boolean mask of the pixels inside the model's centre crop."""
    (rows, cols), (hr, wr) = geometry.image_shape, geometry.resized_shape
    top, left = geometry.offset
    size = geometry.input_size
    r = (np.arange(rows) + 0.5) * (hr / rows) - top
    c = (np.arange(cols) + 0.5) * (wr / cols) - left
    return ((r >= 0) & (r <= size))[:, None] & ((c >= 0) & (c <= size))[None, :]


def image_to_grid(values: np.ndarray, geometry: InputGeometry) -> np.ndarray:
    """Return the mean of an image-sized array over each patch's footprint (e.g. a lesion mask).

    Used to compare pixel masks with patch-level maps; pixels outside the
    crop are ignored.
    """
    values = np.asarray(values, dtype=np.float64)
    (rows, cols), (hr, wr) = geometry.image_shape, geometry.resized_shape
    top, left = geometry.offset
    size = geometry.input_size
    gr, gc = geometry.grid
    r = ((np.arange(rows) + 0.5) * (hr / rows) - top) / (size / gr)
    c = ((np.arange(cols) + 0.5) * (wr / cols) - left) / (size / gc)
    ri, ci = np.floor(r).astype(int), np.floor(c).astype(int)
    rv, cv = (ri >= 0) & (ri < gr), (ci >= 0) & (ci < gc)
    one_r = np.zeros((gr, rows))
    one_r[ri[rv], np.flatnonzero(rv)] = 1.0
    one_c = np.zeros((gc, cols))
    one_c[ci[cv], np.flatnonzero(cv)] = 1.0
    sums = one_r @ values @ one_c.T
    counts = one_r.sum(1)[:, None] * one_c.sum(1)[None, :]
    return (sums / np.maximum(counts, 1.0)).astype(np.float32)

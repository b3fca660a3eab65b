"""Turn a displayed image into a model input tensor: the one preprocessing of MedViewer.

Training (``models/``) and the app both call :func:`preprocess_image`, so the
tensor a model was trained on and the tensor it sees in the app cannot drift.
Training passes its random augmentation as the ``augment`` callable, which runs
between the resize and the centre crop; the app passes none.  Training may
cache the deterministic first half (:func:`resized_unit`) and call
:func:`finish_from_resized` each epoch: ``preprocess_image`` is exactly the
composition of the two.

The steps, every parameter coming from the bundle's ``metadata.json``
(``preprocessing`` block, see :class:`PreprocessConfig`):

1. intensity to [0, 1] (:func:`to_unit_range`): the input is the image as
   displayed, i.e. after the modality LUT, the VOI LUT or window and the
   MONOCHROME1 inversion ("display" policy); or per-image min-max ("minmax");
2. resize so the shorter side is ``resize`` pixels (bilinear, antialiased,
   Pillow ``F`` mode so no 8-bit rounding happens), aspect ratio kept;
3. optional augmentation (training only);
4. centre crop of ``input_size`` x ``input_size``;
5. ``(x - mean) / std`` per channel, the grey image replicated to ``channels``.

Only numpy and Pillow are used, and every step is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from medviewer.inference.errors import PreprocessError

# The shorter side after resizing; beyond this a bundle is certainly wrong (and would not fit).
MAX_RESIZE = 4096
WINDOW_POLICIES = ("display", "minmax")
INTERPOLATIONS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}

# An augmentation maps a 2-D float32 image in [0, 1] to another one (any size
# at least input_size), e.g. a random rotation and flip during training.
Augment = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class PreprocessConfig:
    """Parameters of the preprocessing, as stored in a bundle's metadata.

    Attributes
    ----------
    input_size : int
        Side of the square model input, in pixels (224 for the paper recipe).
    resize : int
        The shorter image side is resized to this before the centre crop (256).
    channels : int
        1, or 3 for models that expect RGB (the grey image is replicated).
    mean, std : tuple of float
        Normalisation per channel (one value is used for every channel), in
        the [0, 1] intensity scale.
    window_policy : str
        ``"display"``: the input is the displayed (windowed) image; uint8 is
        divided by 255, floats are taken as 0..1 (or 0..255 when larger than
        1). ``"minmax"``: each image is rescaled by its own min and max.
    interpolation : str
        ``"bilinear"`` (default) or ``"bicubic"``.
    """

    input_size: int = 224
    resize: int = 256
    channels: int = 3
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.25,)
    window_policy: str = "display"
    interpolation: str = "bilinear"
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in np.atleast_1d(self.mean)))
        object.__setattr__(self, "std", tuple(float(v) for v in np.atleast_1d(self.std)))
        problems = self.problems()
        if problems:
            raise ValueError("invalid preprocessing: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """Return what is inconsistent in the parameters (empty when valid)."""
        found = []
        if int(self.input_size) < 1:
            found.append(f"input_size must be positive, not {self.input_size}")
        if int(self.resize) < int(self.input_size):
            found.append(f"resize ({self.resize}) is smaller than input_size ({self.input_size})")
        elif int(self.resize) > MAX_RESIZE:
            # Larger would allocate gigabytes per image before the crop.
            found.append(f"resize ({self.resize}) is over {MAX_RESIZE} pixels")
        if self.channels not in (1, 3):
            found.append(f"channels must be 1 or 3, not {self.channels}")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if len(values) not in (1, self.channels):
                found.append(f"{name} needs 1 or {self.channels} values, not {len(values)}")
        if any(not np.isfinite(s) or s <= 0 for s in self.std):
            found.append("std values must be positive")
        if any(not np.isfinite(m) for m in self.mean):
            found.append("mean values must be finite numbers")
        if self.window_policy not in WINDOW_POLICIES:
            found.append(
                f"window_policy must be one of {WINDOW_POLICIES}, not {self.window_policy!r}"
            )
        if self.interpolation not in INTERPOLATIONS:
            found.append(f"interpolation must be one of {tuple(INTERPOLATIONS)}")
        return found

    @classmethod
    def from_metadata(cls, block: dict[str, Any]) -> PreprocessConfig:
        """Build the configuration from a metadata ``preprocessing`` block.

        Raises
        ------
        KeyError
            A required key is missing.
        ValueError
            A value is invalid.
        """
        known = {
            "input_size", "resize", "channels", "mean", "std", "window_policy", "interpolation",
        }
        return cls(
            input_size=int(block["input_size"]),
            resize=int(block["resize"]),
            channels=int(block["channels"]),
            mean=tuple(block["mean"]),
            std=tuple(block["std"]),
            window_policy=str(block.get("window_policy", "display")),
            interpolation=str(block.get("interpolation", "bilinear")),
            extra={k: v for k, v in block.items() if k not in known},
        )

    def to_metadata(self) -> dict[str, Any]:
        """Return the ``preprocessing`` block written into ``metadata.json``."""
        block = asdict(self)
        block.pop("extra")
        block["mean"] = list(self.mean)
        block["std"] = list(self.std)
        block.update(self.extra)
        return block


def to_grey(image: np.ndarray) -> np.ndarray:
    """Return a 2-D view of ``image``: RGB(A) becomes the mean of R, G and B.

    Radiographs saved as RGB carry three equal channels, so the mean loses
    nothing; true colour images are not expected here.
    """
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    elif arr.ndim == 3 and arr.shape[-1] in (3, 4):
        arr = arr[..., :3].astype(np.float32).mean(axis=-1)
    if arr.ndim != 2:
        raise PreprocessError(
            f"expected a 2-D grey image (or H x W x 1/3/4), got shape {arr.shape}",
            hint="pass one frame or slice at a time",
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise PreprocessError(f"image is empty (shape {arr.shape})")
    return arr


def to_unit_range(
    image: np.ndarray,
    window_policy: str = "display",
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Return the image as float32 in [0, 1].

    Parameters
    ----------
    image : np.ndarray
        2-D image (or H x W x channels; see :func:`to_grey`).
    window_policy : str
        See :class:`PreprocessConfig`.
    value_range : tuple of float, optional
        Explicit (low, high) display range, overriding the dtype-based guess
        of the "display" policy.

    Raises
    ------
    PreprocessError
        The image has non-finite values, or a float image lies outside
        0..255 under the "display" policy (it was not windowed).
    """
    arr = to_grey(image)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise PreprocessError("image holds NaN or infinite values", hint="window the image first")
    if window_policy == "minmax":
        arr = arr.astype(np.float64)
        low, high = float(arr.min()), float(arr.max())
        scaled = (arr - low) / (high - low) if high > low else np.zeros_like(arr)
        return scaled.astype(np.float32)
    if window_policy != "display":
        raise PreprocessError(f"unknown window policy {window_policy!r}")
    if value_range is not None:
        low, high = float(value_range[0]), float(value_range[1])
        if not high > low:
            raise PreprocessError(
                f"value_range must be (low, high) with high > low, not {value_range}"
            )
    elif arr.dtype == np.uint8:
        low, high = 0.0, 255.0
    elif np.issubdtype(arr.dtype, np.unsignedinteger):
        # 16-bit PNGs: their full range is the display range.
        low, high = 0.0, float(np.iinfo(arr.dtype).max)
    else:
        low, high = 0.0, _float_display_max(arr)
    scaled = (arr.astype(np.float64) - low) / (high - low)
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def _float_display_max(arr: np.ndarray) -> float:
    """Guess whether a display image is scaled 0..1 or 0..255."""
    top = float(arr.max()) if arr.size else 0.0
    low = float(arr.min()) if arr.size else 0.0
    if low < -1e-3 or top > 255.0 + 1e-3:
        raise PreprocessError(
            f"display image values span {low:g}..{top:g}, outside 0..1 and 0..255",
            hint="apply the window (VOI LUT) before classifying, or use the 'minmax' policy",
        )
    return 1.0 if top <= 1.0 + 1e-6 else 255.0


def resize_shorter_side(
    image: np.ndarray, size: int, interpolation: str = "bilinear"
) -> np.ndarray:
    """Resize a 2-D float32 image so its shorter side is ``size``, keeping the aspect ratio.

    The longer side becomes ``round(long * size / short)``.  Pillow's ``F``
    mode resamples in 32-bit float (antialiased when shrinking).
    """
    h, w = image.shape
    if min(h, w) == size:
        return np.ascontiguousarray(image, dtype=np.float32)
    scale = size / min(h, w)
    new_h = size if h <= w else max(size, int(round(h * scale)))
    new_w = size if w < h else max(size, int(round(w * scale)))
    pil = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32))
    resized = pil.resize((new_w, new_h), resample=INTERPOLATIONS[interpolation])
    return np.asarray(resized, dtype=np.float32)


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Return the central ``size`` x ``size`` square (offsets rounded as torchvision does)."""
    h, w = image.shape[:2]
    if h < size or w < size:
        raise PreprocessError(f"cannot crop {size}x{size} from an image of {h}x{w}")
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return image[top : top + size, left : left + size]


def normalise(image: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """Replicate a 2-D [0, 1] image to ``config.channels`` and apply mean/std: (C, H, W)."""
    mean = np.resize(np.asarray(config.mean, dtype=np.float32), config.channels)
    std = np.resize(np.asarray(config.std, dtype=np.float32), config.channels)
    stacked = np.broadcast_to(image[None].astype(np.float32), (config.channels, *image.shape))
    return ((stacked - mean[:, None, None]) / std[:, None, None]).astype(np.float32)


def resized_unit(
    image: np.ndarray,
    config: PreprocessConfig,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Return steps 1-2: the image in [0, 1], shorter side resized to ``config.resize``.

    Deterministic, so training may compute it once per image and cache it.
    """
    unit = to_unit_range(image, config.window_policy, value_range)
    return resize_shorter_side(unit, config.resize, config.interpolation)


def finish_from_resized(
    resized: np.ndarray, config: PreprocessConfig, augment: Augment | None = None
) -> np.ndarray:
    """Return steps 3-5 applied to the output of :func:`resized_unit`: (C, H, W)."""
    return normalise(crop_from_resized(resized, config, augment), config)


def crop_from_resized(
    resized: np.ndarray, config: PreprocessConfig, augment: Augment | None = None
) -> np.ndarray:
    """Return steps 3-4 (augmentation, centre crop) as a 2-D [0, 1] image.

    Training uses this to compute the dataset mean and std.
    """
    if augment is not None:
        resized = np.asarray(augment(resized), dtype=np.float32)
    return center_crop(resized, config.input_size)


def preprocess_image(
    image: np.ndarray,
    config: PreprocessConfig,
    augment: Augment | None = None,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Turn one displayed image into a model input of shape (C, H, W), float32.

    Parameters
    ----------
    image : np.ndarray
        2-D image in display space (uint8, or float 0..1 / 0..255), or
        H x W x 1/3/4.
    config : PreprocessConfig
        The bundle's preprocessing (``Bundle.preprocess``).
    augment : callable, optional
        Training-time augmentation applied after the resize, before the crop.
    value_range : tuple of float, optional
        Explicit display range, see :func:`to_unit_range`.

    Returns
    -------
    np.ndarray
        Array of shape (channels, input_size, input_size).
    """
    return finish_from_resized(resized_unit(image, config, value_range), config, augment)


def preprocess_batch(images: Sequence[np.ndarray], config: PreprocessConfig) -> np.ndarray:
    """Preprocess several images into one (N, C, H, W) float32 batch."""
    if len(images) == 0:
        return np.zeros((0, config.channels, config.input_size, config.input_size), np.float32)
    return np.stack([preprocess_image(im, config) for im in images]).astype(np.float32, copy=False)

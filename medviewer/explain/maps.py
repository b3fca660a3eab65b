"""What an explanation is: the request, the map at the image's pixel size, and its provenance."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from medviewer.explain.attention import FUSIONS
from medviewer.explain.geometry import InputGeometry


@dataclass(frozen=True)
class MapMethod:
    """One kind of map: the registry entry the CLI, the overlay panel and the reports read.

    Attributes
    ----------
    key : str
        The method's name in requests, ``--method`` and JSON.
    title : str
        The map's title (legend, PNG, reports).
    label : str
        The overlay panel's menu text.
    pair : bool
        Made for a pair of images (a query and a search hit), not one image.
    """

    key: str
    title: str
    label: str
    pair: bool = False

    @property
    def checkable(self) -> bool:
        """Whether the trust checks (deletion/insertion, randomisation) apply."""
        return not self.pair


# The one list of overlay methods, in the order menus show them.
MAP_METHODS: tuple[MapMethod, ...] = (
    MapMethod("rollout", "Attention rollout", "Attention rollout"),
    MapMethod("attention", "Raw attention", "Raw attention (block, head)"),
    MapMethod("gradcam", "Grad-CAM", "Class map: Grad-CAM"),
    MapMethod("occlusion", "Occlusion saliency", "Class map: occlusion (slow)"),
    MapMethod("similarity", "Patch match (rank in the pair)", "Why similar (search result)",
              pair=True),
)
METHODS = tuple(m.key for m in MAP_METHODS)
SINGLE_IMAGE_METHODS = tuple(m.key for m in MAP_METHODS if not m.pair)
METHOD_TITLES = {m.key: m.title for m in MAP_METHODS}
# Methods that explain one label (the others show where the model looked, for any label).
CLASS_METHODS = ("occlusion", "gradcam")
FILLS = ("mean", "blur")


def map_method(key: str) -> MapMethod:
    """Return the registry entry of a method (``KeyError`` for an unknown one)."""
    return next(m for m in MAP_METHODS if m.key == key) if key in METHODS else {}[key]


@dataclass(frozen=True)
class ExplainRequest:
    """Which map to compute, with its parameters.

    Attributes
    ----------
    method : str
        ``rollout``, ``attention``, ``occlusion``, ``gradcam`` or ``similarity``.
    fusion : str
        Rollout head fusion: ``mean``, ``max`` or ``min``.
    discard_ratio : float
        Rollout: share of the lowest attention weights dropped per block.
    block : int
        Raw attention: block index (negative counts from the last).
    head : int or None
        Raw attention: head index; None averages the heads.
    label : str or None
        Occlusion and Grad-CAM: the label explained (None: the highest-scoring one).
    window, stride : int
        Occlusion window side and step, in patches.
    fill : str
        Occlusion fill: ``mean`` (default: the training set's mean grey) or
        ``blur`` (the window's own content blurred with a Gaussian of half a
        patch: its detail goes, its brightness stays).
    fallback : bool
        Grad-CAM on a bundle without the gradient graph: compute occlusion
        instead and say so (True), or raise (False: the CLI's explicit choice).
    """

    method: str = "rollout"
    fusion: str = "mean"
    discard_ratio: float = 0.0
    block: int = -1
    head: int | None = None
    label: str | None = None
    window: int = 2
    stride: int = 1
    fill: str = "mean"
    fallback: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {self.method!r}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, not {self.fusion!r}")
        if self.fill not in FILLS:
            raise ValueError(f"fill must be one of {FILLS}, not {self.fill!r}")
        if not 0.0 <= float(self.discard_ratio) < 1.0:
            raise ValueError(f"discard ratio must be in [0, 1), not {self.discard_ratio}")

    def with_(self, **changes: Any) -> ExplainRequest:
        """Return a copy with some fields changed."""
        return replace(self, **changes)

    def describe(self, depth: int | None = None) -> str:
        """Return the method and its parameters in a few words (legend and PNG title)."""
        title = METHOD_TITLES[self.method]
        if self.method == "rollout":
            return f"{title} (heads: {self.fusion}, discard {self.discard_ratio:.2f})"
        if self.method == "attention":
            block = self.block % depth if depth else self.block
            head = "mean of heads" if self.head is None else f"head {self.head}"
            return f"{title} (block {block}, {head})"
        if self.method == "occlusion":
            size = f"{self.window}x{self.window} patches"
            return f"{title}: {self.label or 'top label'} ({size}, {self.fill} fill)"
        if self.method == "gradcam":
            return f"{title}: {self.label or 'top label'} (last block norm1)"
        return title


@dataclass
class Explanation:
    """A map of one image.

    Attributes
    ----------
    image_map : np.ndarray
        (rows, cols) float32 in [0, 1] at the image's pixel size; 0 where the
        model did not look (outside its centre crop).
    grid : np.ndarray
        (grid rows, grid cols) float32 in [0, 1], one value per patch.
    raw : np.ndarray
        The unscaled patch values (attention probability, signed logit drop,
        or best cosine), before scaling to [0, 1].
    request : ExplainRequest
    title : str
        Method and parameters in words.
    geometry : InputGeometry
    label : str or None
        The label explained (occlusion), with ``score`` its logit.
    score : float or None
    scale : tuple of float
        The raw values that map to 0 and 1 (similarity: the pair's lowest and
        highest best-match cosine; its map holds ranks).
    seconds : float
        Time to compute the map (model run included unless it was cached).
    model_sha256 : str
    """

    image_map: np.ndarray
    grid: np.ndarray
    raw: np.ndarray
    request: ExplainRequest
    title: str
    geometry: InputGeometry
    label: str | None = None
    score: float | None = None
    scale: tuple[float, float] = (0.0, 1.0)
    seconds: float = 0.0
    model_sha256: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the explanation's description (not its arrays) as JSON-friendly data."""
        return {
            "method": self.request.method,
            "title": self.title,
            "label": self.label,
            "score": None if self.score is None else round(float(self.score), 6),
            "shape": list(self.image_map.shape),
            "grid": list(self.grid.shape),
            "scale": [round(float(v), 6) for v in self.scale],
            "seconds": round(self.seconds, 4),
            "model_sha256": self.model_sha256,
            "parameters": {k: getattr(self.request, k) for k in
                           ("fusion", "discard_ratio", "block", "head", "window", "stride", "fill")},
            **self.extra,
        }


@dataclass
class PairExplanation:
    """Paired "why similar" maps of a query and another image.

    Attributes
    ----------
    query, other : Explanation
    embedding_similarity : float
        Cosine of the two images' embeddings (what retrieval ranks by).
    """

    query: Explanation
    other: Explanation
    embedding_similarity: float


def scale_unit(values: np.ndarray, mode: str = "max") -> tuple[np.ndarray, tuple[float, float]]:
    """Scale patch values to [0, 1]; return them and the raw (low, high) mapped to 0 and 1.

    ``max``: divide by the maximum, negatives clipped to 0 (an attention
    share or an evidence-for score: 0 keeps meaning "none"); ``minmax``:
    stretch the range (cosines, where only the order within the pair matters).
    """
    values = np.asarray(values, dtype=np.float64)
    if mode == "max":
        low, high = 0.0, float(values.max(initial=0.0))
        scaled = np.clip(values, 0.0, None) / high if high > 0 else np.zeros_like(values)
    elif mode == "minmax":
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    else:
        raise ValueError(f"unknown scaling {mode!r}")
    return scaled.astype(np.float32), (low, high)

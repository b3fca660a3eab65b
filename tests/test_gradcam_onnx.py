"""Grad-CAM from the ONNX bundle, the bundle's domain and its out-of-distribution summary.

A tiny ViT (patch 8, 32 px, depth 2) is trained briefly on synthetic chest
radiographs (``medviewer.synthetic``, PNG + ChestX-ray14 table) and exported
with ``models.export``.  Then:

* the app's Grad-CAM (ONNX Runtime only, ``gradcam.onnx``) equals torch
  autograd Grad-CAM (``models/gradcam.py``) on the same weights: per-image
  Pearson r >= 0.99 for every label, on images the export check never saw;
* the bundle declares its domain (chest radiographs) and the CLI says a CT
  slice does not apply, with the OOD percentile, in JSON;
* bad input exits 2 with one message: unknown label, a bundle without the
  gradient graph, a tampered graph.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")
pytest.importorskip("onnx")

from medviewer.cli.main import main as cli_main  # noqa: E402
from medviewer.explain import Explainer, ExplainRequest, pearson  # noqa: E402
from medviewer.explain.gradcam import GradcamUnavailableError  # noqa: E402
from medviewer.inference import ChecksumMismatchError, ModelRunner, load_bundle  # noqa: E402

LABELS = ("Cardiomegaly", "Emphysema", "Opacity")


@pytest.fixture(scope="module")
def chest_bundle(tmp_path_factory):
    """Train and export the tiny chest ViT; return (torch model, bundle folder, dataset manifest)."""
    from medviewer.synthetic.dataset import generate_dataset
    from models.export import export_bundle
    from models.prepare import DataConfig
    from models.train import TrainConfig, model_from_checkpoint, train
    from models.vit import ArchConfig

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("chest")
    manifest = generate_dataset(root / "data", 90, 7, size=64, ct_series=1, ct_size=32, ct_slices=4)
    cfg = TrainConfig(
        data=DataConfig(labels=str(root / "data" / "png" / "Data_Entry_2017.csv"), fmt="cxr14",
                        task="multilabel", findings=list(LABELS), negatives="rest", balance=False, seed=0),
        arch=ArchConfig(model="custom", patch_size=8, embed_dim=32, depth=2, num_heads=2),
        input_size=32, resize=36, channels=3, epochs=3, batch_size=16, lr=2e-3, seed=0,
        out=str(root / "run"), progress=False, threads=1, warmup_epochs=1)
    summary = train(cfg, log=lambda line: None)
    export_bundle(summary["checkpoint"], root / "bundle", log=lambda line: None)
    model = model_from_checkpoint(torch.load(summary["checkpoint"], weights_only=False))
    return model, root / "bundle", root / "data"


def _images(n=12, seed=3):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (40, 44), dtype=np.uint8) for _ in range(n)]


def test_onnx_gradcam_matches_torch_gradcam_on_the_same_weights(chest_bundle):
    from models.gradcam import vit_gradcam

    model, folder, _ = chest_bundle
    bundle = load_bundle(folder)
    parity = bundle.metadata["gradcam"]["parity"]
    assert parity["pearson_min"] >= 0.99, parity
    assert "Grad-CAM" in bundle.card_text and str(parity["pearson_min"]) in bundle.card_text
    explainer = Explainer(ModelRunner(bundle, "cpu", threads=1))
    images = _images()
    batch = torch.from_numpy(np.stack([explainer.outputs(im).tensor for im in images]))
    for index, label in enumerate(LABELS):
        reference = vit_gradcam(model, batch, index, relu=False)
        for image, ref in zip(images, reference):
            graph = explainer.gradcam_graph()
            signed, _ = graph.cam(explainer.outputs(image).tensor, index, relu=False)
            assert pearson(signed[0], ref) >= 0.99
            e = explainer.explain(image, ExplainRequest("gradcam", label=label))
            assert e.label == label and e.grid.shape == ref.shape
            np.testing.assert_allclose(e.raw, np.maximum(ref, 0), rtol=1e-3, atol=1e-4)


def test_gradcam_maps_differ_between_labels(chest_bundle):
    """A label mix-up (every label explained by the same logit) would make the maps equal."""
    _, folder, _ = chest_bundle
    explainer = Explainer(ModelRunner(load_bundle(folder), "cpu", threads=1))
    graph = explainer.gradcam_graph()
    tensor = explainer.outputs(_images(1)[0]).tensor
    maps = [graph.cam(tensor, i, relu=False)[0][0] for i in range(len(LABELS))]
    assert pearson(maps[0], maps[1]) < 0.99 and pearson(maps[1], maps[2]) < 0.99


def test_bundle_without_gradient_graph_says_so_and_falls_back(chest_bundle, tmp_path):
    _, folder, _ = chest_bundle
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    meta = json.loads((old / "metadata.json").read_text())
    meta.pop("gradcam")
    (old / "gradcam.onnx").unlink()
    (old / "metadata.json").write_text(json.dumps(meta))
    explainer = Explainer(ModelRunner(load_bundle(old), "cpu", threads=1))
    image = _images(1)[0]
    with pytest.raises(GradcamUnavailableError, match="no Grad-CAM gradient graph"):
        explainer.explain(image, ExplainRequest("gradcam", label="Opacity"))
    e = explainer.explain(image, ExplainRequest("gradcam", label="Opacity", fallback=True))
    assert e.request.method == "occlusion" and "showing occlusion instead" in e.extra["fallback"]


def test_tampered_gradient_graph_is_refused(chest_bundle, tmp_path):
    _, folder, _ = chest_bundle
    copy = tmp_path / "tampered"
    shutil.copytree(folder, copy)
    with open(copy / "gradcam.onnx", "ab") as fh:
        fh.write(b"\0")
    explainer = Explainer(ModelRunner(load_bundle(copy), "cpu", threads=1))
    with pytest.raises(ChecksumMismatchError):
        explainer.explain(_images(1)[0], ExplainRequest("gradcam"))


def test_bundle_declares_its_domain_and_ood_summary(chest_bundle):
    _, folder, _ = chest_bundle
    meta = load_bundle(folder).metadata
    domain = meta["domain"]
    assert domain["body_parts"] == ["CHEST"] and set(domain["modalities"]) >= {"CR", "DX"}
    assert domain["min_size"] == 36 and domain["formats"] == ["png"]
    ood = meta["ood"]
    assert (folder / ood["file"]).is_file() and len(ood["quantiles"]) == 101
    assert ood["quantiles"] == sorted(ood["quantiles"])
    assert "Domain" in load_bundle(folder).card_text


def _cli(capsys, *argv):
    code = cli_main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_explain_gradcam_writes_the_map_and_says_whether_it_applies(chest_bundle, tmp_path, capsys):
    _, folder, data = chest_bundle
    film = next((data / "png").rglob("*.png"))
    code, out, _ = _cli(capsys, "explain", str(folder), str(film), "--method", "gradcam", "--label", "Opacity",
                        "--out", str(tmp_path / "m.npy"), "--json")
    assert code == 0, out
    payload = json.loads(out)
    assert payload["method"] == "gradcam" and payload["label"] == "Opacity"
    assert payload["applicable"] is True and payload["reasons"] == []
    assert 0 <= payload["ood_percentile"] <= 100
    saved = np.load(tmp_path / "m.npy")
    assert saved.shape == (64, 64) and 0 <= saved.min() and saved.max() <= 1


def test_cli_flags_a_ct_slice_for_a_chest_radiograph_model(chest_bundle, capsys):
    _, folder, data = chest_bundle
    from medviewer.inference.applicability import image_facts

    ct = next(p for p in sorted(data.rglob("*.dcm")) if image_facts(p).modality == "CT")
    code, out, _ = _cli(capsys, "classify", str(folder), str(ct), "--json", "--provider", "cpu")
    assert code == 0
    result = json.loads(out)["results"][0]
    assert result["applicable"] is False
    assert any("chest radiographs" in r and "CT" in r for r in result["reasons"]), result["reasons"]


@pytest.mark.parametrize("argv, message", [
    (["--label", "Pneumothorax"], "unknown label"),
])
def test_cli_explain_bad_input_exits_2(chest_bundle, tmp_path, capsys, argv, message):
    _, folder, data = chest_bundle
    film = next((data / "png").rglob("*.png"))
    code, out, err = _cli(capsys, "explain", str(folder), str(film), "--method", "gradcam",
                          "--out", str(tmp_path / "m.png"), *argv)
    assert code == 2 and message in err and not (tmp_path / "m.png").exists()


def test_cli_explain_unreadable_image_and_old_bundle_exit_2(chest_bundle, tmp_path, capsys):
    _, folder, data = chest_bundle
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"<html>not an image</html>")
    code, _, err = _cli(capsys, "explain", str(folder), str(broken), "--method", "gradcam",
                        "--out", str(tmp_path / "m.npy"))
    assert code == 2 and "DICOM" in err
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    meta = json.loads((old / "metadata.json").read_text())
    meta.pop("gradcam")
    (old / "metadata.json").write_text(json.dumps(meta))
    film = next((data / "png").rglob("*.png"))
    code, _, err = _cli(capsys, "explain", str(old), str(film), "--method", "gradcam", "--out", str(tmp_path / "m.npy"))
    assert code == 2 and "no Grad-CAM gradient graph" in err and "occlusion" in err
    code, out, _ = _cli(capsys, "explain", str(old), str(film), "--method", "gradcam", "--fallback-occlusion",
                        "--out", str(tmp_path / "m.npy"))
    assert code == 0 and "showing occlusion instead" in out


def test_cascading_randomisation_reaches_the_gradient_graph_with_the_same_weights(chest_bundle, tmp_path):
    """Adebayo et al. 2018, block by block: the randomised Grad-CAM graph is Grad-CAM of the randomised model."""
    from medviewer.explain import randomised_bundle
    from medviewer.inference.session import create_session
    from medviewer.services.explain import cascade_scopes, cascading_randomisation, open_explainer

    _, folder, _ = chest_bundle
    assert cascade_scopes(2) == ["head", "cascade-1", "cascade-2", "all"]
    random = randomised_bundle(load_bundle(folder), tmp_path / "rnd", scope="cascade-1", seed=1)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    model, _ = create_session(random / "model.onnx", "cpu")
    graph, _ = create_session(random / "gradcam.onnx", "cpu")
    trained, _ = create_session(folder / "model.onnx", "cpu")
    logits = model.run(["logits"], {"image": x})[0]
    np.testing.assert_allclose(graph.run(["logits"], {"image": x, "target": np.eye(3, dtype=np.float32)[:2]})[0],
                               logits, atol=2e-3)  # float16-stored weights in the gradient graph
    assert np.abs(logits - trained.run(["logits"], {"image": x})[0]).max() > 0.1
    explainer = open_explainer(folder, provider="cpu")
    steps = cascading_randomisation(explainer, _images(3), ExplainRequest("gradcam", label="Opacity"), seed=1)
    assert [s.scope for s in steps] == ["head", "cascade-1", "cascade-2", "all"]
    assert all(len(s.spearman) == 3 for s in steps)


def test_a_map_without_structure_is_not_drawn(chest_bundle):
    from medviewer.explain.explainer import flat_map
    from medviewer.explain.render import compose

    assert flat_map(np.full((4, 4), 0.7)) == pytest.approx(0.0)
    assert flat_map(np.zeros((4, 4))) is None  # empty, not flat: its method says why
    one_hot = np.zeros((8, 8))
    one_hot[2, 3] = 1
    assert flat_map(one_hot) is None
    _, folder, _ = chest_bundle
    explainer = Explainer(ModelRunner(load_bundle(folder), "cpu", threads=1))
    grey = np.full((64, 64), 120, np.uint8)
    geometry = explainer.outputs(grey).geometry
    even = np.full(explainer.grid, 0.7)  # what a degenerate map gives: every patch alike
    e = explainer._finish(even, even, ExplainRequest("rollout"), geometry, (0.0, 1.0), 0.0)
    assert e.extra.get("flat") and not e.image_map.any() and "no structure" in e.extra["note"]
    out = compose(grey, e.image_map, title=e.title, notes=(e.extra["note"],))
    assert out.shape[1] >= 384  # a 64 px image is enlarged so the legend and the note stay whole
    assert (out[:64 * 6, :64 * 6] == 120).all()  # nothing tinted the film

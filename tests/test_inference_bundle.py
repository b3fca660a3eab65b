"""Loading and validating model bundles: one clear error per way a bundle can be wrong."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("onnx")

from medviewer.errors import MedViewerError
from medviewer.inference import (
    BundleMetadataError,
    ChecksumMismatchError,
    GraphMismatchError,
    NotABundleError,
    NotOnnxError,
    UnsupportedInputSizeError,
    load_bundle,
    sha256_file,
)
from medviewer.inference.testing import write_toy_bundle


@pytest.fixture
def bundle_dir(tmp_path):
    return write_toy_bundle(tmp_path / "toy")


def _edit_metadata(folder, **changes):
    path = folder / "metadata.json"
    meta = json.loads(path.read_text())
    for dotted, value in changes.items():
        target = meta
        keys = dotted.split("__")
        for key in keys[:-1]:
            target = target[key]
        if value is KeyError:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
    path.write_text(json.dumps(meta))


def _reseal(folder):
    """Record the current model.onnx checksum, as a (re-)export would."""
    _edit_metadata(folder, model_sha256=sha256_file(folder / "model.onnx"))


def test_valid_bundle_loads(bundle_dir):
    bundle = load_bundle(bundle_dir)
    assert bundle.labels == ["Cardiomegaly", "Emphysema", "Opacity"]
    assert bundle.task == "multilabel"
    assert bundle.sha256 == sha256_file(bundle_dir / "model.onnx")
    assert bundle.preprocess.input_size == 32
    assert bundle.attention_outputs == ["attn_0", "attn_1"]
    assert "Toy model" in bundle.card_text
    assert bundle.warnings == []


def test_path_to_model_file_means_its_folder(bundle_dir):
    assert load_bundle(bundle_dir / "model.onnx").path == bundle_dir


def test_missing_path(tmp_path):
    with pytest.raises(NotABundleError, match="no such folder"):
        load_bundle(tmp_path / "nowhere")


def test_a_file_is_not_a_bundle(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("hello")
    with pytest.raises(NotABundleError, match="not a folder"):
        load_bundle(f)


def test_empty_folder_is_not_a_bundle(tmp_path):
    with pytest.raises(NotABundleError, match="not a model bundle") as info:
        load_bundle(tmp_path)
    assert str(tmp_path) in str(info.value) and info.value.hint


def test_missing_metadata(bundle_dir):
    (bundle_dir / "metadata.json").unlink()
    with pytest.raises(BundleMetadataError, match="metadata.json is missing"):
        load_bundle(bundle_dir)


def test_missing_model(bundle_dir):
    (bundle_dir / "model.onnx").unlink()
    with pytest.raises(NotABundleError, match="model.onnx is missing"):
        load_bundle(bundle_dir)


def test_metadata_not_json(bundle_dir):
    (bundle_dir / "metadata.json").write_text("{not json")
    with pytest.raises(BundleMetadataError, match="cannot be read"):
        load_bundle(bundle_dir)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"labels": KeyError}, "missing field 'labels'"),
        ({"task": "segmentation"}, "task must be one of"),
        ({"labels": ["A", "A", "B"]}, "labels must be unique"),
        ({"preprocessing__channels": 2}, "channels must be 1 or 3"),
        ({"preprocessing__resize": 16}, "resize"),
        ({"preprocessing__std": KeyError}, "preprocessing lacks 'std'"),
        ({"architecture__depth": 5}, "attention outputs"),
        ({"model_sha256": "abc"}, "64 hex digits"),
        ({"embedding__metric": "l1"}, "metric"),
    ],
)
def test_incomplete_or_inconsistent_metadata(bundle_dir, change, message):
    _edit_metadata(bundle_dir, **change)
    with pytest.raises(BundleMetadataError, match=message) as info:
        load_bundle(bundle_dir)
    assert str(bundle_dir) in str(info.value)


def test_newer_format_version(bundle_dir):
    _edit_metadata(bundle_dir, format_version=99)
    with pytest.raises(BundleMetadataError, match="newer"):
        load_bundle(bundle_dir)


def test_input_size_not_a_multiple_of_the_patch(bundle_dir):
    _edit_metadata(bundle_dir, preprocessing__input_size=30, architecture__grid=[3, 3])
    with pytest.raises(UnsupportedInputSizeError, match="multiple of the patch"):
        load_bundle(bundle_dir)


def test_input_size_out_of_range(bundle_dir):
    _edit_metadata(bundle_dir, preprocessing__input_size=4096, preprocessing__resize=4096)
    with pytest.raises(UnsupportedInputSizeError, match="outside"):
        load_bundle(bundle_dir)


def test_one_byte_changed_in_model_fails_the_checksum(bundle_dir):
    data = bytearray((bundle_dir / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (bundle_dir / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match="changed since export") as info:
        load_bundle(bundle_dir)
    assert "re-export" in info.value.hint or "copy" in info.value.hint


def test_not_onnx_even_with_a_matching_checksum(bundle_dir):
    (bundle_dir / "model.onnx").write_bytes(b"<html>not a model</html>")
    _reseal(bundle_dir)
    with pytest.raises(NotOnnxError, match="not a readable ONNX model"):
        load_bundle(bundle_dir)


def test_graph_disagrees_with_labels(bundle_dir, tmp_path):
    other = write_toy_bundle(tmp_path / "two", labels=("A", "B"))
    shutil.copy(other / "model.onnx", bundle_dir / "model.onnx")
    _reseal(bundle_dir)
    with pytest.raises(GraphMismatchError, match="'logits' axis 1 is 2"):
        load_bundle(bundle_dir)


def test_graph_disagrees_with_input_size(bundle_dir, tmp_path):
    other = write_toy_bundle(tmp_path / "big", input_size=64, resize=72)
    shutil.copy(other / "model.onnx", bundle_dir / "model.onnx")
    _reseal(bundle_dir)
    with pytest.raises(GraphMismatchError, match="input axis 2 is 64"):
        load_bundle(bundle_dir)


def test_graph_lacks_a_named_output(bundle_dir):
    _edit_metadata(bundle_dir, outputs__embedding="features")
    with pytest.raises(GraphMismatchError, match="'features' is not in the graph"):
        load_bundle(bundle_dir)


def test_wrong_input_name(bundle_dir):
    _edit_metadata(bundle_dir, input__name="pixels")
    with pytest.raises(GraphMismatchError, match="input is named 'image'"):
        load_bundle(bundle_dir)


def test_missing_card_is_a_warning(tmp_path):
    bundle = load_bundle(write_toy_bundle(tmp_path / "nocard", card=False))
    assert bundle.card_text == ""
    assert any("card" in w for w in bundle.warnings)


def test_every_bundle_error_is_a_medviewer_error(bundle_dir):
    (bundle_dir / "metadata.json").write_text("[]")
    with pytest.raises(MedViewerError):
        load_bundle(bundle_dir)


def test_unknown_variant(bundle_dir):
    with pytest.raises(BundleMetadataError, match="no 'int8' variant"):
        load_bundle(bundle_dir).variant_path("int8")


def test_model_file_must_stay_inside_the_bundle(bundle_dir):
    _edit_metadata(bundle_dir, model_file="../elsewhere.onnx")
    with pytest.raises(BundleMetadataError, match="plain file name"):
        load_bundle(bundle_dir)

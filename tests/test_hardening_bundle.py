"""A bundle's checksum covers every file the session loads, and indexes are keyed on more
than the ONNX file: weights in external data and the preprocessing are part of the identity."""

from __future__ import annotations

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from medviewer.inference import ChecksumMismatchError, load_bundle, sha256_file
from medviewer.inference.errors import BundleMetadataError
from medviewer.inference.metadata import external_data_hashes
from medviewer.inference.testing import write_toy_bundle
from medviewer.services.retrieval import _identify


def _meta(folder):
    return json.loads((folder / "metadata.json").read_text())


def _write_meta(folder, meta):
    (folder / "metadata.json").write_text(json.dumps(meta))


def _to_external_data(folder, location="model.onnx.data", record=True):
    """Move the weights of ``model.onnx`` into ``location``, as large exports do."""
    from onnx.external_data_helper import set_external_data, write_external_data_tensors

    model = onnx.load(folder / "model.onnx")
    for tensor in model.graph.initializer:
        if tensor.data_type == onnx.TensorProto.FLOAT:  # ORT wants shape inputs inline
            set_external_data(tensor, location)
    write_external_data_tensors(model, str(folder))
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    meta = _meta(folder)
    meta["model_sha256"] = sha256_file(folder / "model.onnx")
    if record:
        meta["external_data"] = external_data_hashes(folder / "model.onnx", folder)
    _write_meta(folder, meta)
    return folder / location


def _flip_signs(path):
    weights = np.frombuffer(path.read_bytes(), np.float32).copy()
    weights[: len(weights) // 2] *= -1
    path.write_bytes(weights.tobytes())


@pytest.fixture
def bundle_dir(tmp_path):
    return write_toy_bundle(tmp_path / "toy")


def test_flipped_external_weights_fail_the_checksum(bundle_dir):
    data = _to_external_data(bundle_dir)
    assert load_bundle(bundle_dir).sha256 == sha256_file(bundle_dir / "model.onnx")
    _flip_signs(data)
    with pytest.raises(ChecksumMismatchError, match="model.onnx.data"):
        load_bundle(bundle_dir)


def test_external_data_without_a_recorded_checksum_is_refused(bundle_dir):
    _to_external_data(bundle_dir, record=False)
    with pytest.raises(ChecksumMismatchError, match="model.onnx.data.*not recorded"):
        load_bundle(bundle_dir)


def test_external_data_outside_the_bundle_is_refused(bundle_dir, tmp_path):
    _to_external_data(bundle_dir, record=False)
    (bundle_dir / "model.onnx.data").replace(tmp_path / "toy.data")
    model = onnx.load(bundle_dir / "model.onnx", load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../toy.data"  # what a hostile bundle can write by hand
    (bundle_dir / "model.onnx").write_bytes(model.SerializeToString())
    meta = _meta(bundle_dir)
    meta["model_sha256"] = sha256_file(bundle_dir / "model.onnx")
    _write_meta(bundle_dir, meta)
    with pytest.raises(BundleMetadataError, match="outside"):
        load_bundle(bundle_dir)


def test_index_identity_covers_weights_and_preprocessing(bundle_dir, tmp_path):
    base = load_bundle(bundle_dir, verify_graph=False)
    other = write_toy_bundle(tmp_path / "other")
    meta = _meta(other)
    meta["preprocessing"]["mean"] = [0.1]
    meta["model_sha256"] = base.sha256
    (other / "model.onnx").write_bytes((bundle_dir / "model.onnx").read_bytes())
    _write_meta(other, meta)
    changed = load_bundle(other, verify_graph=False)
    assert changed.sha256 == base.sha256
    # Same ONNX file, other preprocessing: another index.
    assert _identify(changed).identity != _identify(base).identity
    assert _identify(base).identity == base.fingerprint()
    # The same bundle copied elsewhere keeps its identity (and so its index).
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in bundle_dir.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    assert load_bundle(copy, verify_graph=False).fingerprint() == base.fingerprint()


def test_classify_and_index_build_run_the_checks_of_model_check(tmp_path, capsys):
    from medviewer.cli.main import main
    from test_retrieval_support import FLAT_SPECS, make_library

    folder = write_toy_bundle(tmp_path / "toy", input_size=16, resize=16)
    meta = _meta(folder)
    meta["preprocessing"]["std"] = [1e-40]  # positive, so valid metadata, but the outputs overflow
    _write_meta(folder, meta)
    library = make_library(tmp_path / "lib", FLAT_SPECS)
    library.close()
    image = tmp_path / "lib" / "images" / "a.png"
    errors = []
    for argv in (["model", "check", str(folder)], ["classify", str(folder), str(image)],
                 ["index", "build", "--library", str(tmp_path / "lib" / "lib.sqlite"),
                  "--model", str(folder)]):
        assert main(argv) == 2, argv
        errors.append(capsys.readouterr().err)
    assert all("NaN or infinite" in e for e in errors), errors

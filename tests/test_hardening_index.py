"""The index never returns wrong results silently: changed images are detected, non-finite
embeddings are refused, and ``index status`` runs the same checks as search."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from test_retrieval_support import FLAT_SPECS, CountingEmbedder, make_library

from medviewer.retrieval.errors import RetrievalError
from medviewer.services import retrieval as svc
from medviewer.services.importer import import_paths


class NaNEmbedder(CountingEmbedder):
    """A broken model: its vectors are NaN (as a bundle with a NaN normalisation gives)."""

    def embed(self, images, state=None):
        return np.full((len(images), self.dim), np.nan, np.float32)


def test_non_finite_embeddings_are_refused(tmp_path):
    library = make_library(tmp_path, FLAT_SPECS)
    with pytest.raises(RetrievalError, match="not finite"):
        svc.build_index(library, NaNEmbedder())
    assert svc.index_status(library, NaNEmbedder()).state == "missing"
    library.close()


def test_a_nan_normalisation_is_refused_by_model_check(tmp_path):
    pytest.importorskip("onnx")
    from medviewer.inference import BundleMetadataError, load_bundle
    from medviewer.inference.testing import write_toy_bundle

    folder = write_toy_bundle(tmp_path / "toy")
    meta = json.loads((folder / "metadata.json").read_text())
    meta["preprocessing"]["std"] = [float("nan")]
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(BundleMetadataError, match="std"):
        load_bundle(folder)


def test_index_status_finds_a_bit_flip_that_search_refuses(tmp_path):
    library = make_library(tmp_path, FLAT_SPECS)
    embedder = CountingEmbedder()
    report = svc.build_index(library, embedder)
    vectors = Path(report.folder) / "embeddings.npy"
    data = bytearray(vectors.read_bytes())
    data[-3] ^= 0x10
    vectors.write_bytes(bytes(data))
    with pytest.raises(RetrievalError):
        svc.open_searcher(library, embedder)
    assert svc.index_status(library, embedder).state == "corrupt"
    library.close()


def test_an_image_changed_with_the_same_size_and_mtime_is_detected(tmp_path):
    library = make_library(tmp_path, FLAT_SPECS)
    embedder = CountingEmbedder()
    svc.build_index(library, embedder)
    target = tmp_path / "images" / "c.png"
    other = tmp_path / "images" / "h.png"
    stat = target.stat()
    assert other.stat().st_size == stat.st_size  # same-size images: swap content
    target.write_bytes(other.read_bytes())
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    report = import_paths(library, [tmp_path / "images"])
    assert report.instances == 1 and report.unchanged == len(FLAT_SPECS) - 1
    status = svc.index_status(library, embedder)
    assert status.state == "stale" and status.changed == 1
    library.close()


def test_a_case_changed_in_place_is_not_embedded_under_its_old_header(tmp_path):
    library = make_library(tmp_path, FLAT_SPECS)
    target = tmp_path / "images" / "c.png"
    stat = target.stat()
    target.write_bytes((tmp_path / "images" / "h.png").read_bytes())
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    report = svc.build_index(library, CountingEmbedder())
    assert [u["path"] for u in report.unreadable] == [str(target)]
    assert "changed on disk" in report.unreadable[0]["reason"]
    library.close()

"""The index on disk: build, incremental update, and detection of missing/corrupt/foreign/stale indexes."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from medviewer.errors import TaskCancelled
from medviewer.retrieval import ann, index_store
from medviewer.retrieval.catalog import read_catalog
from medviewer.retrieval.errors import (
    IndexCorruptError,
    IndexMismatchError,
    IndexMissingError,
    IndexStaleError,
)
from medviewer.retrieval.index import index_status, open_index, update_index
from medviewer.services.importer import import_paths
from medviewer.services.retrieval import case_image
from medviewer.tasks import TaskState

from test_retrieval_support import (
    FLAT_SPECS,
    CountingEmbedder,
    RowEmbedder,
    Spec,
    add_images,
    case_id,
    make_library,
    write_image,
)


@pytest.fixture
def flat_library(tmp_path):
    library = make_library(tmp_path, FLAT_SPECS)
    yield library, tmp_path
    library.close()


def _build(library, embedder, **kw):
    folder = index_store.index_dir(library.path, embedder.identity)
    return folder, update_index(folder, read_catalog(library), embedder, case_image, **kw)


def test_build_writes_the_documented_layout_beside_the_library(flat_library):
    library, _ = flat_library
    embedder = CountingEmbedder()
    folder, report = _build(library, embedder)
    assert folder == library.path.with_name("lib.sqlite.indexes") / embedder.identity
    assert report.count == 10 and report.embedded == 10 and report.kind == "exact"
    assert {p.name for p in folder.iterdir()} == {"manifest.json", "embeddings.npy", "ids.npy", "keys.npy"}
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["model_sha256"] == embedder.identity and manifest["metric"] == "l2"
    assert (manifest["count"], manifest["dim"], manifest["kind"]) == (10, 16, "exact")
    assert manifest["library"] == str(library.path)
    assert set(manifest["files"]) == {"embeddings.npy", "ids.npy", "keys.npy"}
    ids = np.load(folder / "ids.npy")
    assert sorted(ids.tolist()) == sorted(c.id for c in library.cases())
    status = index_status(folder, read_catalog(library), embedder)
    assert status.state == "ready" and status.action == "none"
    assert not list(folder.parent.glob("*.tmp-*"))  # no leftovers of the atomic write


def test_update_embeds_only_new_and_changed_cases_and_drops_removed_ones(flat_library):
    library, root = flat_library
    embedder = CountingEmbedder()
    folder, _ = _build(library, embedder)
    assert _build(library, embedder)[1].up_to_date and embedder.embedded == 10  # nothing to do

    add_images(library, root, [Spec("k.png", 45, "P10"), Spec("l.png", 252, "P11")])
    status = index_status(folder, read_catalog(library), embedder)
    assert (status.state, status.added, status.action) == ("stale", 2, "update")
    report = _build(library, embedder)[1]
    assert (report.embedded, report.added, report.removed, report.count) == (2, 2, 0, 12)
    assert embedder.embedded == 12

    # Remove one case, change another's file (brighter), and update again.
    gone = case_id(library, "j.png")
    (root / "images" / "j.png").unlink()
    with library.transaction():
        library.remove_locations([str(root / "images" / "j.png")])
        library.prune_empty()
    path = root / "images" / "c.png"
    write_image(path, Spec("c.png", 235))  # c.png (30) becomes very bright
    os.utime(path, (time.time() + 5, time.time() + 5))
    import_paths(library, [root / "images"], labels=root / "images" / "labels.csv")
    report = _build(library, embedder)[1]
    assert (report.embedded, report.changed, report.removed, report.count) == (1, 1, 1, 11)
    assert embedder.embedded == 13
    catalog = read_catalog(library)
    index = open_index(folder, catalog, embedder)
    assert gone not in index.ids.tolist()
    # The changed case's vector is the new, bright one: its nearest neighbour is now i.png (220).
    _, near = index.nearest(index.vector_of(case_id(library, "c.png")), 2)
    assert near[1] == case_id(library, "i.png")


def test_cancelled_build_leaves_the_previous_index_untouched(flat_library):
    library, root = flat_library
    embedder = CountingEmbedder()
    folder, _ = _build(library, embedder)
    before = (folder / "manifest.json").read_text()
    add_images(library, root, [Spec("k.png", 45, "P10")])
    state = TaskState()
    state.request_cancel()
    with pytest.raises(TaskCancelled):
        _build(library, embedder, state=state)
    assert (folder / "manifest.json").read_text() == before
    assert not list(folder.parent.glob("*.tmp-*"))


def test_unreadable_case_is_reported_and_not_retried_until_its_file_changes(flat_library):
    library, root = flat_library
    (root / "images" / "d.png").write_bytes(b"not a png any more")
    embedder = CountingEmbedder()
    folder, report = _build(library, embedder)
    assert [u["path"].endswith("d.png") for u in report.unreadable] == [True]
    assert report.count == 9
    # The unreadable case is accounted for: the index is ready, and an update embeds nothing.
    assert index_status(folder, read_catalog(library), embedder).state == "ready"
    assert _build(library, embedder)[1].embedded == 0


def test_missing_index_is_reported_and_refused(flat_library):
    library, _ = flat_library
    embedder = CountingEmbedder()
    folder = index_store.index_dir(library.path, embedder.identity)
    assert index_status(folder, read_catalog(library), embedder).state == "missing"
    with pytest.raises(IndexMissingError) as info:
        open_index(folder, read_catalog(library), embedder)
    assert info.value.status.action == "rebuild"


def test_index_of_another_model_is_detected_and_never_used(flat_library):
    library, _ = flat_library
    embedder = CountingEmbedder()
    folder, _ = _build(library, embedder)
    catalog = read_catalog(library)
    # A foreign index copied into this model's folder: its manifest names another model.
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["model_sha256"] = "f" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert index_status(folder, catalog, embedder).state == "mismatch"
    with pytest.raises(IndexMismatchError, match="built with model ffffffffffff"):
        open_index(folder, catalog, embedder)
    # The same model identity but another embedding size or metric is a mismatch too.
    manifest["model_sha256"] = embedder.identity
    (folder / "manifest.json").write_text(json.dumps(manifest))
    other = RowEmbedder(dim=16, metric="cosine")
    other.identity = embedder.identity
    assert "metric is l2" in index_status(folder, catalog, other).message
    # Building repairs it from scratch, and says why.
    manifest["model_sha256"] = "f" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest))
    report = _build(library, embedder)[1]
    assert "unusable" in report.full_rebuild_reason and report.embedded == 10
    assert index_status(folder, catalog, embedder).ready


@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest", "ids", "delete"])
def test_corrupt_index_is_detected_and_rebuilt_without_touching_the_library(flat_library, damage):
    library, _ = flat_library
    embedder = CountingEmbedder()
    folder, _ = _build(library, embedder)
    counts = library.counts()
    emb = folder / "embeddings.npy"
    if damage == "truncate":
        emb.write_bytes(emb.read_bytes()[:-40])
    elif damage == "flip":  # same size, one vector changed: only the checksum can tell
        data = bytearray(emb.read_bytes())
        data[-3] ^= 0xFF
        emb.write_bytes(bytes(data))
    elif damage == "manifest":
        (folder / "manifest.json").write_text("{ not json")
    elif damage == "ids":  # a valid array with another case list
        ids = np.load(folder / "ids.npy")
        ids[0] = 99999
        np.save(folder / "ids.npy", ids)
    else:
        (folder / "keys.npy").unlink()
    catalog = read_catalog(library)
    if damage not in ("flip", "ids"):  # these need the checksum (load) to be seen
        assert index_status(folder, catalog, embedder).state == "corrupt"
    with pytest.raises(IndexCorruptError) as info:
        open_index(folder, catalog, embedder)
    assert info.value.status.state == "corrupt" and "index build" in str(info.value)
    report = _build(library, embedder)[1]
    assert report.full_rebuild_reason and report.count == 10
    assert open_index(folder, read_catalog(library), embedder).kind == "exact"
    assert library.counts() == counts


def test_stale_index_is_refused_unless_allowed_and_then_never_serves_changed_cases(flat_library):
    library, root = flat_library
    embedder = CountingEmbedder()
    folder, _ = _build(library, embedder)
    path = root / "images" / "b.png"
    write_image(path, Spec("b.png", 90))
    os.utime(path, (time.time() + 5, time.time() + 5))
    import_paths(library, [root / "images"], labels=root / "images" / "labels.csv")
    catalog = read_catalog(library)
    with pytest.raises(IndexStaleError) as info:
        open_index(folder, catalog, embedder)
    assert info.value.status.changed == 1 and info.value.status.action == "update"
    index = open_index(folder, catalog, embedder, allow_stale=True)
    changed = case_id(library, "b.png")
    assert index.vector_of(changed) is None
    _, near = index.nearest(np.full(16, 20 / 255, np.float32), 9)
    assert changed not in near.tolist() and len(near) == 9


def test_hnsw_index_measures_recall_and_appends_new_cases(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.integers(-100, 100, (6, 8))
    specs = [Spec(f"r{i:03d}.png", row=tuple(int(v) for v in np.clip(centres[i % 6] + rng.integers(-12, 13, 8) + 128,
                                                                       0, 255)), patient=f"P{i}")
             for i in range(120)]
    library = make_library(tmp_path, specs)
    embedder = RowEmbedder(dim=8)
    folder, report = _build(library, embedder, kind="hnsw", params=ann.AnnParams(hnsw_m=8, ef_construction=40))
    assert report.kind == "hnsw" and report.structure == "rebuilt"
    assert report.recall["recall"] >= ann.TARGET_RECALL and report.recall["queries"] > 0
    assert (folder / "index.faiss").is_file()
    manifest = index_store.read_manifest(folder)
    assert manifest.recall["recall"] == report.recall["recall"] and manifest.params["hnsw_m"] == 8
    add_images(library, tmp_path, [Spec("new.png", row=tuple(int(v) for v in centres[0] + 128), patient="PX")])
    report = _build(library, embedder)[1]
    assert (report.kind, report.structure, report.embedded, report.count) == ("hnsw", "appended", 1, 121)
    index = open_index(folder, read_catalog(library), embedder)
    _, near = index.nearest(index.vector_of(case_id(library, "new.png")), 1)
    assert near[0] == case_id(library, "new.png")
    library.close()


def _mixture(n, d, clusters, seed):
    """Seeded Gaussian mixture with neighbour structure (faiss contrib SyntheticDataset spirit)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d)).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    return centres[labels] + 0.35 * rng.normal(size=(n, d)).astype(np.float32)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_structures_reach_the_target_recall_on_structured_data(kind):
    import faiss

    faiss.omp_set_num_threads(1)
    x = ann.prepare_vectors(_mixture(4000, 32, 40, seed=1), "cosine")
    params = ann.AnnParams(hnsw_m=16, ef_construction=64)
    structure = ann.build_structure(x, kind, "cosine", params)
    report = ann.tune_and_measure(structure, x, kind, "cosine", params, queries=150)
    assert report.recall >= 0.95
    # The recall is real: an independent brute-force check over fresh queries agrees.
    queries = ann.prepare_vectors(_mixture(50, 32, 40, seed=1)[:50] + 0.05, "cosine")
    _, found = ann.search_structure(structure, queries, 10, kind, params)
    hits = [len(set(found[i]) & set(ann.exact_knn(x, queries[i], 10, "cosine")[1])) / 10 for i in range(50)]
    assert np.mean(hits) >= 0.9
    # With the least effort, recall is lower: the sweep really measures something.
    if kind == "hnsw":
        assert report.sweep[0]["ef_search"] == 16

"""The index build's data path: each row written once, in id order, equal to a plain build."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from medviewer.retrieval import ann, index_store
from medviewer.retrieval.catalog import Catalog, CaseInfo
from medviewer.retrieval.index import update_index


def _cases(ids):
    return [CaseInfo(int(i), f"/c/{i}.png", f"/c/{i}.png", "", 0, 1, 0.0, f"P{i}", int(i), "", "", "DX", "", ())
            for i in ids]


class _Lookup:
    """Embeds a case's "image" (its id) as a fixed seeded vector; some ids cannot be read."""

    identity, name, metric = "ab" * 32, "lookup", "cosine"

    def __init__(self, dim=12, unreadable=()):
        self.dim = dim
        self.table = np.random.default_rng(5).normal(size=(400, dim)).astype(np.float32) * 3
        self.table[17] = 0.0  # a zero vector must stay zero, not become NaN
        self.unreadable = set(unreadable)

    def load(self, case):
        if case.id in self.unreadable:
            raise OSError(f"cannot read {case.location}")
        return np.full((1, 1), case.id, np.int64)

    def embed(self, images, state=None):
        return self.table[[int(im[0, 0]) for im in images]].astype(np.float64)  # not float32: converted once


@pytest.fixture
def small_chunks(monkeypatch):
    # Chunks of 7 rows: the HNSW path flushes many times, and a flush falls inside a batch.
    monkeypatch.setattr(ann, "_ADD_CHUNK", 7)


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_build_stores_each_readable_row_prepared_and_aligned_with_its_id(tmp_path, small_chunks, kind):
    emb = _Lookup(unreadable={3, 40, 41})
    catalog = Catalog(str(tmp_path / "lib.sqlite"), _cases(range(1, 90)))
    report = update_index(tmp_path / "ix", catalog, emb, emb.load, kind=kind, batch_size=10,
                          params=ann.AnnParams(hnsw_m=8, ef_construction=32, nlist=4))
    assert report.count == 86 and {u["case"] for u in report.unreadable} == {3, 40, 41}
    manifest = index_store.read_manifest(tmp_path / "ix")
    vectors, ids, _ = index_store.read_arrays(tmp_path / "ix", manifest)
    assert ids.tolist() == [i for i in range(1, 90) if i not in {3, 40, 41}]
    expected = ann.prepare_vectors(emb.table[ids], "cosine")
    np.testing.assert_allclose(vectors, expected, rtol=1e-6, atol=1e-7)
    assert not np.isnan(vectors).any() and not vectors[ids.tolist().index(17)].any()
    if kind != "exact":
        structure = index_store.read_structure(tmp_path / "ix", manifest)
        assert structure.ntotal == len(ids)
        if kind == "hnsw":  # the graph's own storage is the same rows, in the same order
            np.testing.assert_array_equal(ann.stored_vectors(structure), vectors)


def test_update_with_removed_and_new_cases_equals_a_fresh_build(tmp_path, small_chunks):
    emb = _Lookup()
    params = ann.AnnParams(hnsw_m=8, ef_construction=32)
    before = Catalog(str(tmp_path / "lib.sqlite"), _cases(range(1, 60)))
    update_index(tmp_path / "ix", before, emb, emb.load, kind="hnsw", params=params, batch_size=8)
    after_ids = [i for i in range(1, 75) if i % 9]  # some removed, some new
    after = Catalog(str(tmp_path / "lib.sqlite"), _cases(after_ids))
    report = update_index(tmp_path / "ix", after, emb, emb.load, kind="hnsw", params=params, batch_size=8)
    assert report.structure == "rebuilt" and report.removed > 0 and report.added > 0
    fresh = update_index(tmp_path / "fresh", after, emb, emb.load, kind="hnsw", params=params, batch_size=8)
    got = index_store.read_arrays(tmp_path / "ix", index_store.read_manifest(tmp_path / "ix"))
    want = index_store.read_arrays(tmp_path / "fresh", index_store.read_manifest(tmp_path / "fresh"))
    assert sorted(got[1].tolist()) == sorted(want[1].tolist()) == after_ids
    order = np.argsort(got[1])
    np.testing.assert_allclose(got[0][order], want[0][np.argsort(want[1])], rtol=1e-6)
    assert fresh.count == report.count


def test_appending_to_an_hnsw_index_extends_its_storage_in_order(tmp_path, small_chunks):
    emb = _Lookup()
    params = ann.AnnParams(hnsw_m=8, ef_construction=32)
    update_index(tmp_path / "ix", Catalog("lib", _cases(range(1, 30))), emb, emb.load, kind="hnsw", params=params)
    report = update_index(tmp_path / "ix", Catalog("lib", _cases(range(1, 45))), emb, emb.load, params=params)
    assert (report.structure, report.embedded, report.count) == ("appended", 15, 44)
    manifest = index_store.read_manifest(tmp_path / "ix")
    vectors, ids, _ = index_store.read_arrays(tmp_path / "ix", manifest)
    assert ids.tolist() == list(range(1, 45))
    np.testing.assert_array_equal(ann.stored_vectors(index_store.read_structure(tmp_path / "ix", manifest)),
                                  vectors)


def test_manifest_records_the_size_and_sha256_of_every_file_as_written(tmp_path):
    emb = _Lookup()
    update_index(tmp_path / "ix", Catalog("lib", _cases(range(1, 40))), emb, emb.load, kind="hnsw",
                 params=ann.AnnParams(hnsw_m=8, ef_construction=32))
    manifest = index_store.read_manifest(tmp_path / "ix")
    assert set(manifest.files) == {p.name for p in (tmp_path / "ix").iterdir()} - {"manifest.json"}
    for name, entry in manifest.files.items():
        data = (tmp_path / "ix" / name).read_bytes()
        assert entry == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    # The .npy files are what np.save writes.
    vectors, ids, _ = index_store.read_arrays(tmp_path / "ix", manifest)
    assert vectors.dtype == np.float32 and ids.dtype == np.int64 and vectors.shape == (39, 12)


def test_prepare_vectors_never_changes_its_input():
    x = np.array([[3.0, 4.0], [0.0, 0.0]], np.float32)
    kept = x.copy()
    out = ann.prepare_vectors(x, "cosine")
    np.testing.assert_array_equal(x, kept)
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    assert ann.prepare_vectors(x, "l2") is x  # float32 rows for l2: no copy at all


def test_recall_truth_is_exact_without_a_second_index():
    import faiss

    rng = np.random.default_rng(2)
    x = ann.prepare_vectors(rng.normal(size=(500, 16)), "cosine")
    picks = np.array([0, 7, 99, 400])
    flat = faiss.IndexFlatIP(16)
    flat.add(x)
    _, found = flat.search(x[picks], 11)
    want = [set([int(p) for p in row if p != own][:10]) for row, own in zip(found, picks)]
    assert ann._exact_truth(x, x[picks], picks, 10, "cosine") == want

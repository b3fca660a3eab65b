"""The demo library: built once, labelled, indexed with the demo model, reused afterwards."""

from __future__ import annotations

from medviewer.services.demo import MARKER_NAME, build_demo, is_built
from medviewer.store import Library


def test_demo_builds_once_with_labels_and_index(tmp_path):
    from medviewer.services.models import default_bundle
    from medviewer.services.retrieval import index_status

    folder = tmp_path / "demo"
    library_path = build_demo(folder, cases=12, ct_series=1, seed=3)
    assert is_built(folder)
    with Library(library_path) as library:
        cases = library.cases()
        assert len(cases) == 12 + 1  # radiographs, plus the key slice of the CT series
        assert all(c.labels for c in cases if c.modality in ("DX", "CR"))
        assert any(c.mask_path for c in cases)
        bundle = default_bundle()
        if bundle is not None:
            assert index_status(library, bundle).state == "ready"
    stamp = (folder / MARKER_NAME).stat().st_mtime_ns
    assert build_demo(folder, cases=12, ct_series=1, seed=3) == library_path
    assert (folder / MARKER_NAME).stat().st_mtime_ns == stamp  # reused, not rebuilt


def test_interrupted_demo_is_rebuilt(tmp_path):
    folder = tmp_path / "demo"
    (folder / "studies" / "dicom").mkdir(parents=True)
    (folder / "studies" / "dicom" / "half-written.dcm").write_bytes(b"partial")
    library_path = build_demo(folder, cases=4, ct_series=1, seed=1)
    assert not (folder / "studies" / "dicom" / "half-written.dcm").exists()
    with Library(library_path) as library:
        assert library.counts()["cases"] == 5

"""The evaluation protocol on the shared ChestX-ray14 sample (skipped where ../shared/data is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medviewer.retrieval.catalog import read_catalog
from medviewer.retrieval.evaluate import task_pool
from medviewer.services.importer import import_paths
from medviewer.services.retrieval import evaluate_retrieval
from medviewer.store import Library

CXR14 = Path(__file__).resolve().parents[2] / "shared" / "data" / "cxr14-nih1000-64px"

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def cxr14_library(tmp_path_factory):
    if not (CXR14 / "labels.csv").is_file():
        pytest.skip(f"shared ChestX-ray14 sample not found at {CXR14} (see ../shared/data/MANIFEST.md)")
    library = Library(tmp_path_factory.mktemp("cxr14") / "cxr14.sqlite")
    import_paths(library, [CXR14], labels=CXR14 / "labels.csv")
    yield library
    library.close()


def test_task_counts_match_the_data_manifest(cxr14_library):
    # MANIFEST.md: Cardiomegaly 65, Emphysema 29, Opacity 316, No Finding 402.
    cases = read_catalog(cxr14_library).cases
    for task, positives in (("Cardiomegaly", 65), ("Emphysema", 29), ("Opacity", 316)):
        pool = task_pool(cases, task, split="all", balance=False)
        assert (pool.available_positives, pool.available_negatives) == (positives, 402)
    # The test split holds whole patients only, and about a tenth of them.
    test = task_pool(cases, "Opacity", split="test", balance=False)
    patients = {c.patient_id for c in cases}
    test_patients = {c.patient_id for c in cases if c.id in set(test.case_ids)}
    assert 0 < len(test_patients) <= 0.12 * len(patients)


def test_pixel_baseline_runs_the_protocol_on_real_images(cxr14_library):
    result = evaluate_retrieval(cxr14_library, "pixels", "Opacity", k=5, split="heldout")
    assert result.queries == 2 * result.positives and result.positives > 50
    assert 0.0 <= result.map_at_k <= 1.0 and 0.0 <= result.ndcg_at_k <= 1.0
    assert 0.0 <= result.p_value <= 1.0
    for row in result.per_query:
        assert row["case"] not in row["results"]

"""The Session without Qt: results carry their image; another image, library or model clears them.

Real parts throughout: a synthetic DICOM library imported into SQLite, the committed
demo ONNX bundle run by ONNX Runtime, a real FAISS index.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_demo import DEMO_BUNDLE, synthetic_demo_library


@pytest.fixture(scope="module")
def libraries(tmp_path_factory):
    """Two libraries with indexes for the demo model (A with a CT series, B radiographs only)."""
    from medviewer.inference import ModelRunner
    from medviewer.services.retrieval import build_index
    from medviewer.store import Library

    first = synthetic_demo_library(tmp_path_factory.mktemp("session-a"), 10, 3, size=192,
                                   ct_series=1, ct_size=48, ct_slices=5)
    second = synthetic_demo_library(tmp_path_factory.mktemp("session-b"), 6, 8, size=192,
                                    ct_series=0)
    runner = ModelRunner(DEMO_BUNDLE, "cpu")
    for path in (first, second):
        with Library(path) as library:
            build_index(library, runner)
    return first, second, runner


class Recorder:
    """Record every session event with its payload, in order."""

    def __init__(self, session) -> None:
        from medviewer.services.session import EVENTS

        self.events: list[tuple[str, dict]] = []
        for name in EVENTS:
            session.connect(name, lambda name=name, **payload: self.events.append((name, payload)))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


def radiograph_cases(session) -> list:
    """Return (case id, instance row, series id) of the session library's radiograph cases."""
    with session.library() as library:
        out = []
        for series in library.series():
            if series.modality not in ("DX", "CR"):
                continue
            for instance in library.instances(series.id):
                case_id = library.case_at(instance.id, 0)
                if case_id is not None:
                    out.append((case_id, instance, series.id))
        return out


def show(session, instance, slot: int = 0) -> None:
    """Decode an instance (as a viewport would) and put it on screen in a slot."""
    session.cache.get(instance.ref)
    session.show_plane(instance.id, 0, instance.location, instance.series_ref, slot=slot)


def classify_and_search(session):
    classified = session.classify_job()(None)
    assert session.accept(classified)
    found = session.search_job(k=3, farthest=2)(None)
    assert session.accept(found)
    return classified, found


def assert_nothing_derived(session) -> None:
    assert session.classification is None and session.search is None and session.overlay is None


def test_open_classify_search_then_another_patient_keeps_nothing_of_the_first(libraries):
    from medviewer.services.session import Session

    first, _second, runner = libraries
    session = Session()
    events = Recorder(session)
    session.open_library(first)
    session.set_model(runner)
    cases = radiograph_cases(session)
    (case_a, inst_a, _), (case_b, inst_b, _) = cases[0], cases[-1]
    show(session, inst_a)
    assert session.image.case_id == case_a
    classified, found = classify_and_search(session)
    # Results carry the image and model they belong to.
    assert classified.image == found.image == session.image
    assert classified.model_sha256 == found.model_sha256 == runner.bundle.sha256
    assert found.result.query_case == case_a and len(found.result.nearest) == 3
    assert set(classified.classification.probabilities) == set(runner.bundle.labels)
    # The prediction went into the library with its bundle's sha256.
    with session.library() as library:
        stored = {(n, d) for n, _v, s, d in library.labels(case_a) if s == "model"}
    assert stored == {(n, runner.bundle.sha256) for n in runner.bundle.labels}
    events.events.clear()
    show(session, inst_b)
    assert session.image.case_id == case_b
    assert_nothing_derived(session)
    assert events.names() == ["results_cleared", "case_shown"]
    assert events.events[-1][1]["image"].case_id == case_b


def test_a_late_result_for_an_image_that_left_the_screen_is_dropped(libraries):
    from medviewer.services.session import Session

    first, _second, runner = libraries
    session = Session()
    session.open_library(first)
    session.set_model(runner)
    cases = radiograph_cases(session)
    show(session, cases[0][1])
    classify_a = session.classify_job()
    search_a = session.search_job(k=2)
    show(session, cases[1][1])  # the user moved on while A was being computed
    events = Recorder(session)
    assert not session.accept(classify_a(None))
    assert not session.accept(search_a(None))
    assert_nothing_derived(session)
    assert events.events == []


def test_a_result_opened_beside_the_query_keeps_the_query_results(libraries):
    from medviewer.services.session import Session

    first, _second, runner = libraries
    session = Session()
    session.open_library(first)
    session.set_model(runner)
    cases = radiograph_cases(session)
    show(session, cases[0][1], slot=0)
    _classified, found = classify_and_search(session)
    hit = found.result.nearest[0]
    with session.library() as library:
        instance = library.instance_by_location(hit.location)
    show(session, instance, slot=1)  # the hit, beside the query
    session.set_active(1)
    assert session.search is found and session.classification is not None
    # Replacing the query in its own viewport drops its results, even with the hit active.
    show(session, cases[-1][1], slot=0)
    assert_nothing_derived(session)


def test_scrolling_a_stack_to_another_slice_drops_the_slice_results(libraries):
    from medviewer.services.session import Session

    first, _second, runner = libraries
    session = Session()
    session.open_library(first)
    session.set_model(runner)
    with session.library() as library:
        ct = next(s for s in library.series() if s.modality == "CT")
        slices = library.instances(ct.id)
    show(session, slices[0])
    assert session.accept(session.classify_job()(None))
    show(session, slices[1])
    assert session.classification is None
    # Most slices are not cases: they are classified but not searchable.
    assert session.search_job() is None or session.image.case_id is not None


def test_switching_library_clears_everything_and_resolves_cases_in_the_new_one(libraries):
    from medviewer.services.session import Session

    first, second, runner = libraries
    session = Session()
    session.open_library(first)
    session.set_model(runner)
    instance_a = radiograph_cases(session)[0][1]
    cases_a_location = instance_a.location
    show(session, instance_a)
    classify_and_search(session)
    searcher_before = session.open_searcher()
    events = Recorder(session)
    session.open_library(second)
    assert_nothing_derived(session)
    assert session.image is None and session.shown == {}
    assert session.cache.peek(cases_a_location) is None  # pixels of the old library are gone
    assert session.searcher is None and session.index_status is None
    assert events.names() == ["results_cleared", "case_shown", "library_opened"]
    # The new library's searcher searches the new library's cases only.
    cases_b = radiograph_cases(session)
    show(session, cases_b[0][1])
    _c, found = classify_and_search(session)
    assert session.open_searcher() is not searcher_before
    with session.library() as library:
        locations = {c.location for c in library.cases()}
    assert {h.location for h in found.result.nearest + found.result.farthest} <= locations


def test_switching_model_clears_results_and_the_searcher(libraries):
    from medviewer.inference import ModelRunner
    from medviewer.services.session import Session

    first, _second, runner = libraries
    session = Session()
    session.open_library(first)
    session.set_model(runner)
    show(session, radiograph_cases(session)[0][1])
    late = session.classify_job()
    classify_and_search(session)
    other = ModelRunner(DEMO_BUNDLE, "cpu")
    events = Recorder(session)
    session.set_model(other)
    assert_nothing_derived(session)
    assert session.searcher is None
    assert events.names() == ["results_cleared", "model_loaded"]
    assert session.image is not None  # the image stays; only what was derived from it goes
    assert session.accept(late(None))  # same bundle (same sha256): its output still applies
    session.set_model(None)
    assert session.classify_job() is None and session.classification is None


def test_no_library_is_a_domain_error_and_a_bad_file_changes_nothing(libraries, tmp_path):
    from medviewer.errors import MedViewerError
    from medviewer.services.session import Session

    first, _second, _runner = libraries
    session = Session()
    with pytest.raises(MedViewerError):
        with session.library():
            pass
    session.open_library(first)
    bad = tmp_path / "not-a-library.sqlite"
    bad.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(MedViewerError):
        session.open_library(bad)
    assert session.library_path == str(Path(first).resolve())

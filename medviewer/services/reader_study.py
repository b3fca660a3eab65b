"""Design a reader study from a library, a model bundle and its index."""

from __future__ import annotations

from medviewer.store.library import Library
from medviewer.study.applicability import refusal_message, screen_cases
from medviewer.study.design import StudyDesignError, StudySummary, create_study, select_queries
from medviewer.tasks import TaskState, ensure_state


def design_study(library: Library, model, name: str, *, queries: int = 20, seed: int = 0,
                 stratify: str = "none", case_ids: list[int] | None = None, k: int = 5,
                 domain_check=None, state: TaskState | None = None) -> StudySummary:
    """Choose queries and freeze each one's ``k`` closest and ``k`` farthest cases.

    Candidates come from the library's index for ``model`` (which must be up to
    date), excluding the query and its patient.  The study records the
    bundle's sha256 and the index's version.  ``domain_check`` (``case ->
    reason``, see :data:`medviewer.study.design.DomainCheck`) refuses a design
    with a query or candidate the model does not apply to; the bundle's
    applicability check is the one to pass.
    """
    from medviewer.retrieval.filters import SearchFilter
    from medviewer.services.retrieval import index_status, open_searcher

    state = ensure_state(state)
    status = index_status(library, model)
    if status.state != "ready":
        from medviewer.retrieval.errors import IndexNotReadyError

        raise IndexNotReadyError(status.message, path=status.folder,
                                 hint="run 'medviewer index build' first")
    searcher = open_searcher(library, model)
    manifest = status.manifest or {}
    only_patients = SearchFilter(exclude_same_patient=True)
    meta = _bundle_metadata(model)
    cases = library.cases()
    eligible, refused = screen_cases(cases, meta)
    if case_ids:
        asked = [i for i in case_ids if i in refused]
        if asked:
            raise StudyDesignError(
                "the model does not apply to these queries: " + refusal_message({i: refused[i] for i in asked}),
                hint="choose cases the model was trained for, or a model trained on them")
        chosen = select_queries(cases, queries, seed, stratify, case_ids)
    else:
        if len(eligible) < queries and refused:
            raise StudyDesignError(
                f"{queries} queries asked but the model applies to only {len(eligible)} of the library's "
                f"{len(cases)} cases; refused: " + refusal_message(refused), hint="ask for fewer queries")
        chosen = select_queries(eligible, queries, seed, stratify, None)

    def neighbours(case_id):
        state.check()
        result = searcher.search_case(case_id, k=k, farthest=k, filters=only_patients)
        return ([(h.case_id, h.distance) for h in result.nearest],
                [(h.case_id, h.distance) for h in result.farthest])

    sha = manifest.get("model_sha256") or ""
    version = f"{manifest.get('kind', '')}@{manifest.get('updated_at', '')}"
    return create_study(library, name, chosen, neighbours, seed=seed, bundle_sha256=sha,
                        index_version=version, k=k, domain_check=domain_check,
                        design={"queries": len(chosen), "stratify": stratify,
                                "explicit": bool(case_ids), "model": str(model),
                                "refused_out_of_domain": len(refused)})


def _bundle_metadata(model) -> dict | None:
    """Return the bundle's metadata for a bundle (folder, Bundle, runner), None for the pixel baseline."""
    from pathlib import Path

    from medviewer.inference import Bundle, load_bundle

    bundle = getattr(model, "bundle", model)
    if isinstance(bundle, Bundle):
        return bundle.metadata
    if isinstance(bundle, (str, Path)) and Path(bundle).is_dir():
        return load_bundle(bundle, verify_graph=False).metadata
    return None

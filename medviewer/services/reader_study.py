"""Design a reader study from a library, a model bundle and its index."""

from __future__ import annotations

from medviewer.store.library import Library
from medviewer.study.design import StudySummary, create_study, select_queries
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
    chosen = select_queries(library.cases(), queries, seed, stratify, case_ids)

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
                                "explicit": bool(case_ids), "model": str(model)})

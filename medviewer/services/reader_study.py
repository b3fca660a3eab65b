"""Design a reader study from a library, a model bundle and its index."""

from __future__ import annotations

from medviewer.store.library import CaseRow, Library
from medviewer.study.design import (DomainCheck, StudyDesignError, StudySummary, create_study,
                                    select_queries)
from medviewer.tasks import TaskState, ensure_state


def model_domain_check(model) -> DomainCheck:
    """Return ``case -> reason`` from the bundle's declared domain (its applicability check).

    ``model`` is a loaded runner, a :class:`~medviewer.inference.bundle.Bundle` or a bundle
    path.  A case whose header the check cannot read counts as outside, with the reason.
    """
    from medviewer.dicom.sources import FileRef
    from medviewer.errors import MedViewerError
    from medviewer.inference.applicability import applicability_of_path

    meta = _bundle_metadata(model)
    seen: dict[str, str] = {}

    def check(case: CaseRow) -> str:
        if meta is None:  # the raw-pixel baseline has no domain: every case applies
            return ""
        if case.location not in seen:
            try:
                verdict = applicability_of_path(meta, FileRef.from_display(case.location))
                seen[case.location] = "" if verdict.applicable else " ".join(verdict.reasons)
            except MedViewerError as exc:
                seen[case.location] = f"its header cannot be read ({exc})"
        return seen[case.location]

    return check


def design_study(library: Library, model, name: str, *, queries: int = 20, seed: int = 0,
                 stratify: str = "none", case_ids: list[int] | None = None, k: int = 5,
                 domain_check: DomainCheck | None = None,
                 state: TaskState | None = None) -> StudySummary:
    """Choose queries and freeze each one's ``k`` closest and ``k`` farthest cases.

    Candidates come from the library's index for ``model`` (which must be up to
    date), excluding the query, its patient, and every case outside the model's
    domain: ``domain_check`` (``case -> reason``, default the bundle's applicability
    check, :func:`model_domain_check`) keeps them out of the queries and the
    candidates, and :func:`~medviewer.study.design.create_study` checks the result
    again.  The study records the bundle's sha256 and the index's version.
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
    check = domain_check or model_domain_check(model)
    cases = library.cases()
    state.set_progress(0.0, "Checking that every case is in the model's domain")
    outside = {c.id for c in cases if check(c)}
    eligible = [c for c in cases if c.id not in outside]
    if not case_ids and len(eligible) < queries and outside:
        raise StudyDesignError(
            f"{queries} queries asked but the model applies to only {len(eligible)} of the "
            f"library's {len(cases)} cases", hint="ask for fewer queries, or use a model "
            "trained for the other cases")
    filters = SearchFilter(exclude_same_patient=True, exclude_case_ids=tuple(sorted(outside)))
    # Explicit queries are taken as asked (create_study refuses one outside the domain).
    chosen = select_queries(cases if case_ids else eligible, queries, seed, stratify, case_ids)

    def neighbours(case_id):
        state.check()
        result = searcher.search_case(case_id, k=k, farthest=k, filters=filters)
        return ([(h.case_id, h.distance) for h in result.nearest],
                [(h.case_id, h.distance) for h in result.farthest])

    sha = manifest.get("model_sha256") or ""
    version = f"{manifest.get('kind', '')}@{manifest.get('updated_at', '')}"
    return create_study(library, name, chosen, neighbours, seed=seed, bundle_sha256=sha,
                        index_version=version, k=k, domain_check=check,
                        design={"queries": len(chosen), "stratify": stratify,
                                "explicit": bool(case_ids), "model": str(model),
                                "outside_domain_excluded": len(outside)})


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

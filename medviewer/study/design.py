"""Design a reader study: choose queries, freeze each query's 10 candidates.

For every query the candidates are the model's ``k`` closest and ``k``
farthest cases (the query itself and its patient excluded), frozen at creation
with their distances and ranks, together with the bundle's sha256 and the
index version, so later changes to the model or index cannot change a study.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from medviewer.errors import MedViewerError
from medviewer.store.library import CaseRow, Library
from medviewer.study import store

# (case id) -> ([(case id, distance)] nearest first, [(case id, distance)] farthest first)
NeighbourFn = Callable[[int], tuple[list[tuple[int, float]], list[tuple[int, float]]]]
# (case) -> "" when the model applies to the case, else the reason it does not (e.g. "modality
# CT is outside the model's domain (DX, CR)").  The applicability check of the model's bundle
# plugs in here; without one only the library's own rules apply.
DomainCheck = Callable[[CaseRow], str]
STRATIFY = ("none", "label", "modality")


class StudyDesignError(MedViewerError):
    """A reader study cannot be designed as asked."""


@dataclass(frozen=True)
class StudySummary:
    """A created study."""

    id: int
    name: str
    uid: str
    queries: int


def label_group(case: CaseRow) -> str:
    """Return the label group of a case: its labels joined, or "No Finding"."""
    return "|".join(case.labels) if case.labels else "No Finding"


def select_queries(cases: Sequence[CaseRow], count: int, seed: int, stratify: str = "none",
                   explicit: Sequence[int] | None = None) -> list[CaseRow]:
    """Choose the query cases: an explicit list, or ``count`` seeded random, optionally stratified.

    Stratified selection takes cases round-robin from each group (label group or
    modality) in a seeded order, so small groups are represented.
    """
    by_id = {c.id: c for c in cases}
    if explicit:
        missing = [i for i in explicit if i not in by_id]
        if missing:
            raise StudyDesignError(f"cases not in the library: {missing}")
        return [by_id[i] for i in explicit]
    if stratify not in STRATIFY:
        raise StudyDesignError(f"stratify must be one of {STRATIFY}")
    if count > len(cases):
        raise StudyDesignError(f"{count} queries asked but the library has {len(cases)} cases")
    rng = np.random.default_rng(seed)
    if stratify == "none":
        order = rng.permutation(len(cases))[:count]
        return [cases[i] for i in sorted(order)]
    groups: dict[str, list[CaseRow]] = defaultdict(list)
    for case in cases:
        groups[label_group(case) if stratify == "label" else case.modality].append(case)
    queues = {g: [members[i] for i in rng.permutation(len(members))]
              for g, members in sorted(groups.items())}
    chosen: list[CaseRow] = []
    while len(chosen) < count:
        for group in sorted(queues):
            if queues[group] and len(chosen) < count:
                chosen.append(queues[group].pop())
    return chosen


def create_study(library: Library, name: str, queries: Sequence[CaseRow], neighbours: NeighbourFn,
                 *, seed: int, bundle_sha256: str, index_version: str, k: int = 5,
                 design: dict | None = None,
                 domain_check: DomainCheck | None = None) -> StudySummary:
    """Freeze a study's queries and candidates in the library; return its summary.

    Parameters
    ----------
    domain_check : callable, optional
        ``case -> reason`` ("" when the model applies); every query and candidate must pass.

    Raises
    ------
    StudyDesignError
        When a name is taken, a query lacks ``k`` distinct eligible candidates on either
        side (a candidate that is the query, another image of its patient, or both near
        and far), or a query or candidate is outside the model's domain.
    """
    if store.name_taken(library.conn, name):
        raise StudyDesignError(f"a reader study named {name!r} exists already",
                               hint="choose another name")
    all_cases = {c.id: c for c in library.cases()}
    patients = {c.id: c.patient_id for c in all_cases.values()}
    planned = []
    for query in queries:
        near, far = neighbours(query.id)
        near, far = list(near)[:k], list(far)[:k]
        ids = [c for c, _ in near + far]
        problems = []
        if len(near) < k or len(far) < k:
            problems.append(f"only {len(near)} nearest and {len(far)} farthest")
        if len(set(ids)) != len(ids):
            problems.append("a case is both near and far")
        if query.id in ids:
            problems.append("the query is its own candidate")
        same = [c for c in ids if query.patient_id and patients.get(c) == query.patient_id]
        if same:
            problems.append(f"{len(same)} candidate(s) are other images of the query's patient")
        if domain_check is not None:
            for role, case in [("query", query)] + [("candidate", all_cases[c]) for c in ids
                                                    if c in all_cases]:
                reason = domain_check(case)
                if reason:
                    problems.append(f"{role} case {case.id} is outside the model's domain: "
                                    f"{reason}")
        if problems:
            raise StudyDesignError(f"query case {query.id}: " + "; ".join(problems),
                                   hint="use a larger library or fewer filters")
        planned.append((query, near, far))
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    uid = uuid.uuid4().hex
    with library.transaction():
        study_id = store.insert_study(
            library.conn, name=name, uid=uid, created_at=now, bundle_sha256=bundle_sha256,
            index_version=index_version, seed=seed, k=k, picks_required=k,
            design=json.dumps(design or {}))
        for position, (query, near, far) in enumerate(planned):
            query_id = store.insert_query(library.conn, study_id, position, query.id,
                                          query.modality, label_group(query))
            rows = [(query_id, c, 1, r, float(d)) for r, (c, d) in enumerate(near, start=1)]
            rows += [(query_id, c, 0, r, float(d)) for r, (c, d) in enumerate(far, start=1)]
            store.insert_candidates(library.conn, rows)
    return StudySummary(int(study_id), name, uid, len(planned))


def find_study(conn, name_or_id: str | int) -> int:
    """Return a study's id from its name or id."""
    study_id = store.study_named(conn, name_or_id)
    if study_id is None:
        raise StudyDesignError(f"no reader study named {name_or_id!r}")
    return study_id

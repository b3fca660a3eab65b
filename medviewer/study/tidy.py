"""Export a study's picks in the tidy format the statistics read.

One row per (reader, query, candidate): ``study, reader, query, candidate,
model_closest, picked, rank, distance, seconds, modality, label_group``.
``picked`` is blank for a skipped query (a missing rating); queries a reader
has not finished are left out (the reader did not rate them).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from medviewer.study import store

TIDY_COLUMNS = ("study", "reader", "query", "candidate", "model_closest", "picked", "rank",
                "distance", "seconds", "modality", "label_group")


def tidy_rows(conn, study_id: int) -> list[dict]:
    """Return the tidy rows of a study."""
    name = store.study_name(conn, study_id)
    candidates: dict[int, list] = {}
    for query_id, case_id, closest, rank, distance in store.study_candidates(conn, study_id):
        candidates.setdefault(query_id, []).append((case_id, closest, rank, distance))
    queries = store.study_queries(conn, study_id)
    rows = []
    for reader, query_id, status, picked, seconds in store.finished_responses(conn, study_id):
        chosen = set(json.loads(picked))
        case, modality, group = queries[query_id]
        ids = store.candidate_cases(conn, query_id)
        picked_cases = {ids[c] for c in chosen}
        for case_id, closest, rank, distance in candidates[query_id]:
            rows.append({
                "study": name, "reader": reader, "query": case, "candidate": case_id,
                "model_closest": closest,
                "picked": "" if status == "skipped" else int(case_id in picked_cases),
                "rank": rank, "distance": f"{distance:.6g}", "seconds": f"{seconds:.1f}",
                "modality": modality, "label_group": group,
            })
    return rows


def write_tidy_csv(conn, study_id: int, path: str | Path) -> int:
    """Write the tidy CSV; return the number of rows."""
    rows = tidy_rows(conn, study_id)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=TIDY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)

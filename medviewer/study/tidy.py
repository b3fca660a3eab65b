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


SUMMARY_COLUMNS = ("reader", "answered", "skipped", "in_progress", "total_seconds",
                   "median_seconds", "mean_seconds", "min_seconds", "max_seconds")


def reader_summary(conn, study_id: int) -> list[dict]:
    """Return one row per reader: queries answered/skipped/in progress and time per query.

    Times are over the queries the reader finished (answered or skipped); the
    seconds of a query add up across visits (a reader who comes back to it).
    """
    total = store.query_count(conn, study_id)
    out = []
    for reader_id, name in store.study_readers(conn, study_id):
        rows = store.reader_times(conn, reader_id)
        counts = {s: sum(1 for r in rows if r[0] == s) for s in ("answered", "skipped",
                                                                 "in_progress")}
        seconds = sorted(float(r[1]) for r in rows if r[0] != "in_progress")
        n = len(seconds)
        median = (seconds[n // 2] if n % 2 else (seconds[n // 2 - 1] + seconds[n // 2]) / 2) \
            if n else float("nan")
        out.append({"reader": name, "queries": int(total), **counts,
                    "total_seconds": sum(seconds), "median_seconds": median,
                    "mean_seconds": sum(seconds) / n if n else float("nan"),
                    "min_seconds": seconds[0] if n else float("nan"),
                    "max_seconds": seconds[-1] if n else float("nan")})
    return out


def reader_summary_html(rows: list[dict]) -> str:
    """Return the per-reader summary as an HTML section (for the results report)."""
    from html import escape

    def cell(value: float) -> str:
        return "\u2013" if value != value else f"{value:.1f}"

    body = "".join(
        f"<tr><td>{escape(r['reader'])}</td><td>{r['answered']}</td><td>{r['skipped']}</td>"
        f"<td>{r['queries'] - r['answered'] - r['skipped']}</td><td>{cell(r['median_seconds'])}"
        f"</td><td>{cell(r['mean_seconds'])}</td><td>{cell(r['total_seconds'] / 60.0)}</td></tr>"
        for r in rows)
    return ("<h2>Readers: progress and time per query</h2><table><thead><tr><th>Reader</th>"
            "<th>Answered</th><th>Skipped</th><th>Not done</th><th>Median s/query</th>"
            "<th>Mean s/query</th><th>Total min</th></tr></thead>"
            f"<tbody>{body}</tbody></table>")


def with_reader_summary(report_html: str, rows: list[dict]) -> str:
    """Return the results report with the per-reader summary before its Definitions."""
    section = reader_summary_html(rows)
    marker = "<h2>Definitions</h2>"
    if marker in report_html:
        return report_html.replace(marker, section + marker, 1)
    return report_html.replace("</body>", section + "</body>", 1)


def write_reader_summary_csv(rows: list[dict], path: str | Path) -> int:
    """Write the per-reader summary CSV; return the number of readers."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=("reader", "queries") + SUMMARY_COLUMNS[1:],
                                extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.1f}" if isinstance(v, float) else v)
                             for k, v in row.items()})
    return len(rows)

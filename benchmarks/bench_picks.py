"""Pick-to-durable latency of the reading screen's store, against a non-durable baseline.

Each pick is one SQLite transaction in WAL mode with ``synchronous=FULL`` (on disk
when the call returns) plus an audit row; the baseline is the same write with
``synchronous=OFF`` (what durability costs).  Target (issue 6): p99 <= 25 ms.

Usage: python benchmarks/bench_picks.py [--picks 2000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def measure(library: Path, study_id: int, reader: str, picks: int, synchronous: str) -> np.ndarray:
    """Time ``picks`` toggles; return seconds per pick."""
    from medviewer.study.session import ReadingSession, open_study_db

    conn = open_study_db(library)
    conn.execute(f"PRAGMA synchronous={synchronous}")
    session = ReadingSession(conn, study_id, reader)
    times = []
    done = 0
    while done < picks:
        for view in session.queries:
            for candidate, _case in view.candidates[:5]:
                start = time.perf_counter()
                session.toggle_pick(view.query_id, candidate)
                times.append(time.perf_counter() - start)
                done += 1
            for candidate, _case in view.candidates[:5]:  # unpick again, also timed
                start = time.perf_counter()
                session.toggle_pick(view.query_id, candidate)
                times.append(time.perf_counter() - start)
                done += 1
            if done >= picks:
                break
    conn.close()
    return np.asarray(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--picks", type=int, default=2000)
    parser.add_argument("--dir", help="folder on the disk to measure (default: a temp folder)")
    args = parser.parse_args()
    from helpers_study import brute_force_neighbours, make_library

    from medviewer.store import Library
    from medviewer.study.design import create_study, select_queries

    root = Path(args.dir or tempfile.mkdtemp(prefix="mv-bench-picks-"))
    root.mkdir(parents=True, exist_ok=True)
    library = make_library(root)
    with Library(library) as lib:
        study = create_study(lib, "bench", select_queries(lib.cases(), 20, seed=1),
                             brute_force_neighbours(lib), seed=1, bundle_sha256="",
                             index_version="")
    durable = measure(library, study.id, "durable", args.picks, "FULL")
    fast = measure(library, study.id, "baseline", args.picks, "OFF")
    for name, t in (("synchronous=FULL (ours)", durable), ("synchronous=OFF (baseline)", fast)):
        print(f"{name:27}: p50 {np.percentile(t, 50) * 1000:6.2f} ms  p99 "
              f"{np.percentile(t, 99) * 1000:6.2f} ms  ({len(t)} picks)")
    ratio = np.percentile(durable, 99) / np.percentile(fast, 99)
    print(f"durability cost, p99 ratio FULL/OFF: {ratio:.1f}x   target p99 <= 25 ms: "
          f"{'met' if np.percentile(durable, 99) * 1000 <= 25 else 'NOT met'}  (disk: {root})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark the case-index build against FAISS used directly: peak memory and time.

Both sides get the same seeded vectors (a Gaussian mixture, ``--dim``-d,
generated before the clock and the memory baseline start) in batches of 64,
as the embedder delivers them, and both leave a durable index on disk:

- ``ours``: :func:`medviewer.retrieval.index.update_index` on an in-memory
  catalog: prepare (L2-normalise), store, build the structure, measure the
  recall of an approximate kind against exact search (200 queries, effort
  sweep), write ``embeddings.npy`` + ids + keys + structure + manifest with
  fsync and sha256;
- ``faiss``: the same vectors normalised with ``faiss.normalize_L2`` and
  added to ``IndexFlatIP`` (batch by batch) or ``IndexHNSWFlat`` (M 32,
  efConstruction 80, in chunks of 20,000), then ``faiss.write_index`` and
  an fsync.

Both read their batches through the same lookup "embedder" (a case's image,
its row number, in; its vector out), so the input pipeline costs both the
same and the difference is the build.

Each run is a fresh subprocess; memory is its peak resident set (VmHWM,
reset after the vectors are generated) less the resident set at that point,
so it counts what the build itself holds, FAISS's C++ memory included.
Goal: ours <= 1.2x FAISS in memory and in time.

Run: ``.venv/bin/python benchmarks/bench_index_build.py [--sizes 10000 100000] [--kinds exact hnsw]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GOAL = 1.2
BATCH = 64


def vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Return ``n`` seeded mixture vectors (float32), generated in chunks (no float64 copy of all)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(10, n // 1000), dim)).astype(np.float32)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 50_000):
        stop = min(n, start + 50_000)
        out[start:stop] = centres[rng.integers(0, len(centres), stop - start)]
        out[start:stop] += 0.5 * rng.standard_normal((stop - start, dim), dtype=np.float32)
    return out


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: reset VmHWM to the current RSS
    except OSError:
        pass


def child(side: str, kind: str, n: int, dim: int, folder: Path) -> dict:
    """Run one build in this process; return seconds and peak memory growth (MiB)."""
    import faiss

    from medviewer.retrieval.catalog import Catalog, CaseInfo
    from medviewer.retrieval.index import update_index

    faiss.omp_set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    data = vectors(n, dim)
    # Both sides read the same "embedder": a case's image (its row number) in, its vector out.
    cases = [CaseInfo(i + 1, f"/c/{i}.png", f"/c/{i}.png", "", 0, 1, 0.0, str(i), i, "", "", "DX", "", ())
             for i in range(n)]
    catalog = Catalog(str(folder / "library.sqlite"), cases)

    class Lookup:  # hands out the pre-generated vectors of the cases asked for
        identity, name, metric = "0" * 64, "lookup", "cosine"

        def __init__(self) -> None:
            self.dim = dim

        def embed(self, images, state=None):
            return data[np.array([int(im[0, 0]) for im in images])]

    embedder = Lookup()
    marker = np.zeros((1, 1), np.int64)

    def load_image(case):
        image = marker.copy()
        image[0, 0] = case.id - 1
        return image

    def batches():
        for start in range(0, n, BATCH):
            yield embedder.embed([load_image(c) for c in cases[start:start + BATCH]])
    _reset_peak()
    base = _status("VmRSS")
    started = time.perf_counter()
    if side == "ours":
        report = update_index(folder / "index", catalog, embedder, load_image, kind=kind, batch_size=BATCH)
        assert report.count == n, report
        extra = {"recall": (report.recall or {}).get("recall")}
    else:
        if kind == "exact":
            index = faiss.IndexFlatIP(dim)
            for batch in batches():
                faiss.normalize_L2(batch)
                index.add(batch)
        else:
            index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
            chunk = np.empty((20_000, dim), np.float32)
            filled = 0
            for batch in batches():
                chunk[filled:filled + len(batch)] = batch
                filled += len(batch)
                if filled > len(chunk) - BATCH or filled == n - index.ntotal:
                    faiss.normalize_L2(chunk[:filled])
                    index.add(chunk[:filled])
                    filled = 0
        faiss.write_index(index, str(folder / "faiss.index"))
        with open(folder / "faiss.index", "rb+") as handle:
            os.fsync(handle.fileno())  # durable, as ours
        extra = {}
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mb": _status("VmHWM") - base, "vectors_mb": n * dim * 4 / 2**20, **extra}


def run_child(side: str, kind: str, n: int, dim: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="mv-bench-index-") as tmp:
        out = subprocess.run([sys.executable, __file__, "--child", side, kind, str(n), str(dim), tmp],
                             check=True, capture_output=True, text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--kinds", nargs="+", default=["exact", "hnsw"], choices=["exact", "hnsw"])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (the median is kept)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        side, kind, n, dim, folder = args.child
        print(json.dumps(child(side, kind, int(n), int(dim), Path(folder))))
        return 0
    print(f"{args.dim}-d cosine vectors, batches of {BATCH}; goal: ours <= {GOAL}x FAISS in memory and time")
    print(f"{'kind':>6} {'n':>8} {'vectors':>8} {'faiss MiB':>10} {'ours MiB':>9} {'mem':>6} "
          f"{'faiss s':>8} {'ours s':>8} {'time':>6} {'met':>4}  recall@10")
    all_met = True
    for kind in args.kinds:
        for n in args.sizes:
            rows = {"ours": [], "faiss": []}
            for _ in range(args.rounds):
                for side in ("faiss", "ours"):
                    rows[side].append(run_child(side, kind, n, args.dim))
            med = {s: {k: float(np.median([r[k] for r in v])) for k in ("seconds", "peak_mb")} for s, v in rows.items()}
            mem = med["ours"]["peak_mb"] / med["faiss"]["peak_mb"]
            tim = med["ours"]["seconds"] / med["faiss"]["seconds"]
            met = mem <= GOAL and tim <= GOAL
            all_met &= met
            recall = rows["ours"][-1].get("recall")
            print(f"{kind:>6} {n:>8} {rows['ours'][0]['vectors_mb']:>7.0f}M {med['faiss']['peak_mb']:>10.1f} "
                  f"{med['ours']['peak_mb']:>9.1f} {mem:>5.2f}x {med['faiss']['seconds']:>8.2f} "
                  f"{med['ours']['seconds']:>8.2f} {tim:>5.2f}x {'yes' if met else 'NO':>4}  "
                  f"{'-' if recall is None else f'{recall:.3f}'}")
    return 0 if all_met else 2


if __name__ == "__main__":
    sys.exit(main())

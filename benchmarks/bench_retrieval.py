"""Similar-case search speed: exact vs HNSW vs IVF at 100k and 1M vectors, and end to end at 10k cases.

Run: ``python benchmarks/bench_retrieval.py [--sizes 100000 1000000] [--threads 2] [--json OUT]
[--model BUNDLE] [--library-cases 10000]``.

Part 1, the index structures (768-d, cosine, as ViT-B embeddings).  The
vectors have neighbour structure: a seeded mixture of Gaussians whose
members vary inside a shared 24-dimensional subspace (real embeddings have a
low intrinsic dimension), plus a little isotropic noise, L2-normalised.
Uniform random 768-d vectors would have no neighbours worth the name and
make every approximate index look broken.  Queries are fresh draws of the
same mixture.  For each size:

- ``exact_numpy``: what MedViewer's exact index does
  (:func:`medviewer.retrieval.ann.exact_knn`: one matrix-vector product);
- ``exact_faiss_flat``: FAISS's flat index, for comparison;
- ``hnsw``: ``IndexHNSWFlat`` (M=32, efConstruction=80), efSearch swept,
  the smallest efSearch with recall@10 >= 0.95 reported;
- ``ivf``: ``IndexIVFFlat`` (nlist = 4 sqrt(N), at most 1024), nprobe swept.

Figures: build seconds, memory (resident-set growth while building, and the
index's own size estimate), single-query latency p50/p95 (one query per
call, as a user's search), recall@10 against exact (ground truth from FAISS
flat search of all queries), and the ratios HNSW : exact.  Targets (issue 4):
exact at 100k p95 <= 30 ms; HNSW at 1M p95 <= 5 ms with recall@10 >= 0.95.

Part 2, the whole way from "search" to a result list on a 10k-case library,
CPU: a real library of PNG radiographs (the shared ChestX-ray14 sample
repeated with noise, or synthetic images when it is absent) with a real
bundle (``--model``, default ``models/demo``).  The index holds mixture
vectors under the bundle's identity (``--real-index`` embeds every case with
the model instead); the queries are embedded by the bundle for real.  Timed through
``medviewer.services.retrieval``: ``search_file`` on an outside image
(decode, display window, preprocessing, ONNX Runtime embedding, filters,
exact search, hits) and ``Searcher.search_case`` (a library case: its stored
vector).  Drawing the thumbnails is the GUI's part and is not included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cxr14-nih1000-64px"
LATENT = 24


def rss_mb() -> float:
    """Return the resident set size of this process in MiB."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Mixture:
    """A seeded mixture of Gaussians in a shared low-dimensional subspace, L2-normalised."""

    def __init__(self, dim: int, clusters: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.dim = dim
        self.centres = rng.standard_normal((clusters, dim), dtype=np.float32)
        self.centres /= np.linalg.norm(self.centres, axis=1, keepdims=True)
        basis = rng.standard_normal((LATENT, dim), dtype=np.float32)
        self.basis = basis / np.linalg.norm(basis, axis=1, keepdims=True)
        self.seed = seed

    def draw(self, n: int, stream: int, start: int = 0) -> np.ndarray:
        """Return ``n`` points of stream ``stream`` (the same arguments give the same points)."""
        rng = np.random.default_rng((self.seed, stream, start))
        k = rng.integers(0, len(self.centres), n)
        z = rng.standard_normal((n, LATENT), dtype=np.float32) * 0.12
        x = self.centres[k] + z @ self.basis
        x += rng.standard_normal((n, self.dim), dtype=np.float32) * (0.02 / np.sqrt(self.dim / 64))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return np.ascontiguousarray(x, dtype=np.float32)

    def chunks(self, n: int, chunk: int = 50_000):
        """Yield the base set in chunks."""
        for start in range(0, n, chunk):
            yield self.draw(min(chunk, n - start), 1, start)


def latencies(search, queries: np.ndarray, limit: int) -> np.ndarray:
    """Return per-query seconds of ``search(q)`` over the first ``limit`` queries (after 3 warm-ups)."""
    for i in range(min(3, len(queries))):
        search(queries[i:i + 1])
    out = []
    for i in range(min(limit, len(queries))):
        t0 = time.perf_counter()
        search(queries[i:i + 1])
        out.append(time.perf_counter() - t0)
    return np.array(out)


def summary(seconds: np.ndarray) -> dict[str, float]:
    """Return p50/p95/mean milliseconds."""
    ms = seconds * 1000.0
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3),
            "mean_ms": round(float(ms.mean()), 3), "queries": int(len(ms))}


def recall(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Return mean |found ∩ truth| / k over queries."""
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth)]))


def bench_structures(n: int, dim: int, n_queries: int, latency_queries: int, log) -> dict:
    """Build exact, HNSW and IVF over ``n`` mixture vectors; return their figures."""
    import faiss

    from medviewer.retrieval.ann import exact_knn

    mix = Mixture(dim, clusters=max(100, n // 1000), seed=0)
    queries = mix.draw(n_queries, 2)
    out: dict = {"n": n, "dim": dim, "clusters": len(mix.centres)}

    # Exact: the base matrix itself (what MedViewer keeps in embeddings.npy) and FAISS flat.
    t0, m0 = time.perf_counter(), rss_mb()
    base = np.empty((n, dim), np.float32)
    pos = 0
    for chunk in mix.chunks(n):
        base[pos:pos + len(chunk)] = chunk
        pos += len(chunk)
    gen_s = time.perf_counter() - t0
    log(f"[{n}] generated {n} x {dim} in {gen_s:.1f} s")
    flat = faiss.IndexFlatIP(dim)
    t0 = time.perf_counter()
    flat.add(base)
    flat_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, truth = flat.search(queries, 10)
    log(f"[{n}] ground truth of {n_queries} queries in {time.perf_counter() - t0:.1f} s")
    # A flat scan of 1M rows takes ~0.3 s; 100 of them give a stable p95.
    exact_queries = latency_queries if n < 500_000 else min(latency_queries, 100)
    lat = latencies(lambda q: exact_knn(base, q[0], 10, "cosine"), queries, exact_queries)
    found = np.array([exact_knn(base, q, 10, "cosine")[1] for q in queries[:100]])
    out["exact_numpy"] = {"build_s": 0.0, "memory_mb": round(base.nbytes / 2**20, 1),
                          "recall_at_10": recall(found, truth[:100]), **summary(lat)}
    log(f"[{n}] exact (numpy, medviewer): {out['exact_numpy']}")
    lat = latencies(lambda q: flat.search(q, 10), queries, exact_queries)
    out["exact_faiss_flat"] = {"build_s": round(flat_build, 2), "memory_mb": round(n * dim * 4 / 2**20, 1),
                               "recall_at_10": 1.0, **summary(lat)}
    log(f"[{n}] exact (faiss IndexFlat): {out['exact_faiss_flat']}")
    del flat

    # HNSW.
    m_before = rss_mb()
    hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 80
    t0 = time.perf_counter()
    for start in range(0, n, 50_000):
        hnsw.add(base[start:start + 50_000])
        log(f"[{n}] hnsw added {min(n, start + 50_000)} ({time.perf_counter() - t0:.0f} s)")
    hnsw_build = time.perf_counter() - t0
    hnsw_mem = rss_mb() - m_before
    sweep = []
    for ef in (16, 32, 64, 128, 256):
        hnsw.hnsw.efSearch = ef
        _, found = hnsw.search(queries, 10)
        lat = latencies(lambda q: hnsw.search(q, 10), queries, latency_queries)
        sweep.append({"ef_search": ef, "recall_at_10": round(recall(found, truth), 4), **summary(lat)})
        log(f"[{n}] hnsw efSearch {ef}: {sweep[-1]}")
    chosen = next((s for s in sweep if s["recall_at_10"] >= 0.95), sweep[-1])
    links = n * 32 * 2 * 4  # level-0 links dominate: 2M int32 per vector
    out["hnsw"] = {"build_s": round(hnsw_build, 1), "memory_mb": round((n * dim * 4 + links) / 2**20, 1),
                   "rss_growth_mb": round(hnsw_mem, 1), "m": 32, "ef_construction": 80, "sweep": sweep,
                   **{k: v for k, v in chosen.items()}}
    del hnsw

    # IVF.
    nlist = int(min(1024, 4 * np.sqrt(n)))
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    train = base[np.random.default_rng(1).choice(n, min(n, 64 * nlist), replace=False)]
    t0 = time.perf_counter()
    ivf.train(train)
    ivf.add(base)
    ivf_build = time.perf_counter() - t0
    sweep = []
    for nprobe in (1, 4, 8, 16, 32, 64):
        ivf.nprobe = nprobe
        _, found = ivf.search(queries, 10)
        lat = latencies(lambda q: ivf.search(q, 10), queries, latency_queries)
        sweep.append({"nprobe": nprobe, "recall_at_10": round(recall(found, truth), 4), **summary(lat)})
        log(f"[{n}] ivf nprobe {nprobe}: {sweep[-1]}")
    chosen = next((s for s in sweep if s["recall_at_10"] >= 0.95), sweep[-1])
    out["ivf"] = {"build_s": round(ivf_build, 1), "nlist": nlist,
                  "memory_mb": round((n * dim * 4 + n * 8 + nlist * dim * 4) / 2**20, 1), "sweep": sweep,
                  **{k: v for k, v in chosen.items()}}
    del ivf, base
    exact = out["exact_numpy"]
    out["ratios"] = {"hnsw_vs_exact_p95_speedup": round(exact["p95_ms"] / out["hnsw"]["p95_ms"], 1),
                     "ivf_vs_exact_p95_speedup": round(exact["p95_ms"] / out["ivf"]["p95_ms"], 1),
                     "faiss_flat_vs_numpy_p95": round(out["exact_faiss_flat"]["p95_ms"] / exact["p95_ms"], 2)}
    out["generate_s"] = round(gen_s, 1)
    out["rss_mb_at_start"] = round(m0, 1)
    return out


def make_library_images(folder: Path, count: int, seed: int = 0) -> Path:
    """Write ``count`` PNG radiographs (shared sample repeated with noise, or synthetic); return a labels CSV."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    sources, labels = [], []
    if (SHARED / "labels.csv").is_file():
        import csv

        with open(SHARED / "labels.csv", newline="") as handle:
            for row in csv.DictReader(handle):
                sources.append(np.asarray(Image.open(SHARED / row["path"]).convert("L"), np.float32))
                labels.append(row["finding_labels"])
    else:
        for i in range(200):
            yy, xx = np.mgrid[:64, :64]
            sources.append((100 + 80 * np.sin(xx / (3 + i % 7)) * np.cos(yy / (4 + i % 5))).astype(np.float32))
            labels.append("No Finding" if i % 2 else "Cardiomegaly")
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["path,labels,patient_id"]
    for i in range(count):
        j = i % len(sources)
        img = np.clip(sources[j] + rng.normal(0, 6, sources[j].shape), 0, 255).astype(np.uint8)
        name = f"img{i:06d}.png"
        Image.fromarray(img).save(folder / name)
        rows.append(f"{name},{labels[j]},P{i // 3:06d}")
    table = folder / "labels.csv"
    table.write_text("\n".join(rows) + "\n")
    return table


class SimulatedIndexEmbedder:
    """Stands in for a bundle while indexing: the bundle's identity and size, mixture vectors.

    The index it builds is accepted by a searcher of the real bundle (same
    sha256, metric and dimension), which then embeds the queries for real.
    Used so that a 10k-case index of a 224-px ViT does not take CPU-hours
    to build in a benchmark whose subject is the search.
    """

    def __init__(self, bundle) -> None:
        self.identity = bundle.sha256
        self.name = bundle.name + " (simulated index vectors)"
        self.metric = str(bundle.metadata.get("embedding", {}).get("metric", "cosine"))
        self.dim = int(bundle.embedding_dim)
        self._mix = Mixture(self.dim, clusters=100, seed=5)
        self._drawn = 0

    def embed(self, images, state=None):
        """Return the next mixture vectors, one per image."""
        out = self._mix.draw(len(images), 3, self._drawn)
        self._drawn += len(images)
        return out


def bench_end_to_end(model: str, cases: int, queries: int, work: Path, log, simulate: bool = True) -> dict:
    """Index a real ``cases``-case library with ``model``; time searches through the service layer."""
    from medviewer.inference import ModelRunner, load_bundle
    from medviewer.retrieval import SearchFilter
    from medviewer.services.importer import import_paths
    from medviewer.services.retrieval import build_index, open_embedder, open_searcher, search_file
    from medviewer.store import Library

    images = work / "images"
    t0 = time.perf_counter()
    table = make_library_images(images, cases)
    log(f"[e2e] wrote {cases} images in {time.perf_counter() - t0:.1f} s")
    library = Library(work / "library.sqlite")
    t0 = time.perf_counter()
    import_paths(library, [images], labels=table)
    import_s = time.perf_counter() - t0
    bundle = load_bundle(model)
    runner = ModelRunner(bundle, "cpu")
    embedder = open_embedder(runner)
    t0 = time.perf_counter()
    report = build_index(library, SimulatedIndexEmbedder(bundle) if simulate else embedder)
    index_s = time.perf_counter() - t0
    log(f"[e2e] import {import_s:.1f} s, index {index_s:.1f} s ({report.count} cases, {report.kind})")
    searcher = open_searcher(library, embedder)
    outside = work / "outside"
    make_library_images(outside, queries, seed=99)
    paths = sorted(outside.glob("*.png"))
    flt = SearchFilter()
    path_rows = np.array([str(p) for p in paths], dtype=object)[:, None]
    file_lat = latencies(lambda q: search_file(searcher, q[0, 0], k=5, filters=flt), path_rows, queries)
    ids = searcher.catalog.ids()
    rng = np.random.default_rng(0)
    picks = rng.choice(ids, queries, replace=False)
    case_lat = latencies(lambda q: searcher.search_case(int(q[0, 0]), k=5, farthest=5), picks[:, None], queries)
    label_lat = latencies(lambda q: searcher.search_case(int(q[0, 0]), k=5, filters=SearchFilter(labels=("Cardiomegaly",))),
                          picks[:, None], queries)
    embed_lat = latencies(lambda q: searcher.embed_image(np.zeros((64, 64), np.uint8)), picks[:, None], queries)
    library.close()
    return {"cases": report.count, "model": bundle.name, "embedding_dim": bundle.embedding_dim,
            "index_vectors": "simulated (mixture)" if simulate else "embedded by the model",
            "input_size": bundle.preprocess.input_size, "provider": runner.provider,
            "import_s": round(import_s, 1), "index_build_s": round(index_s, 1),
            "search_file_outside_image": summary(file_lat),
            "search_case_k5_farthest5": summary(case_lat),
            "search_case_label_filter": summary(label_lat),
            "embed_one_image": summary(embed_lat)}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print (and optionally save) the figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--queries", type=int, default=500, help="queries for recall (default 500)")
    p.add_argument("--latency-queries", type=int, default=300, help="timed single queries (default 300)")
    p.add_argument("--threads", type=int, default=2, help="FAISS OpenMP and BLAS threads (default 2)")
    p.add_argument("--model", default=str(Path(__file__).resolve().parents[1] / "models" / "demo"),
                   help="bundle for the end-to-end part (default models/demo)")
    p.add_argument("--library-cases", type=int, default=10_000)
    p.add_argument("--e2e-queries", type=int, default=200)
    p.add_argument("--real-index", action="store_true",
                   help="embed all library cases with the model (default: simulated index vectors)")
    p.add_argument("--skip-structures", action="store_true")
    p.add_argument("--skip-e2e", action="store_true")
    p.add_argument("--json", help="write the figures to this file")
    args = p.parse_args(argv)

    import faiss

    faiss.omp_set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    except ImportError:
        pass

    def log(line: str) -> None:
        print(line, flush=True)

    results: dict = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                 "threads": args.threads, "faiss": faiss.__version__,
                                 "load_average_at_start": list(os.getloadavg())},
                     "structures": [], "end_to_end": None}
    if not args.skip_structures:
        for n in args.sizes:
            results["structures"].append(bench_structures(n, args.dim, args.queries, args.latency_queries, log))
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=2))
    if not args.skip_e2e:
        if Path(args.model, "metadata.json").is_file():
            work = Path(tempfile.mkdtemp(prefix="mv-bench-retrieval-"))
            try:
                results["end_to_end"] = bench_end_to_end(args.model, args.library_cases, args.e2e_queries, work, log,
                                                         simulate=not args.real_index)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"end-to-end part skipped: no bundle at {args.model} (give --model)")
    results["machine"]["load_average_at_end"] = list(os.getloadavg())

    print("\n| N | structure | build s | memory MiB | p50 ms | p95 ms | recall@10 | setting |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results["structures"]:
        for key, setting in (("exact_numpy", ""), ("exact_faiss_flat", ""), ("hnsw", "ef_search"), ("ivf", "nprobe")):
            s = r[key]
            print(f"| {r['n']:,} | {key} | {s['build_s']} | {s['memory_mb']} | {s['p50_ms']} | {s['p95_ms']} | "
                  f"{s['recall_at_10']:.3f} | {setting + '=' + str(s[setting]) if setting else ''} |")
        print(f"| {r['n']:,} | ratios | {r['ratios']} |")
    if results["end_to_end"]:
        e = results["end_to_end"]
        print(f"\nEnd to end, {e['cases']} cases, {e['model']} ({e['input_size']} px, {e['embedding_dim']}-d, "
              f"{e['provider']}; index vectors {e['index_vectors']}):")
        for key in ("search_file_outside_image", "search_case_k5_farthest5", "search_case_label_filter", "embed_one_image"):
            print(f"  {key}: p50 {e[key]['p50_ms']} ms, p95 {e[key]['p95_ms']} ms")
    targets = []
    for r in results["structures"]:
        if r["n"] == 100_000:
            targets.append(f"exact@100k p95 {r['exact_numpy']['p95_ms']} ms (target <= 30)")
        if r["n"] == 1_000_000:
            targets.append(f"HNSW@1M p95 {r['hnsw']['p95_ms']} ms, recall@10 {r['hnsw']['recall_at_10']} "
                           "(target <= 5 ms, >= 0.95)")
    print("\n" + "\n".join(targets))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

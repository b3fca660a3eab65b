"""Report text search and phrase-to-image search speed at 100k, against the libraries used directly.

Run: ``python benchmarks/bench_text_search.py [--reports 100000] [--model BUNDLE] [--json OUT]``.

Part 1, text search over ``--reports`` reports (issue 18 target: p95 <= 50 ms).
The reports are sentences re-sampled from 2,000 reports the synthetic
generator wrote for real phantoms (so words, negations and lengths are those
of the generator), attached to as many cases of a real library file through
:class:`medviewer.reports.ReportStore` (words split by negation, FTS5 table).
Timed: :func:`medviewer.reports.search_reports` (phrase parsing with the
negation rules, BM25 by bm25s over the negation-split tokens with all-words
matches first, a study's report to its cases, the snippet of the best
sentence), k = 10, one query per call, over a fixed list of phrases, after the
index is built (its build time and reload time are printed apart).  Peers:
SQLite FTS5 used directly (a plain ``fts5(text)`` table of the same reports,
``MATCH ? ORDER BY rank LIMIT 10``: no negation, no cases, no snippet), and
bm25s used directly (``retrieve`` of the phrase's words, k = 10).

Part 3 (``--negation-films N``): the BM25 negation check on N fresh generated
films (seed 77), per phrase: positive phrase above "no <phrase>" for films with
the finding, the reverse for films without, with Wilson 95% intervals.

Part 2, phrase-to-image over a ``--reports``-case index (target: p95 <= 60 ms
including the text encoder).  Vectors: the joint-space dimension of the
image-text bundle (``--model``; without one, a random text tower with the same
shapes is exported to a temporary bundle), a seeded Gaussian mixture,
L2-normalised.  Timed: the bundle's text encoder through ONNX Runtime
(:class:`medviewer.reports.learned.TextEncoder`) plus MedViewer's exact index
search (:func:`medviewer.retrieval.ann.exact_knn`).  Peer: FAISS ``IndexFlatIP``
searching an already-encoded phrase.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import cpu_name  # noqa: E402

PHRASES = ["cardiomegaly", "no effusion", "right lower zone consolidation", "hyperinflated lungs",
           "enlarged heart", "emphysema", "pneumothorax", "mild cardiomegaly", "patchy consolidation",
           "normal chest radiograph", "no focal consolidation", "large opacity in the left lower zone"]


def summary(seconds: np.ndarray) -> dict[str, float]:
    """Return p50/p95/max in milliseconds."""
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3),
            "max_ms": round(float(ms.max()), 3)}


def timed(fn, queries: list[str], repeats: int) -> np.ndarray:
    """Time ``fn(q)`` once per query per repeat (after one warm-up pass)."""
    for q in queries:
        fn(q)
    out = []
    for _ in range(repeats):
        for q in queries:
            t0 = time.perf_counter()
            fn(q)
            out.append(time.perf_counter() - t0)
    return np.array(out)


def sample_reports(n: int, seed: int) -> list[str]:
    """Return ``n`` reports re-sampled sentence-wise from 2,000 generated ones."""
    from medviewer.reports.sections import split_sections
    from medviewer.reports.negation import split_sentences
    from medviewer.synthetic import render_chest, sample_anatomy, sample_findings
    from medviewer.synthetic.reports import write_report

    rng = np.random.default_rng(seed)
    findings, impressions = [], []
    for i in range(2000):
        r = np.random.default_rng([seed, i])
        image = render_chest(sample_anatomy(r, sample_findings(r)), 64, r)
        sections = split_sections(write_report(image, r))
        findings.append(split_sentences(sections.get("findings", "")))
        impressions.append(sections.get("impression", ""))
    out = []
    for _ in range(n):
        picks = rng.integers(0, len(findings), 3)
        sents = [s for p in picks for s in findings[p][1:] if rng.random() < 0.45] or findings[picks[0]]
        out.append(f"INDICATION: Cough.\nFINDINGS: {' '.join(sents)}\nIMPRESSION: {impressions[picks[0]]}")
    return out


def build_library(path: Path, reports: list[str], log) -> None:
    """Write a library with one case per report (fixture rows written in bulk), then the reports."""
    from medviewer.reports import ReportStore
    from medviewer.store import Library

    with Library(path) as library:
        # Bulk fixture rows: 100k imports through the DICOM importer would take the
        # benchmark an hour and measure nothing about search.
        n = len(reports)
        with library.transaction() as conn:
            conn.execute("INSERT INTO patients (id, patient_key) VALUES (1, 'bench')")
            conn.executemany("INSERT INTO studies (id, patient_ref, study_uid) VALUES (?, 1, ?)",
                             ((i, f"2.25.{i}") for i in range(1, n + 1)))
            conn.executemany("INSERT INTO series (id, study_ref, series_uid) VALUES (?, ?, ?)",
                             ((i, i, f"2.25.9{i}") for i in range(1, n + 1)))
            conn.executemany(
                "INSERT INTO instances (id, series_ref, location, path, kind, size, mtime, sop_uid, rows, "
                "columns, imported_at) VALUES (?, ?, ?, ?, 'dicom', 1, 0, ?, 64, 64, '')",
                ((i, i, f"/bench/{i}.dcm", f"/bench/{i}.dcm", f"2.25.8{i}") for i in range(1, n + 1)))
            conn.executemany("INSERT INTO cases (id, instance_ref) VALUES (?, ?)",
                             ((i, i) for i in range(1, n + 1)))
        t0 = time.perf_counter()
        ReportStore(library).attach_many(("study", i + 1, text, "synthetic", "") for i, text in enumerate(reports))
        log(f"attached {n} reports in {time.perf_counter() - t0:.1f} s")


def bench_text(n: int, repeats: int, log) -> dict:
    """Part 1: ours vs FTS5 directly."""
    from medviewer.reports import ReportStore, search_reports
    from medviewer.store import Library

    reports = sample_reports(n, seed=18)
    with tempfile.TemporaryDirectory() as tmp:
        lib_path = Path(tmp) / "lib.sqlite"
        build_library(lib_path, reports, log)
        with Library(lib_path) as library:
            from medviewer.reports import ranker as ranker_module

            store = ReportStore(library)
            t0 = time.perf_counter()
            search_reports(store, "cardiomegaly", k=10)  # builds and saves the BM25 index
            build_s = time.perf_counter() - t0
            ranker_module._BUILT.clear()
            t0 = time.perf_counter()
            search_reports(store, "cardiomegaly", k=10)  # loads the saved index
            load_s = time.perf_counter() - t0
            ours = timed(lambda q: search_reports(store, q, k=10), PHRASES, repeats)
        import bm25s

        from medviewer.reports.ranker import normalise

        plain = bm25s.BM25(k1=1.2, b=0.75)
        plain.index([[normalise(w) for w in r.split()] for r in reports], show_progress=False)

        def bm25s_direct(q: str):
            words = [normalise(w) for w in q.split() if normalise(w) in plain.vocab_dict]
            return plain.retrieve([words], k=10, show_progress=False) if words else None

        direct = timed(bm25s_direct, PHRASES, repeats)
        peer_conn = sqlite3.connect(Path(tmp) / "plain.sqlite")
        peer_conn.execute("CREATE VIRTUAL TABLE t USING fts5(text, tokenize = 'porter unicode61')")
        with peer_conn:
            peer_conn.executemany("INSERT INTO t (rowid, text) VALUES (?, ?)", enumerate(reports, start=1))

        def peer(q: str):
            words = " AND ".join(f'"{w}"' for w in q.split())
            return peer_conn.execute("SELECT rowid FROM t WHERE t MATCH ? ORDER BY rank LIMIT 10",
                                     (words,)).fetchall()

        base = timed(peer, PHRASES, repeats)
        peer_conn.close()
    res = {"reports": n, "queries": len(ours), "ours": summary(ours), "fts5_direct": summary(base),
           "bm25s_direct": summary(direct), "index_build_s": round(build_s, 2),
           "index_load_s": round(load_s, 3)}
    res["ratio_p95"] = round(res["ours"]["p95_ms"] / max(res["fts5_direct"]["p95_ms"], 1e-9), 2)
    res["target_p95_ms"] = 50
    return res


def _random_bundle(folder: Path) -> Path:
    """Export an untrained image-text model (real shapes) when no bundle is given."""
    from models.prior import PriorConfig, PriorModel, train_tokenizer
    from models.prior_export import export_prior_bundle

    import torch

    cfg = PriorConfig()
    tok = train_tokenizer(sample_reports(300, 1), cfg.vocab_size, cfg.max_tokens)
    cfg.vocab_size = tok.get_vocab_size()
    model = PriorModel(cfg)
    from medviewer.inference.preprocess import PreprocessConfig

    pre = PreprocessConfig(input_size=cfg.img_size, resize=cfg.img_size, channels=3)
    torch.save({"model": model.state_dict(), "cfg": cfg.to_dict(), "epoch": 0,
                "preprocess": pre.to_metadata()}, folder / "best.pt")
    tok.save(str(folder / "tokenizer.json"))
    export_prior_bundle(folder / "best.pt", folder / "tokenizer.json", folder / "bundle",
                        source="untrained (benchmark shapes)", log=lambda *_: None)
    return folder / "bundle"


def bench_phrase_to_image(n: int, repeats: int, model: str | None, log) -> dict:
    """Part 2: text encoder + MedViewer's exact search vs FAISS flat on an encoded phrase."""
    import faiss

    from medviewer.reports.learned import load_text_encoder
    from medviewer.retrieval.ann import exact_knn

    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(model) if model else _random_bundle(Path(tmp))
        encoder = load_text_encoder(bundle)
        dim = encoder.dim
        rng = np.random.default_rng(0)
        centres = rng.standard_normal((64, dim)).astype(np.float32)
        vectors = centres[rng.integers(0, 64, n)] + 0.3 * rng.standard_normal((n, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ours = timed(lambda q: exact_knn(vectors, encoder.encode([q])[0], 10, "cosine"), PHRASES, repeats)
        encode_only = timed(lambda q: encoder.encode([q]), PHRASES, repeats)
        flat = faiss.IndexFlatIP(dim)
        flat.add(vectors)
        encoded = {q: encoder.encode([q]) for q in PHRASES}
        peer = timed(lambda q: flat.search(encoded[q], 10), PHRASES, repeats)
    res = {"cases": n, "dim": dim, "bundle": str(model or "untrained, same shapes"),
           "ours_encoder_plus_search": summary(ours), "text_encoder_alone": summary(encode_only),
           "faiss_flat_on_encoded_phrase": summary(peer)}
    res["ratio_p95"] = round(res["ours_encoder_plus_search"]["p95_ms"]
                             / max(res["faiss_flat_on_encoded_phrase"]["p95_ms"], 1e-9), 2)
    res["target_p95_ms"] = 60
    return res


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Return the Wilson 95% interval of k successes in n."""
    p, d = k / n, 1 + z * z / n
    c, h = (p + z * z / (2 * n)) / d, z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return round(float(c - h), 3), round(float(c + h), 3)


def negation_check(films: int, seed: int, log) -> dict:
    """Return, per phrase, how often BM25 ranks a film's positive phrase above "no <phrase>".

    Fresh generated films (not a test seed): for films with the finding, the positive
    phrase must score above the negated one; for films without it, the reverse (a film
    whose report does not mention the finding scores 0 for both: a tie, counted as a
    failure).  The synonym list covers the generator's wording, so this measures the
    negation and synonym mechanics, not coverage of real reports.
    """
    from medviewer.reports import ReportStore, search_reports
    from medviewer.reports.importers import import_reports
    from medviewer.services.importer import import_paths
    from medviewer.store import Library
    from medviewer.synthetic import generate_dataset

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest = generate_dataset(root / "d", films, seed, size=64, ct_series=0, png=False)
        truth = {r.path: set(r.labels) for r in manifest.radiographs}
        with Library(root / "lib.sqlite") as library:
            import_paths(library, [root / "d" / "dicom"])
            store = ReportStore(library)
            import_reports(store, [manifest.reports_csv])
            cases = {c.id: truth[c.location.split("/d/", 1)[1]] for c in library.cases()}
            for phrase, finding in (("cardiomegaly", "Cardiomegaly"),
                                    ("enlarged heart", "Cardiomegaly"), ("emphysema", "Emphysema"),
                                    ("hyperinflated lungs", "Emphysema"), ("opacity", "Opacity"),
                                    ("consolidation", "Opacity")):
                pos = {h.case_id: h.score for h in search_reports(store, phrase, k=10 * films)}
                neg = {h.case_id: h.score
                       for h in search_reports(store, "no " + phrase, k=10 * films)}
                with_f = [c for c, labels in cases.items() if finding in labels]
                without = [c for c, labels in cases.items() if finding not in labels]
                ok = sum(pos.get(c, 0) > neg.get(c, 0) for c in with_f)
                rev = sum(neg.get(c, 0) > pos.get(c, 0) for c in without)
                top5 = search_reports(store, phrase, k=5)
                out[phrase] = {"with_finding": len(with_f),
                               "positive_above_negated": round(ok / len(with_f), 3),
                               "ci95": wilson(ok, len(with_f)), "without_finding": len(without),
                               "negated_above_positive": round(rev / len(without), 3),
                               "ci95_without": wilson(rev, len(without)),
                               "p@5": sum(finding in cases[h.case_id] for h in top5) / 5,
                               "random_p@5": round(len(with_f) / len(cases), 3)}
                log(f"negation check {phrase!r}: {out[phrase]}")
    return out


def main(argv: list[str] | None = None) -> int:
    """Run both parts and print a table (and JSON with --json)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reports", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--model", help="an image-text bundle (default: untrained, same shapes)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="write the results here")
    p.add_argument("--negation-films", type=int, default=0,
                   help="also run the BM25 negation check on this many fresh generated films")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import faiss

    faiss.omp_set_num_threads(args.threads)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    results = {"machine": {"cpu": cpu_name(), "python": platform.python_version(),
                           "sqlite": sqlite3.sqlite_version, "threads": args.threads},
               "text_search": bench_text(args.reports, args.repeats, log),
               "phrase_to_image": bench_phrase_to_image(args.reports, args.repeats, args.model, log)}
    t, q = results["text_search"], results["phrase_to_image"]
    print(f"text search, {t['reports']} reports: ours p50 {t['ours']['p50_ms']} ms, p95 {t['ours']['p95_ms']} ms "
          f"(target <= 50); FTS5 direct p95 {t['fts5_direct']['p95_ms']} ms (ratio {t['ratio_p95']}); "
          f"bm25s direct p95 {t['bm25s_direct']['p95_ms']} ms; index build {t['index_build_s']} s, "
          f"reload {t['index_load_s']} s")
    print(f"phrase-to-image, {q['cases']} cases: ours (encoder + search) p95 "
          f"{q['ours_encoder_plus_search']['p95_ms']} ms (target <= 60; encoder alone p95 "
          f"{q['text_encoder_alone']['p95_ms']} ms); FAISS flat on an encoded phrase p95 "
          f"{q['faiss_flat_on_encoded_phrase']['p95_ms']} ms; ratio {q['ratio_p95']}")
    if args.negation_films:
        results["negation_check"] = negation_check(args.negation_films, 77, log)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

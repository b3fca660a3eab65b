"""Train, evaluate and export the PRIOR-style image-text model (see :mod:`models.prior`).

Data: (image, report) pairs from a synthetic dataset folder (``reports.csv`` +
``labels.csv``, as :func:`medviewer.synthetic.generate_dataset` writes), or a
table ``path,report[,labels,patient_id]``, or label-derived sentences for a
labelled image table (ChestX-ray14's ``Finding Labels``: the weak real test).
Split by patient (60/20/20); the epoch is chosen on validation (mean average
precision of the finding phrases); the test set is scored once, beside the
BM25 baseline, random, an image-only model and a pixel baseline.

Usage (2 CPU cores: keep it small, run under ``nice``)::

    nice python -m models.prior_train --generate 2000 --out runs/prior --epochs 12
    nice python -m models.prior_train --labels-table ../shared/data/cxr14-nih1000-64px/labels.csv \
        --out runs/prior-nih --epochs 12
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medviewer.inference.preprocess import PreprocessConfig, finish_from_resized, resized_unit
from medviewer.reports.negation import split_sentences
from medviewer.reports.sections import searchable_text, split_sections
from models.dataset import FlipRotate, dataset_mean_std
from models.imageio import load_image
from models.prior import PriorConfig, PriorModel, encode, train_tokenizer

FINDINGS = ("Cardiomegaly", "Emphysema", "Opacity")
# Phrases a user would type for each finding (several wordings; truth = the label).
PHRASES = {
    "Cardiomegaly": ("cardiomegaly", "enlarged heart", "enlarged cardiac silhouette"),
    "Emphysema": ("emphysema", "hyperinflated lungs"),
    "Opacity": ("consolidation", "airspace opacity", "patchy consolidation"),
}
NEGATED = {"Cardiomegaly": "no cardiomegaly", "Emphysema": "no emphysema", "Opacity": "no consolidation"}
# ChestX-ray14 findings counted as "Opacity" in the retrieval paper this project follows.
NIH_OPACITY = {"Atelectasis", "Effusion", "Infiltration", "Pneumonia", "Consolidation", "Edema",
               "Fibrosis", "Pleural_Thickening"}


@dataclass
class Pair:
    """One image and its report."""

    path: str
    patient_id: str
    labels: tuple[str, ...]
    report: str


# -- data ----------------------------------------------------------------------------------------
def read_synthetic(folder: str | Path) -> list[Pair]:
    """Read the pairs of a synthetic dataset folder (``reports.csv`` joined to ``labels.csv``)."""
    folder = Path(folder)
    with open(folder / "labels.csv", newline="", encoding="utf-8") as fh:
        labels = {r["path"]: r for r in csv.DictReader(fh)}
    with open(folder / "reports.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for row in rows:
        lab = labels[row["path"]]
        names = tuple(n for n in lab["labels"].split("|") if n and n != "No Finding")
        out.append(Pair(str(folder / row["path"]), lab["patient_id"], names, row["report"]))
    return out


def templated_report(labels: tuple[str, ...], rng: np.random.Generator) -> str:
    """Turn ChestX-ray14 labels into sentences (the weak real test's "reports")."""
    sentences = []
    findings = {"Opacity" if n in NIH_OPACITY else n for n in labels} & set(FINDINGS)
    templates = {
        "Cardiomegaly": ("Cardiomegaly.", "The heart is enlarged."),
        "Emphysema": ("Emphysema.", "Hyperinflated lungs."),
        "Opacity": ("Airspace opacity.", "Consolidation is present."),
    }
    negatives = {"Cardiomegaly": "No cardiomegaly.", "Emphysema": "No emphysema.",
                 "Opacity": "No consolidation."}
    for name in FINDINGS:
        if name in findings:
            sentences.append(templates[name][int(rng.integers(2))])
        elif not labels:
            sentences.append(negatives[name])
    if not labels:
        sentences.append("No acute cardiopulmonary abnormality.")
    elif not sentences:
        sentences.append("Other findings.")
    return "FINDINGS: " + " ".join(sentences)


def read_labels_table(table: str | Path, seed: int = 0) -> list[Pair]:
    """Read a ``path,patient_id,finding_labels`` table (cxr14 copies) with templated reports."""
    table = Path(table)
    rng = np.random.default_rng(seed)
    out = []
    with open(table, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            raw = tuple(n for n in row["finding_labels"].split("|") if n and n != "No Finding")
            mapped = tuple(sorted({"Opacity" if n in NIH_OPACITY else n for n in raw} & set(FINDINGS)))
            if raw and not mapped:
                continue  # a finding outside the three tasks: neither positive nor a normal film
            out.append(Pair(str(table.parent / row["path"]), row["patient_id"], mapped,
                            templated_report(raw if mapped else (), rng)))
    return out


def split_pairs(pairs: list[Pair], seed: int) -> tuple[list[Pair], list[Pair], list[Pair]]:
    """Split 60/20/20 by patient (seeded)."""
    patients = sorted({p.patient_id for p in pairs})
    np.random.default_rng(seed).shuffle(patients)
    n = len(patients)
    part = {pid: (0 if i < 0.6 * n else 1 if i < 0.8 * n else 2) for i, pid in enumerate(patients)}
    sets: tuple[list, list, list] = ([], [], [])
    for p in pairs:
        sets[part[p.patient_id]].append(p)
    return sets


def report_sentences(text: str) -> list[str]:
    """Return the sentences the model reads (the app's own section split; no indication)."""
    return split_sentences(searchable_text(split_sections(text)))


class PairSet(torch.utils.data.Dataset):
    """Preprocessed images, tokenised sentences, label targets."""

    def __init__(self, pairs, cache, pre, tokenizer, cfg: PriorConfig, augment=None) -> None:
        self.pairs, self.cache, self.pre, self.augment = pairs, cache, pre, augment
        s, length = cfg.max_sentences, cfg.max_tokens
        self.ids = torch.zeros(len(pairs), s, length, dtype=torch.int64)
        self.mask = torch.zeros(len(pairs), s, length, dtype=torch.int64)
        self.valid = torch.zeros(len(pairs), s, dtype=torch.bool)
        for i, p in enumerate(pairs):
            sents = report_sentences(p.report)[:s] or ["no report"]
            ids, mask = encode(tokenizer, sents)
            self.ids[i, :len(sents)], self.mask[i, :len(sents)] = ids, mask
            self.valid[i, :len(sents)] = True
        self.targets = torch.tensor([[float(f in p.labels) for f in FINDINGS] for p in pairs])

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i):
        x = torch.from_numpy(finish_from_resized(self.cache[i], self.pre, self.augment))
        return x, self.ids[i], self.mask[i], self.valid[i], self.targets[i]


# -- training ------------------------------------------------------------------------------------
def train(cfg: PriorConfig, splits, pre, tokenizer, out: Path, epochs: int, batch: int, lr: float,
          seed: int, log=print) -> dict[str, Any]:
    """Train with AdamW + cosine schedule; keep the epoch with the best validation score.

    The score is the mean average precision of the finding phrases (text-to-image);
    for the image-only baseline, same-label precision@5 of image-to-image retrieval.
    """
    torch.manual_seed(seed)
    train_p, val_p, _ = splits
    caches = [[resized_unit(load_image(p.path), pre) for p in part] for part in splits]
    train_set = PairSet(train_p, caches[0], pre, tokenizer, cfg, FlipRotate(5.0, 0.0, seed))
    loader = torch.utils.data.DataLoader(train_set, batch_size=batch, shuffle=True, drop_last=True,
                                         generator=torch.Generator().manual_seed(seed))
    model = PriorModel(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    steps = max(1, epochs * len(loader))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, len(loader))) * 0.5 * (1 + np.cos(np.pi * s / steps)))
    best, history = -1.0, []
    for epoch in range(epochs):
        model.train()
        t0, sums = time.time(), {}
        for images, ids, mask, valid, targets in loader:
            losses = model.losses(images, ids, mask, valid, targets, torch.ones_like(targets))
            opt.zero_grad()
            losses["total"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) / len(loader)
        if cfg.weight_global or cfg.weight_local:
            score = text_to_image_metrics(model, tokenizer, val_p, caches[1], pre)["mean_ap"]
        else:  # the image-only baseline: chosen by its own task, image-to-image retrieval
            score = image_to_image(image_embeddings(model, caches[1], pre), val_p, seed)["p@5"]
        entry = {"epoch": epoch + 1, "seconds": round(time.time() - t0, 1),
                 **{k: round(v, 4) for k, v in sums.items()}, "val_score": round(score, 4)}
        history.append(entry)
        improved = score > best
        if improved:
            best = score
            torch.save({"model": model.state_dict(), "cfg": cfg.to_dict(), "epoch": epoch,
                        "preprocess": pre.to_metadata(), "history": history}, out / "best.pt")
        log(json.dumps(entry) + ("  *" if improved else ""), flush=True)
    state = torch.load(out / "best.pt", weights_only=False)
    model.load_state_dict(state["model"])
    state["history"] = history
    return {"model": model.eval(), "caches": caches, "state": state}


# -- evaluation ---------------------------------------------------------------------------------
@torch.no_grad()
def image_embeddings(model: PriorModel, cache, pre) -> np.ndarray:
    """Return L2-normalised joint image embeddings (N, D)."""
    model.eval()
    out = []
    for start in range(0, len(cache), 128):
        x = torch.from_numpy(np.stack([finish_from_resized(c, pre) for c in cache[start:start + 128]]))
        out.append(torch.nn.functional.normalize(model.image(x)[1], dim=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, model.cfg.joint_dim), np.float32)


@torch.no_grad()
def text_embeddings(model: PriorModel, tokenizer, phrases: list[str]) -> np.ndarray:
    """Return unit embeddings of phrases (N, D)."""
    ids, mask = encode(tokenizer, phrases)
    return model.text(ids, mask).numpy()


def ranking_metrics(scores: np.ndarray, relevant: np.ndarray) -> dict[str, float]:
    """Return precision@5, recall@10 (of all relevant) and average precision of one ranking."""
    order = np.argsort(-scores, kind="stable")
    rel = relevant[order].astype(float)
    n_rel = max(rel.sum(), 1.0)
    hits = np.cumsum(rel)
    ap = float((hits / np.arange(1, len(rel) + 1) * rel).sum() / n_rel)
    return {"p@5": float(rel[:5].mean()), "r@10": float(rel[:10].sum() / n_rel), "ap": ap}


def text_to_image_metrics(model, tokenizer, pairs, cache, pre) -> dict[str, Any]:
    """Per-phrase text-to-image metrics against the labels, and the negation check."""
    img = image_embeddings(model, cache, pre)
    truth = np.array([[f in p.labels for f in FINDINGS] for p in pairs])
    per_phrase, aps = {}, []
    for j, finding in enumerate(FINDINGS):
        if not truth[:, j].any():
            continue
        for phrase in PHRASES[finding]:
            m = ranking_metrics(img @ text_embeddings(model, tokenizer, [phrase])[0], truth[:, j])
            per_phrase[phrase] = {"finding": finding, **m}
            aps.append(m["ap"])
    negation = {}
    for j, finding in enumerate(FINDINGS):
        pos = truth[:, j]
        if not pos.any():
            continue
        t = text_embeddings(model, tokenizer, [PHRASES[finding][0], NEGATED[finding]])
        s = img[pos] @ t.T
        negation[finding] = {"positive_images": int(pos.sum()),
                             "negated_below_positive": float((s[:, 1] < s[:, 0]).mean())}
    return {"phrases": per_phrase, "mean_ap": float(np.mean(aps)) if aps else 0.0, "negation": negation}


def bm25_metrics(pairs: list[Pair]) -> dict[str, Any]:
    """The same phrases by BM25 over the reports (the app's own index and query rules)."""
    from medviewer.reports.ranker import ReportRanker
    from medviewer.reports.search import parse_query
    from medviewer.reports.store import index_columns

    ranker = ReportRanker.build((i, *index_columns(split_sections(p.report))) for i, p in enumerate(pairs))
    truth = np.array([[f in p.labels for f in FINDINGS] for p in pairs])

    def scores(phrase: str) -> np.ndarray:
        out = np.full(len(pairs), -1e9)
        query = parse_query(phrase)
        for rowid, s in ranker.search(query.affirmed, query.negated, len(pairs))[0]:
            out[rowid] = s
        return out

    per_phrase, negation = {}, {}
    for j, finding in enumerate(FINDINGS):
        if not truth[:, j].any():
            continue
        for phrase in PHRASES[finding]:
            per_phrase[phrase] = {"finding": finding, **ranking_metrics(scores(phrase), truth[:, j])}
        pos = truth[:, j]
        s_pos, s_neg = scores(PHRASES[finding][0])[pos], scores(NEGATED[finding])[pos]
        negation[finding] = {"positive_images": int(pos.sum()),
                             "negated_below_positive": float((s_neg < s_pos).mean())}
    return {"phrases": per_phrase, "negation": negation}


def random_metrics(pairs: list[Pair], seed: int, draws: int = 200) -> dict[str, Any]:
    """Expected metrics of a random ranking (mean over ``draws`` shuffles)."""
    rng = np.random.default_rng(seed)
    truth = np.array([[f in p.labels for f in FINDINGS] for p in pairs])
    out = {}
    for j, finding in enumerate(FINDINGS):
        if truth[:, j].any():
            ms = [ranking_metrics(rng.random(len(pairs)), truth[:, j]) for _ in range(draws)]
            out[finding] = {k: float(np.mean([m[k] for m in ms])) for k in ms[0]}
    return out


def bootstrap_interval(values: np.ndarray, seed: int, n: int = 1000) -> list[float]:
    """Return the 95 % percentile bootstrap interval of a mean."""
    values = np.asarray(values, float)
    if len(values) == 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (n, len(values)))].mean(axis=1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def image_to_image(embeddings: np.ndarray, pairs: list[Pair], seed: int, k: int = 5) -> dict[str, Any]:
    """Precision@k of same-label-set neighbours (leave-one-out, cosine), with a bootstrap interval."""
    keys = np.array(["|".join(p.labels) for p in pairs])
    e = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True).clip(1e-12)
    sim = e @ e.T
    np.fill_diagonal(sim, -np.inf)
    nn = np.argsort(-sim, axis=1)[:, :k]
    per_query = (keys[nn] == keys[:, None]).mean(axis=1)
    return {"p@5": float(per_query.mean()), "ci95": bootstrap_interval(per_query, seed)}


def pixel_embeddings(cache, pre) -> np.ndarray:
    """The pixel baseline: each preprocessed image, flattened (16 x 16 average-pooled)."""
    out = []
    for c in cache:
        x = torch.from_numpy(finish_from_resized(c, pre))[None]
        out.append(torch.nn.functional.adaptive_avg_pool2d(x, 16).flatten().numpy())
    return np.stack(out)


def random_image_to_image(pairs: list[Pair], k: int = 5) -> float:
    """Expected same-label precision@k of random neighbours (label-set frequencies)."""
    keys = ["|".join(p.labels) for p in pairs]
    counts = {key: keys.count(key) for key in set(keys)}
    n = len(keys)
    return float(np.mean([(counts[key] - 1) / (n - 1) for key in keys]))


# -- entry point ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    p = argparse.ArgumentParser(prog="python -m models.prior_train", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--synthetic", metavar="FOLDER", help="a synthetic dataset folder")
    src.add_argument("--generate", type=int, metavar="N", help="generate N synthetic films first")
    src.add_argument("--labels-table", metavar="CSV", help="labelled images (templated reports)")
    p.add_argument("--out", required=True, help="run folder (checkpoint, metrics, bundle)")
    p.add_argument("--size", type=int, default=64, help="input size (and generated film size)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--image-only-baseline", action="store_true",
                   help="also train the same image tower on labels only, for image-to-image retrieval")
    p.add_argument("--no-export", action="store_true")
    p.add_argument("--evaluate-only", action="store_true",
                   help="skip training: evaluate (and export) OUT/best.pt with OUT/tokenizer.json")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run data preparation, training, evaluation and export."""
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.generate:
        from medviewer.synthetic import generate_dataset

        generate_dataset(out / "data", args.generate, args.seed + 1, size=args.size, ct_series=0, png=False)
        pairs, source = read_synthetic(out / "data"), f"synthetic: {args.generate} films, seed {args.seed + 1}"
    elif args.synthetic:
        pairs, source = read_synthetic(args.synthetic), f"synthetic: {args.synthetic}"
    else:
        pairs, source = read_labels_table(args.labels_table, args.seed), f"labels table: {args.labels_table}"
    splits = split_pairs(pairs, args.seed)
    cfg = PriorConfig(img_size=args.size)
    if args.evaluate_only:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    else:
        tokenizer = train_tokenizer([s for p in splits[0] for s in report_sentences(p.report)],
                                    cfg.vocab_size, cfg.max_tokens)
    cfg.vocab_size = tokenizer.get_vocab_size()
    pre0 = PreprocessConfig(input_size=args.size, resize=args.size, channels=3)
    cache0 = [resized_unit(load_image(p.path), pre0) for p in splits[0][:500]]
    mean, std = dataset_mean_std(cache0, pre0)
    pre = PreprocessConfig(input_size=args.size, resize=args.size, channels=3,
                           mean=(round(mean, 6),) * 3, std=(round(std, 6),) * 3)
    if args.evaluate_only:
        state = torch.load(out / "best.pt", weights_only=False)
        model = PriorModel(PriorConfig(**state["cfg"]))
        model.load_state_dict(state["model"])
        model.eval()
        pre = PreprocessConfig.from_metadata(state["preprocess"])
        caches = [[resized_unit(load_image(p.path), pre) for p in part] for part in splits]
    else:
        tokenizer.save(str(out / "tokenizer.json"))
        run = train(cfg, splits, pre, tokenizer, out, args.epochs, args.batch, args.lr, args.seed)
        model, caches, state = run["model"], run["caches"], run["state"]
    test = splits[2]
    learned = text_to_image_metrics(model, tokenizer, test, caches[2], pre)
    results: dict[str, Any] = {
        "source": source, "split_sizes": [len(s) for s in splits],
        "best_epoch": state["epoch"] + 1, "history": state.get("history", []),
        "text_to_image": {"learned": learned, "bm25_over_reports": bm25_metrics(test),
                          "random": random_metrics(test, args.seed)},
    }
    joint = image_embeddings(model, caches[2], pre)
    results["image_to_image"] = {
        "joint_image_tower": image_to_image(joint, test, args.seed),
        "pixels": image_to_image(pixel_embeddings(caches[2], pre), test, args.seed),
        "random": {"p@5": random_image_to_image(test)},
    }
    if args.image_only_baseline:
        base_cfg = PriorConfig(**{**cfg.to_dict(), "weight_global": 0.0, "weight_local": 0.0,
                                  "weight_prototype": 0.0, "weight_labels": 1.0})
        base_out = out / "image_only"
        base_out.mkdir(exist_ok=True)
        base = _train_image_only(base_cfg, splits, caches, pre, tokenizer, base_out, args)
        results["image_to_image"]["image_only_tower"] = image_to_image(
            image_embeddings(base, caches[2], pre), test, args.seed)
    with open(out / "metrics.json", "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=2)
    print(json.dumps({k: results[k] for k in ("source", "split_sizes", "best_epoch")}))
    print(summary_table(results))
    if not args.no_export:
        from models.prior_export import export_prior_bundle

        export_prior_bundle(out / "best.pt", out / "tokenizer.json", out / "bundle", metrics=results,
                            source=source, overwrite=True)
    return 0


def _train_image_only(cfg, splits, caches, pre, tokenizer, out, args) -> PriorModel:
    """The image-only model: the same tower and data, trained on the labels alone."""
    return train(cfg, splits, pre, tokenizer, out, args.epochs, args.batch, args.lr, args.seed,
                 log=lambda line, **kw: print("image-only", line, **kw))["model"]


def summary_table(results: dict[str, Any]) -> str:
    """Return the test results as a readable table."""
    t2i = results["text_to_image"]
    lines = [f"{'phrase':32s} {'learned p@5':>11s} {'r@10':>6s} {'AP':>6s} | {'BM25 p@5':>8s} "
             f"{'r@10':>6s} {'AP':>6s} | {'random p@5':>10s}"]
    for phrase, m in t2i["learned"]["phrases"].items():
        b = t2i["bm25_over_reports"]["phrases"][phrase]
        r = t2i["random"][m["finding"]]
        lines.append(f"{phrase:32s} {m['p@5']:11.2f} {m['r@10']:6.3f} {m['ap']:6.3f} | {b['p@5']:8.2f} "
                     f"{b['r@10']:6.3f} {b['ap']:6.3f} | {r['p@5']:10.2f}")
    for finding, m in t2i["learned"]["negation"].items():
        b = t2i["bm25_over_reports"]["negation"][finding]
        lines.append(f"negated below positive, {finding}: learned {m['negated_below_positive']:.3f}, "
                     f"BM25 {b['negated_below_positive']:.3f} (of {m['positive_images']} positive images)")
    for name, m in results["image_to_image"].items():
        ci = m.get("ci95")
        lines.append(f"image-to-image same-labels p@5, {name}: {m['p@5']:.3f}"
                     + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    raise SystemExit(main())

"""Train and ship the chest radiograph bundle ``models/cxr14``: ``python -m models.experiments.cxr14_bundle``.

Data: the two shared NIH ChestX-ray14 samples (``cxr14-nih1000-64px``, 797
images at 64 px, and ``cxr14-nih-pneumonia-256px``, 683 images at 256 px),
split **by patient across both** (some patients are in both) into
train/validation/test, seeded.  Tasks: Cardiomegaly, Emphysema and Opacity (the
paper's eight findings, Pneumonia among them), each vs No Finding.

Compute is a shared CPU, so the hybrid ViT's ImageNet EfficientNet-Lite0 stem
is frozen: its feature maps are computed once per image and augmentation view
(``cache``), and the transformer is trained on the cached maps (``train``):
seconds per epoch.  Everything is chosen on the validation split; the test
split is scored once, at the end (``report``), and the bundle exported.

Stages (each reuses the work folder): ``cache``, ``pretrain``, ``train``, ``report``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import torch

from medviewer.inference.preprocess import PreprocessConfig, finish_from_resized, resized_unit
from models.data import PRESETS, Record, TaskSpec, read_label_table, split_by_patient
from models.dataset import FlipRotate, raw_image
from models.experiments import SHARED_DATA
from models.pretrained import IMAGENET_MEAN, IMAGENET_STD

TABLES = {"64px": SHARED_DATA / "cxr14-nih1000-64px" / "labels.csv",
          "256px": SHARED_DATA / "cxr14-nih-pneumonia-256px" / "labels.csv"}
SPLIT = (0.6, 0.2, 0.2)
SEED = 0
PREPROCESS = PreprocessConfig(input_size=224, resize=256, channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD)


def task_spec() -> TaskSpec:
    """Return the paper's three tasks, each vs No Finding."""
    preset = PRESETS["cxr14-paper"]
    return TaskSpec("multilabel", list(preset["findings"]), dict(preset["groups"]), "no-finding")


def load_split(seed: int = SEED) -> tuple[list[Record], list[str], np.ndarray]:
    """Return every record of both samples, its source set, and its split (0 train, 1 val, 2 test)."""
    records, sources = [], []
    for name, table in TABLES.items():
        rs = read_label_table(table)
        records += rs
        sources += [name] * len(rs)
    train, val, test = split_by_patient(records, SPLIT, seed)
    where = {id(r): k for k, part in enumerate((train, val, test)) for r in part}
    return records, sources, np.array([where[id(r)] for r in records])


def views(record: Record, n_views: int, seed: int) -> list[np.ndarray]:
    """Return the model inputs of one image: as the app sees it, flipped, then random flips/rotations."""
    resized = resized_unit(raw_image(record), PREPROCESS)
    out = [finish_from_resized(resized, PREPROCESS), finish_from_resized(resized[:, ::-1].copy(), PREPROCESS)]
    aug = FlipRotate(degrees=5.0, flip=0.5, seed=seed)
    while len(out) < n_views:
        out.append(finish_from_resized(resized, PREPROCESS, aug))
    return out[:n_views]


def cache(work: Path, n_views: int, log=print) -> None:
    """Compute and store the frozen stem's feature maps for every image and view."""
    from models.vit import CNNStem

    work.mkdir(parents=True, exist_ok=True)
    records, sources, split = load_split()
    stem = CNNStem(224, 8, "stage6", pretrained=True).eval()
    spec = task_spec()
    pairs = [spec.targets(r) for r in records]
    np.savez(work / "index.npz", paths=np.array([r.path for r in records]),
             patients=np.array([r.patient_id for r in records]), sources=np.array(sources), split=split,
             labels=np.array(["|".join(r.labels) for r in records]),
             targets=np.stack([p[0] for p in pairs]), masks=np.stack([p[1] for p in pairs]),
             pixels16=np.stack([_pixels16(r) for r in records]))
    for v in range(n_views):
        path = work / f"features_view{v}.npy"
        if path.exists():
            continue
        feats = np.zeros((len(records), 320, 7, 7), np.float16)
        t0 = time.time()
        for start in range(0, len(records), 32):
            batch = np.stack([views(r, v + 1, seed=zlib.crc32(f"{r.path}:{v}".encode()))[v]
                              for r in records[start:start + 32]])
            with torch.no_grad():
                feats[start:start + len(batch)] = stem.features(torch.from_numpy(batch)).numpy()
            log(f"view {v}: {start + len(batch)}/{len(records)} ({time.time() - t0:.0f}s)")
        np.save(path.with_suffix(".tmp.npy"), feats)
        Path(path.with_suffix(".tmp.npy")).replace(path)


def load_cache(work: Path, n_views: int) -> dict:
    """Return the index arrays and the stacked feature views (V, N, 320, 7, 7) float16."""
    index = dict(np.load(work / "index.npz"))
    paths = [work / f"features_view{v}.npy" for v in range(n_views)]
    index["features"] = np.stack([np.load(p, mmap_mode="r") for p in paths if p.exists()])
    return index


def hybrid_arch(cfg: dict) -> "ArchConfig":
    """Return the architecture of one configuration of the grid."""
    from models.vit import ArchConfig

    return ArchConfig(model="custom", num_outputs=3, img_size=224, embed_dim=cfg["dim"], depth=cfg["depth"],
                      num_heads=cfg["heads"], mlp_ratio=cfg.get("mlp_ratio", 4.0),
                      drop_path=cfg.get("drop_path", 0.1), stem="efficientnet_lite0", stem_layer="head")


def head_features(model, stage6: torch.Tensor) -> torch.Tensor:
    """Return the hybrid stem's last-layer map from cached stage-6 features (conv_head, bn2)."""
    stem = model.vit.patch_embed
    return stem.bn2(stem.conv_head(stage6))


def cached_forward(model, stage6: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (logits, embedding) of a hybrid from cached stage-6 features."""
    emb = model.pre_logits(model.forward_stem_features(head_features(model, stage6)))
    return model.head(emb), emb


@torch.no_grad()
def cached_predict(model, feats: np.ndarray, batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Return (logits, embeddings) for cached features (N, 320, 7, 7), eval mode."""
    model.eval()
    logits, embs = [], []
    for start in range(0, len(feats), batch):
        lo, em = cached_forward(model, torch.from_numpy(np.asarray(feats[start:start + batch], np.float32)))
        logits.append(lo.numpy())
        embs.append(em.numpy())
    return np.concatenate(logits), np.concatenate(embs)


def train_cached(cache_: dict, cfg: dict, *, init_state: dict | None = None, log=print) -> dict:
    """Train a hybrid ViT's transformer (and the CNN's last 1x1 conv) on cached feature views.

    Every training image is used; each task's BCE is weighted by its negative/positive
    ratio instead of undersampling (a few hundred images cannot spare any).  The epoch
    with the best validation mean AUC is kept.
    """
    from models.metrics import evaluate
    from models.train import _lr_factor, _param_groups, seed_everything
    from models.vit import build_model

    seed_everything(cfg.get("seed", SEED))
    model = build_model(hybrid_arch(cfg), stem_pretrained=True)
    if init_state is not None:  # a self-supervised checkpoint: its transformer, the same stem
        missing, unexpected = model.load_state_dict(init_state, strict=False)
        log(f"initialised from pretraining ({len(missing)} tensors not in it: heads)")
    stem = model.vit.patch_embed
    for name, param in model.named_parameters():
        frozen_cnn = name.startswith("vit.patch_embed.") and not name.startswith("vit.patch_embed.proj.")
        tune_head = cfg.get("tune_conv_head", True) and name.startswith("vit.patch_embed.conv_head.")
        param.requires_grad = not frozen_cnn or tune_head
    split, masks, targets = cache_["split"], cache_["masks"], cache_["targets"]
    train_rows = np.flatnonzero((split == 0) & (masks.sum(1) > 0))
    val_rows = np.flatnonzero((split == 1) & (masks.sum(1) > 0))
    y, m = torch.from_numpy(targets[train_rows]), torch.from_numpy(masks[train_rows])
    pos = (y * m).sum(0)
    pos_weight = ((m.sum(0) - pos) / pos.clamp(min=1)).clamp(min=1e-3)
    feats = cache_["features"]
    val_feats = np.asarray(feats[0][val_rows], np.float32)
    epochs, batch = cfg.get("epochs", 30), cfg.get("batch", 64)
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.get("wd", 0.05)), lr=cfg["lr"])
    steps = epochs * int(np.ceil(len(train_rows) / batch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda st: _lr_factor(st, steps // 15, steps))
    rng = np.random.default_rng(cfg.get("seed", SEED))
    spec = task_spec()
    best = {"score": -1.0}
    for epoch in range(epochs):
        t0 = time.time()
        model.train()
        stem.bn2.eval()  # frozen ImageNet statistics
        order = rng.permutation(len(train_rows))
        view = rng.integers(0, feats.shape[0], len(train_rows))
        total = 0.0
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            x = torch.from_numpy(np.stack([np.asarray(feats[view[i], train_rows[i]], np.float32) for i in idx]))
            _, emb = cached_forward(model, x)
            raw = model.raw_head(emb)
            per = torch.nn.functional.binary_cross_entropy_with_logits(
                raw, y[idx], pos_weight=pos_weight, reduction="none") * m[idx]
            loss = per.sum() / m[idx].sum().clamp(min=1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            total += float(loss) * len(idx)
        val_logits, _ = cached_predict(model, val_feats)
        metrics = evaluate("multilabel", spec.names, val_logits, targets[val_rows], masks[val_rows])
        improved = metrics["score"] > best["score"]
        if improved:
            best = {"score": metrics["score"], "epoch": epoch + 1, "val": metrics,
                    "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        log(f"epoch {epoch + 1:3d} loss {total / len(order):.4f} val AUC "
            + " ".join(f"{n} {metrics[f'auc/{n}']:.3f}" for n in spec.names)
            + f" mean {metrics['score']:.4f} {time.time() - t0:.1f}s" + ("  *" if improved else ""))
    model.load_state_dict(best["state"])
    best["model"] = model.eval()
    return best


def _pixels16(record: Record) -> np.ndarray:
    """Return the app's pixel baseline embedding (``eval retrieval --baseline pixels`` at 16 x 16)."""
    from medviewer.retrieval.embedders import PixelEmbedder

    return PixelEmbedder(16).embed([raw_image(record)])[0]


# ---------------------------------------------------------------------------------------------
# Evaluation: classification AUC and retrieval (the paper's protocol), with 95% intervals.


def auc_table(logits: np.ndarray, targets: np.ndarray, masks: np.ndarray, seed: int = SEED) -> dict:
    """Return per-task ROC AUC with a 95% bootstrap interval and the counts."""
    from sklearn.metrics import roc_auc_score

    from models.metrics import bootstrap_auc_ci

    out = {}
    for i, name in enumerate(task_spec().names):
        valid = masks[:, i] > 0
        y, s = targets[valid, i], logits[valid, i]
        auc = float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")
        lo, hi = bootstrap_auc_ci(y, s, seed=seed)
        out[name] = {"auc": auc, "ci95": [lo, hi], "pos": int(y.sum()), "neg": int(len(y) - y.sum())}
    return out


def retrieval_table(vectors: np.ndarray, rows: np.ndarray, cache_: dict, metric: str,
                    seed: int = SEED, only: str | None = None) -> dict:
    """Return mAP@5 / nDCG@5 per task on ``rows`` with the app's protocol (balanced pool, leave-patient-out).

    ``only`` restricts the pool to one source set (``64px`` or ``256px``).
    """
    from medviewer.retrieval.catalog import NO_FINDING, CaseInfo
    from medviewer.retrieval.evaluate import evaluate_pool, task_pool

    if only is not None:
        keep = cache_["sources"][rows] == only
        vectors, rows = vectors[keep], rows[keep]
    patients = {p: k for k, p in enumerate(sorted(set(cache_["patients"][rows])))}
    cases = [CaseInfo(int(i), str(cache_["paths"][r]), str(cache_["paths"][r]), "", 0, 0, 0.0,
                      str(cache_["patients"][r]), patients[cache_["patients"][r]], "", "", "DX", "",
                      tuple(str(cache_["labels"][r]).split("|")) if cache_["labels"][r] else (NO_FINDING,))
              for i, r in enumerate(rows)]
    by_id = {c.id: c for c in cases}
    out = {}
    for name in task_spec().names:
        pool = task_pool(cases, name, split="all", seed=seed)
        if min(sum(pool.positive), len(pool.positive) - sum(pool.positive)) < 2:
            continue
        res = evaluate_pool(by_id, pool, vectors[pool.case_ids], metric, task=name, k=5, seed=seed)
        out[name] = {"map_at_5": res.map_at_k, "map_ci95": list(res.map_ci95), "ndcg_at_5": res.ndcg_at_k,
                     "ndcg_ci95": list(res.ndcg_ci95), "random_map_at_5": res.random_map_at_k,
                     "random_ndcg_at_5": res.random_ndcg_at_k, "queries": res.queries, "p_value": res.p_value}
    return out


def linear_probe(x: np.ndarray, cache_: dict, seed: int = SEED) -> tuple[np.ndarray, dict]:
    """Fit one logistic regression per task on the training rows (C chosen on validation); return test logits."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    split, targets, masks = cache_["split"], cache_["targets"], cache_["masks"]
    scaler = StandardScaler().fit(x[split == 0])
    z = scaler.transform(x)
    logits = np.zeros((len(x), targets.shape[1]), np.float32)
    chosen = {}
    for k, name in enumerate(task_spec().names):
        tr = (split == 0) & (masks[:, k] > 0)
        va = (split == 1) & (masks[:, k] > 0)
        best = (-1.0, None, None)
        for c in (0.001, 0.01, 0.1, 1.0):
            model = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(z[tr], targets[tr, k])
            auc = roc_auc_score(targets[va, k], model.decision_function(z[va]))
            if auc > best[0]:
                best = (auc, c, model)
        chosen[name] = {"C": best[1], "val_auc": best[0]}
        logits[:, k] = best[2].decision_function(z)
    return logits, chosen


def pooled_imagenet_features(cache_: dict) -> np.ndarray:
    """Return the off-the-shelf ImageNet EfficientNet-Lite0 features (1280, average-pooled), view 0."""
    from models.vit import CNNStem

    stem = CNNStem(224, 8, "head", pretrained=True).eval()
    feats = cache_["features"][0]
    out = []
    with torch.no_grad():
        for start in range(0, len(feats), 128):
            x = torch.from_numpy(np.asarray(feats[start:start + 128], np.float32))
            out.append(stem.bn2(stem.conv_head(x)).mean((2, 3)).numpy())
    return np.concatenate(out)


GRID = [
    {"name": "d128-l2-lr1e-3", "dim": 128, "depth": 2, "heads": 4, "lr": 1e-3},
    {"name": "d128-l4-lr5e-4", "dim": 128, "depth": 4, "heads": 4, "lr": 5e-4},
    {"name": "d192-l4-lr3e-4", "dim": 192, "depth": 4, "heads": 3, "lr": 3e-4},
    {"name": "d128-l4-lr5e-4-frozenhead", "dim": 128, "depth": 4, "heads": 4, "lr": 5e-4,
     "tune_conv_head": False},
]


def save_run(path: Path, run: dict, cfg: dict, extra: dict | None = None) -> None:
    """Store one trained variant (weights, configuration, validation metrics)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"cfg": cfg, "state": run["state"], "epoch": run["epoch"], "val": run["val"],
                **(extra or {})}, path)


def grid(work: Path, n_views: int, epochs: int, log=print) -> dict:
    """Train every configuration of :data:`GRID`; return the name of the best by validation mean AUC."""
    cache_ = load_cache(work, n_views)
    scores = {}
    for cfg in GRID:
        path = work / "grid" / f"{cfg['name']}.pt"
        if path.exists():
            scores[cfg["name"]] = torch.load(path, weights_only=False)["val"]["score"]
            continue
        log(f"== {cfg['name']}")
        run = train_cached(cache_, {**cfg, "epochs": epochs}, log=log)
        save_run(path, run, {**cfg, "epochs": epochs})
        scores[cfg["name"]] = run["score"]
    best = max(scores, key=scores.get)
    (work / "grid" / "selection.json").write_text(json.dumps({"val_mean_auc": scores, "best": best}, indent=2))
    log(f"validation mean AUC: {scores}; best {best}")
    return {"scores": scores, "best": best}


def main(argv: list[str] | None = None) -> int:
    """Run the stages asked for; exit 0 (also when the shared data is absent)."""
    p = argparse.ArgumentParser(prog="python -m models.experiments.cxr14_bundle",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("stages", nargs="+", choices=["cache", "grid", "pretrain", "scratch", "report"])
    p.add_argument("--work", default="/tmp/medviewer-cxr14-bundle")
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=30)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not all(t.exists() for t in TABLES.values()):
        print("skipped: the shared ChestX-ray14 samples are absent")
        return 0
    work = Path(args.work)
    log = lambda line: print(line, flush=True)  # noqa: E731
    if "cache" in args.stages:
        cache(work, args.views, log=log)
    if "grid" in args.stages:
        grid(work, args.views, args.epochs, log=log)
    return 0


if __name__ == "__main__":
    sys.exit(main())

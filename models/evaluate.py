"""Evaluate an exported bundle through the app's runtime: ``python -m models.evaluate BUNDLE --labels TABLE``.

The images go through exactly what the app does (``medviewer.inference``:
preprocessing, ONNX Runtime), so the numbers describe the shipped bundle, not
the torch checkpoint.  Per finding: ROC AUC of positives vs "No Finding"
images (the paper's protocol) and vs all other images, with bootstrap 95%
intervals.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from models.data import TaskSpec, read_label_table
from models.imageio import load_image
from models.metrics import bootstrap_auc_ci


def evaluate_bundle(
    bundle_dir: str | Path,
    labels: str | Path,
    images: str | Path | None = None,
    *,
    fmt: str = "auto",
    variant: str | None = None,
    groups: dict[str, list[str]] | None = None,
    max_images: int | None = None,
) -> dict[str, Any]:
    """Return per-finding AUCs of a multi-label bundle on a labelled image table."""
    from sklearn.metrics import roc_auc_score

    from medviewer.inference import ModelRunner, load_bundle

    bundle = load_bundle(bundle_dir)
    if bundle.task != "multilabel":
        raise ValueError("evaluate_bundle handles multi-label bundles")
    records = read_label_table(labels, images, fmt=fmt)[: max_images or None]
    runner = ModelRunner(bundle, "auto", variant=variant)

    class Lazy:
        def __len__(self):
            return len(records)

        def __getitem__(self, i):
            return load_image(records[i].path)

    probs = np.array([[row[n] for n in bundle.labels] for row in runner.classify(Lazy())])
    groups = groups if groups is not None else bundle.metadata.get("label_groups", {})
    result: dict[str, Any] = {"bundle": str(bundle.path), "sha256": bundle.sha256, "variant": variant or "fp32",
                              "images": len(records), "provider": runner.provider, "findings": {}}
    for negatives in ("no-finding", "rest"):
        spec = TaskSpec("multilabel", bundle.labels, groups, negatives)
        pairs = [spec.targets(r) for r in records]
        y = np.stack([p[0] for p in pairs])
        m = np.stack([p[1] for p in pairs])
        for i, name in enumerate(bundle.labels):
            valid = m[:, i] > 0
            yy, ss = y[valid, i], probs[valid, i]
            entry = result["findings"].setdefault(name, {})
            if 0 < yy.sum() < len(yy):
                lo, hi = bootstrap_auc_ci(yy, ss)
                entry[f"auc_vs_{negatives}"] = round(float(roc_auc_score(yy, ss)), 4)
                entry[f"ci95_vs_{negatives}"] = [round(lo, 4), round(hi, 4)]
            entry[f"n_pos"] = int(yy.sum())
            entry[f"n_neg_{negatives}"] = int(len(yy) - yy.sum())
    return result


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m models.evaluate``; return the exit code."""
    p = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("bundle")
    p.add_argument("--labels", required=True, help="label table (Data_Entry_2017 or path,labels CSV)")
    p.add_argument("--images", help="image folder (default: the table's folder)")
    p.add_argument("--format", dest="fmt", default="auto", choices=["auto", "cxr14", "csv"])
    p.add_argument("--variant", choices=["fp32", "fp16", "int8"])
    p.add_argument("--max-images", type=int)
    args = p.parse_args(argv)
    result = evaluate_bundle(args.bundle, args.labels, args.images, fmt=args.fmt,
                             variant=None if args.variant == "fp32" else args.variant,
                             max_images=args.max_images)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

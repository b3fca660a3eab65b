"""Measure a bundle's out-of-distribution check on real images: ``python -m models.ood_eval BUNDLE ...``.

In-domain images (never used to calibrate the threshold) against sets the
model should call unusual, from ``../shared/data`` (see its MANIFEST.md):

* ``ct-sbu-slices``: real CT slices (TCIA COVID-19-NY-SBU, CC BY 4.0);
* ``dicom-samples`` other modalities: every readable CT, MR, US, NM, ... file
  (pydicom, pydicom-data, dwv, highdicom test files);
* ``dicom-samples`` radiographs: the CR/DX films among them (other hospitals);
* ``pneumoniamnist``: paediatric chest films from Guangzhou (MedMNIST,
  28 px upsampled: a source and a resolution no CXR14 model saw);
* ``cxr14`` (only for models not trained on ChestX-ray14, e.g. the synthetic
  demo): real NIH films at 256 px.

For each set: AUROC of the bundle's out-of-distribution percentile (as the
app computes it: k-NN distance to training embeddings, combined with the
pixel-signature k-NN when the bundle stores it; ``embedding_only_auroc``
gives the embedding half alone) with a 95% bootstrap interval, the share flagged
at the bundle's threshold, beside a raw-pixel baseline (the same k-NN score
on 16x16 grey thumbnails against ``--reference`` training images) and
random (AUROC 0.5).  The result is stored in ``metadata.json``
``ood.evaluation`` and printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _display(path: Path) -> np.ndarray | None:
    from medviewer.dicom.pixels import decode
    from medviewer.dicom.sources import FileRef
    from medviewer.display.render import render_frame

    try:
        return render_frame(decode(FileRef.for_path(path)), 0)
    except Exception:  # unreadable, broken or non-image files are not part of any set
        return None


def _modality(path: Path) -> str | None:
    from medviewer.inference.applicability import image_facts

    try:
        return image_facts(path).modality
    except Exception:
        return None


def shared_sets(shared: Path, include_cxr14: bool, limit: int = 200, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Return the named out-of-distribution image sets found under ``shared`` (display images)."""
    from medviewer.inference.applicability import modality_family

    rng = np.random.default_rng(seed)

    def sample(paths):
        paths = sorted(paths)
        if len(paths) > limit:
            paths = [paths[i] for i in sorted(rng.choice(len(paths), limit, replace=False))]
        return [im for im in (_display(p) for p in paths) if im is not None]

    sets: dict[str, list[np.ndarray]] = {}
    ct = shared / "ct-sbu-slices"
    if ct.is_dir():
        sets["CT slices (ct-sbu-slices)"] = sample(ct.rglob("*.dcm"))
    samples = shared / "dicom-samples"
    if samples.is_dir():
        files = [p for p in samples.rglob("*") if p.is_file() and p.suffix.lower() in ("", ".dcm", ".dicom")]
        kinds = {p: modality_family(_modality(p)) for p in files}
        others = [p for p, f in kinds.items() if f not in ("radiograph", None) and _modality(p)]
        films = [p for p, f in kinds.items() if f == "radiograph" and _modality(p) in ("CR", "DX")]
        sets["other modalities (dicom-samples)"] = sample(others)
        sets["radiographs of other hospitals (dicom-samples CR/DX)"] = sample(films)
    mnist = shared / "pneumoniamnist-28" / "balanced-subsample.npz"
    if mnist.is_file():
        images = np.load(mnist)["test_images"]
        pick = rng.choice(len(images), min(limit, len(images)), replace=False)
        sets["paediatric chest films (pneumoniamnist, 28 px)"] = [images[i] for i in sorted(pick)]
    cxr = shared / "cxr14-nih-pneumonia-256px"
    if include_cxr14 and cxr.is_dir():
        sets["real NIH chest films (cxr14 256 px)"] = sample(cxr.rglob("*.png"))
    return {k: v for k, v in sets.items() if v}


def _thumbs(images: list[np.ndarray]) -> np.ndarray:
    from PIL import Image

    out = []
    for im in images:
        grey = im if im.ndim == 2 else im[..., :3].mean(-1)
        small = np.asarray(Image.fromarray(np.asarray(grey, np.float32)).resize((16, 16), Image.Resampling.BILINEAR),
                           np.float64).ravel()
        small = small - small.mean()
        out.append(small / max(np.linalg.norm(small), 1e-9))
    return np.stack(out).astype(np.float32)


def _knn_score(queries: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    sims = queries @ reference.T
    return 1.0 - (-np.sort(-sims, axis=1)[:, :k]).mean(1)


def evaluate_ood(bundle_dir: str | Path, in_domain: list[np.ndarray], out_sets: dict[str, list[np.ndarray]],
                 reference_images: list[np.ndarray] | None = None, seed: int = 0) -> dict[str, Any]:
    """Return AUROC (95% CI), flagged shares and the pixel baseline of each out-of-distribution set."""
    from sklearn.metrics import roc_auc_score

    from medviewer.inference import ModelRunner, load_bundle
    from medviewer.inference.ood import OodReference
    from models.metrics import bootstrap_auc_ci

    bundle = load_bundle(bundle_dir)
    ref = OodReference.from_bundle(bundle)
    if ref is None:
        raise ValueError(f"{bundle_dir} carries no out-of-distribution summary; re-export it")
    runner = ModelRunner(bundle, "cpu")
    threshold_score = ref.threshold

    def scores(images, embeddings):  # the app's percentile (embedding and pixel halves combined when stored)
        return ref.percentiles(embeddings, images)

    e_in = runner.embed(in_domain)
    s_in = scores(in_domain, e_in)
    pixel_ref = _thumbs(reference_images) if reference_images else None
    p_in = _knn_score(_thumbs(in_domain), pixel_ref, ref.k) if pixel_ref is not None else None
    result: dict[str, Any] = {}
    for name, images in out_sets.items():
        e_out = runner.embed(images)
        s_out = scores(images, e_out)
        y = np.r_[np.zeros(len(s_in)), np.ones(len(s_out))]
        s = np.r_[s_in, s_out]
        row = {"auroc": float(f"{roc_auc_score(y, s):.4f}"),
               "ci95": [float(f"{v:.4f}") for v in bootstrap_auc_ci(y, s, 500, seed)],
               "n_in": int(len(s_in)), "n_out": int(len(s_out)),
               "flagged_out": float(f"{(s_out >= threshold_score).mean():.4f}"),
               "flagged_in": float(f"{(s_in >= threshold_score).mean():.4f}"),
               "random_auroc": 0.5}
        emb_only = np.r_[ref.scores(e_in), ref.scores(e_out)]
        row["embedding_only_auroc"] = float(f"{roc_auc_score(y, emb_only):.4f}")
        if pixel_ref is not None:
            p_out = _knn_score(_thumbs(images), pixel_ref, ref.k)
            row["pixel_baseline_auroc"] = float(f"{roc_auc_score(y, np.r_[p_in, p_out]):.4f}")
        result[name] = row
    return result


def ood_eval_text(evaluation: dict[str, Any]) -> str:
    """Return the evaluation as a Markdown table for the card."""
    lines = ["| other images | n | AUROC (95% CI) | embedding half alone | raw-pixel k-NN baseline | "
             "flagged at threshold | in-domain flagged |",
             "|---|---|---|---|---|---|---|"]
    for name, row in evaluation.items():
        if not isinstance(row, dict) or "auroc" not in row:
            continue
        ci = row.get("ci95") or [float("nan")] * 2
        lines.append(f"| {name} | {row['n_out']} | {row['auroc']:.3f} ({ci[0]:.3f}-{ci[1]:.3f}) | "
                     f"{row.get('embedding_only_auroc', float('nan')):.3f} | "
                     f"{row.get('pixel_baseline_auroc', float('nan')):.3f} | {row['flagged_out']:.0%} | "
                     f"{row['flagged_in']:.0%} |")
    lines.append("")
    lines.append("Random scoring: AUROC 0.5. In-domain images: "
                 f"{next(iter(evaluation.values()))['n_in'] if evaluation else 0}, never used for the threshold.")
    return "\n".join(lines)


def record(bundle_dir: Path, evaluation: dict[str, Any], in_domain_source: str) -> None:
    """Store the evaluation in ``metadata.json`` and re-render the card's standard sections."""
    path = bundle_dir / "metadata.json"
    meta = json.loads(path.read_text())
    meta["ood"]["evaluation"] = {"in_domain": in_domain_source, **evaluation}
    path.write_text(json.dumps(meta, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m models.ood_eval``; print the table."""
    p = argparse.ArgumentParser(prog="python -m models.ood_eval", description=__doc__.split("\n\n")[0])
    p.add_argument("bundle")
    p.add_argument("--in-domain", required=True, nargs="+", help="in-domain held-out images or folders")
    p.add_argument("--reference", nargs="*", default=[], help="training images for the raw-pixel baseline")
    p.add_argument("--shared", default=str(SHARED))
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--include-cxr14", action="store_true", help="the model never saw ChestX-ray14 films")
    p.add_argument("--record", action="store_true", help="store the result in the bundle's metadata.json")
    args = p.parse_args(argv)

    def images(paths):
        files = []
        for item in map(Path, paths):
            files += sorted(item.rglob("*.png")) + sorted(item.rglob("*.dcm")) if item.is_dir() else [item]
        rng = np.random.default_rng(1)
        if len(files) > args.limit:
            files = [files[i] for i in sorted(rng.choice(len(files), args.limit, replace=False))]
        return [im for im in map(_display, files) if im is not None]

    sets = shared_sets(Path(args.shared), args.include_cxr14, args.limit)
    if not sets:
        print(f"models.ood_eval: no shared data under {args.shared}", file=sys.stderr)
        return 2
    evaluation = evaluate_ood(args.bundle, images(args.in_domain), sets, images(args.reference) or None)
    print(ood_eval_text(evaluation))
    if args.record:
        record(Path(args.bundle), evaluation, ", ".join(args.in_domain))
    return 0


if __name__ == "__main__":
    sys.exit(main())

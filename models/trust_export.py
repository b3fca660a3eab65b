"""What a bundle needs to say whether it applies: its domain and a summary of its training embeddings.

Both steps work on any trained checkpoint and its training data, so any
recipe (the demo, a real chest X-ray model) gets them through
``models.export.export_bundle``:

* :func:`describe_domain` reads the headers of a sample of training images
  (``medviewer.inference.applicability.image_facts``: modality, body part,
  view, photometric interpretation, bits, size) and fills in what PNG/JPEG
  files cannot say from the label table (ChestX-ray14 tables are frontal chest
  radiographs, with their (0018,5101)-like "View Position" column) or from
  what the caller declares;
* :func:`ood_summary` embeds up to ``reference`` training images (the
  reference set, stored as float16) and the held-out validation/test images,
  whose k-NN scores give the calibration quantiles and the threshold
  (``medviewer.inference.ood``; Sun et al., ICML 2022).
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any

import numpy as np
import torch

OOD_FILE = "ood_reference.npy"
PIXEL_FILE = "ood_pixels.npy"
OOD_K = 5
THRESHOLD_PERCENTILE = 95.0


def training_records(state: dict[str, Any]):
    """Return (train, held-out, data config) records of a checkpoint's training data.

    Raises
    ------
    OSError, ValueError
        The training data is not where training found it.
    """
    from models.prepare import DataConfig, load_records

    cfg = DataConfig(**{**state["train_config"]["data"], "split": tuple(state["train_config"]["data"]["split"])})
    train, val, test, _ = load_records(cfg)
    return train, val + test, cfg


def _table_views(cfg) -> list[str]:
    if not cfg.labels:
        return []
    path = Path(cfg.labels)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for column in ("View Position", "view_position", "ViewPosition"):
        if rows and column in rows[0]:
            return sorted({r[column].strip().upper() for r in rows if r[column].strip()})
    return []


def describe_domain(records, cfg, declared: dict[str, Any] | None = None, preprocess: dict[str, Any] | None = None,
                    sample: int = 200) -> dict[str, Any]:
    """Return the ``domain`` block of a bundle from its training records.

    Parameters
    ----------
    records : list of Record
        Training images (a seeded sample of ``sample`` is read).
    cfg : DataConfig
        Where they came from (the label table's format and view column).
    declared : dict, optional
        Fields the caller knows better (``modalities``, ``body_parts``,
        ``views``, ``description``); they replace what the data says.
    preprocess : dict, optional
        The bundle's preprocessing: the minimum size is never above its
        resize side (the model is trained at that size).
    """
    from medviewer.inference.applicability import facts_from_pixels, image_facts

    rng = np.random.default_rng(0)
    chosen = [records[i] for i in sorted(rng.choice(len(records), min(sample, len(records)), replace=False))]
    facts = []
    for record in chosen:
        try:
            facts.append(facts_from_pixels(record.image, "npz") if record.image is not None
                         else image_facts(record.path))
        except Exception:  # a file the training read but the header reader cannot: skip it here
            continue
    modalities = sorted({f.modality for f in facts if f.modality})
    body_parts = sorted({f.body_part for f in facts if f.body_part})
    views = sorted({f.view for f in facts if f.view}) or _table_views(cfg)
    formats = sorted({f.source for f in facts})
    is_cxr14 = cfg.fmt == "cxr14" or (cfg.labels and "Data_Entry" in str(cfg.labels))
    if not modalities:  # PNG/JPEG/npz: the app reads them as radiographs
        modalities = ["CR", "DX"]
    if not body_parts and is_cxr14:
        body_parts = ["CHEST"]
    if not views and is_cxr14:
        views = ["AP", "PA"]
    sides = [min(f.rows, f.columns) for f in facts if f.rows and f.columns]
    min_size = min(sides) if sides else None
    if preprocess:
        model_side = int(preprocess.get("resize") or preprocess["input_size"])
        min_size = model_side if min_size is None else min(min_size, model_side)
    domain = {
        "modalities": modalities,
        "body_parts": body_parts,
        "views": views,
        "photometric": sorted({f.photometric for f in facts if f.photometric}) or ["MONOCHROME2"],
        "bits_stored": sorted({int(f.bits_stored) for f in facts if f.bits_stored}),
        "min_size": min_size,
        "formats": formats,
        "colour": any(f.colour for f in facts),
        "sampled_images": len(facts),
        "source": "read from the training images' headers"
                  + ("; chest and view from the ChestX-ray14 table" if is_cxr14 else ""),
    }
    domain.update(declared or {})
    if "description" not in domain:
        from medviewer.inference.applicability import Domain

        domain["description"] = Domain.from_metadata({"domain": domain}).describe()
    return domain


@torch.no_grad()
def embed(model, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """Return l2-normalised pre-logit embeddings (N, d) of preprocessed images, as the app computes them."""
    model.eval()
    out = []
    for start in range(0, len(images), batch):
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch], np.float32))
        out.append(model.pre_logits(model.forward_features(x)).numpy())
    emb = np.concatenate(out).astype(np.float64)
    return (emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def displayed(records) -> list[np.ndarray]:
    """Return the records' images as the app displays them (the input of ``preprocess_image``)."""
    from models.dataset import raw_image

    return [raw_image(r) for r in records]


def preprocessed(images: list[np.ndarray], preprocess: dict[str, Any]) -> np.ndarray:
    """Return display images preprocessed by the app's own function (N, C, S, S)."""
    from medviewer.inference.preprocess import PreprocessConfig, preprocess_image

    pre = PreprocessConfig.from_metadata(preprocess)
    return np.stack([preprocess_image(im, pre) for im in images]).astype(np.float32)


def ood_summary(model, train_images: np.ndarray, held_images: np.ndarray, folder: Path,
                k: int = OOD_K, threshold: float = THRESHOLD_PERCENTILE,
                train_display: list[np.ndarray] | None = None,
                held_display: list[np.ndarray] | None = None) -> dict[str, Any]:
    """Write the reference embeddings (and pixel signatures) into ``folder``; return the ``ood`` block.

    ``train_display`` / ``held_display``: the same images as displayed, for the
    pixel half of the check (``medviewer.inference.ood.pixel_signatures``).
    """
    from medviewer.fileio import sha256_file
    from medviewer.inference.ood import OodReference, knn_distance, percentile_of, pixel_signatures

    reference = embed(model, train_images).astype(np.float16)
    path = folder / OOD_FILE
    np.save(path, reference, allow_pickle=False)
    ref = OodReference(reference.astype(np.float32), np.zeros(101), k, threshold)
    held = embed(model, held_images)
    scores = ref.scores(held)
    quantiles = np.percentile(scores, np.arange(101))
    best = np.percentile(ref.best_similarity(held), np.arange(101))
    pixels = None
    if train_display and held_display:
        pixel_ref = pixel_signatures(train_display).astype(np.float16)
        np.save(folder / PIXEL_FILE, pixel_ref, allow_pickle=False)
        pixel_scores = knn_distance(pixel_signatures(held_display), pixel_ref.astype(np.float32), k)
        pixel_q = np.percentile(pixel_scores, np.arange(101))
        combined = np.maximum(percentile_of(scores, quantiles), percentile_of(pixel_scores, pixel_q))
        pixels = {"file": PIXEL_FILE, "sha256": sha256_file(folder / PIXEL_FILE),
                  "signature": "display image as a 16x16 grey thumbnail, centred, unit length",
                  "quantiles": [float(f"{q:.6g}") for q in pixel_q],
                  "combined_quantiles": [float(f"{q:.6g}") for q in np.percentile(combined, np.arange(101))]}
    block = {
        "file": OOD_FILE,
        "sha256": sha256_file(path),
        "method": f"mean cosine distance to the {k} nearest training embeddings (Sun et al., ICML 2022)",
        "k": k,
        "reference_embeddings": int(len(reference)),
        "held_out_images": int(len(held)),
        "quantiles": [float(f"{q:.6g}") for q in quantiles],
        "best_match_quantiles": [float(f"{q:.6g}") for q in best],
        "threshold_percentile": threshold,
        "threshold_score": float(f"{np.interp(threshold, np.arange(101), quantiles):.6g}"),
        "threshold_choice": f"the {threshold:g}th percentile of the held-out in-domain scores: "
                            f"{100 - threshold:g}% of in-domain images are flagged",
    }
    if pixels:
        block["pixels"] = pixels
        block["method"] += "; combined with the same k-NN score on 16x16 pixel signatures (max of the two percentiles)"
    return block


def add_applicability(state: dict[str, Any], model, folder: Path, *, declared: dict[str, Any] | None = None,
                      reference: int = 512, held_out: int = 400, log=print) -> dict[str, Any]:
    """Return the ``domain`` and ``ood`` metadata blocks (writing the reference file into ``folder``).

    When the training data cannot be read, the domain comes from ``declared``
    alone and no OOD summary is written (the app then says it cannot tell).
    """
    try:
        train, held, cfg = training_records(state)
    except Exception as exc:  # the data moved: the bundle says what it knows
        log(f"domain/ood: training data not readable ({type(exc).__name__}: {exc})")
        return {"domain": {**(declared or {}), "source": "declared (training data not readable)"}}
    domain = describe_domain(train, cfg, declared, state.get("preprocess"))
    rng = np.random.default_rng(0)
    pick_train = [train[i] for i in sorted(rng.choice(len(train), min(reference, len(train)), replace=False))]
    pick_held = [held[i] for i in sorted(rng.choice(len(held), min(held_out, len(held)), replace=False))]
    train_display, held_display = displayed(pick_train), displayed(pick_held)
    ood = ood_summary(model, preprocessed(train_display, state["preprocess"]),
                      preprocessed(held_display, state["preprocess"]), folder,
                      train_display=train_display, held_display=held_display)
    log(f"domain: {domain['description']}; ood: {ood['reference_embeddings']} reference embeddings, "
        f"threshold score {ood['threshold_score']}")
    return {"domain": domain, "ood": ood}

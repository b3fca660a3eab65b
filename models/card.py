"""Write a bundle's model card (``card.md``): intended use, data, metrics, known limits."""

from __future__ import annotations

from typing import Any

DEFAULT_USE = (
    "Research and teaching: finding similar cases, exploring attention maps, and "
    "demonstrating MedViewer. Not a medical device; not for diagnosis."
)
DEFAULT_LIMITS = [
    "Trained on the data described above only; performance elsewhere is unknown.",
    "Probabilities are not calibrated for any clinical population.",
    "Attention maps show where the model looked, not why a finding is present.",
]


def render_card(meta: dict[str, Any], extra_sections: dict[str, str] | None = None) -> str:
    """Return the Markdown model card for a bundle's metadata.

    Parameters
    ----------
    meta : dict
        The bundle's ``metadata.json`` content.
    extra_sections : dict, optional
        Title -> Markdown body, appended (e.g. an evaluation on a fresh set).
    """
    card = meta.get("card", {})
    pre, arch, data = meta["preprocessing"], meta["architecture"], meta.get("training_data", {})
    lines = [f"# {meta.get('name', 'Model')}", ""]
    if card.get("summary"):
        lines += [card["summary"], ""]
    lines += ["## Intended use", "", card.get("intended_use", DEFAULT_USE), ""]
    lines += [
        "## Model", "",
        f"- Task: {meta['task']} over {', '.join(meta['labels'])}",
        f"- Architecture: ViT ({arch.get('timm_model')}), patch {arch.get('patch_size')}, grid "
        f"{'x'.join(map(str, arch.get('grid', [])))}, depth {arch.get('depth')}, heads "
        f"{arch.get('num_heads')}, width {arch.get('embed_dim')}, positional encoding "
        f"{arch.get('pos_embed')}, {arch.get('parameters', 0):,} parameters",
        f"- Embedding: {meta['embedding']['dim']}-d pre-logits ({meta['embedding']['metric']} similarity)",
        f"- Outputs: {', '.join(_output_names(meta))}",
        "",
        "## Preprocessing", "",
        f"Displayed image (after modality LUT, window, MONOCHROME1 inversion) -> [0, 1] "
        f"({pre['window_policy']} policy) -> shorter side {pre['resize']} px ({pre.get('interpolation')}) "
        f"-> centre crop {pre['input_size']} px -> {pre['channels']} channel(s), "
        f"(x - {pre['mean'][0]:.4f}) / {pre['std'][0]:.4f}. "
        "The same code (`medviewer.inference.preprocess`) runs in training and in the app.",
        "",
        "## Training data", "",
        *([card["training_data"], ""] if card.get("training_data") else []),
        str(data.get("description") or data.get("source") or "not recorded"),
        "",
    ]
    images, patients = data.get("images") or {}, data.get("patients") or {}
    if images:
        before = images.get("train_before_balancing")
        lines += [
            f"Images: train {images.get('train')}"
            + (f" (of {before} before balancing)" if before and before != images.get("train") else "")
            + f", validation {images.get('val')}, test {images.get('test')}"
            + (f"; patients: train {patients.get('train')}, validation {patients.get('val')}, "
               f"test {patients.get('test')}" if patients else ""),
            "",
        ]
    if data.get("counts"):
        lines += ["Positives/negatives (or images per class) per split:", ""]
        for split, counts in data["counts"].items():
            lines.append(f"- {split}: " + ", ".join(f"{k} {_count(v)}" for k, v in counts.items()))
        lines.append("")
    recipe = meta.get("recipe", {})
    if recipe:
        lines += ["## Recipe", "", "```", *[f"{k}: {v}" for k, v in recipe.items()], "```", ""]
    metrics = meta.get("metrics", {})
    if metrics:
        lines += ["## Metrics", ""]
        for split in ("val", "test"):
            if metrics.get(split):
                lines.append(f"- {split}: " + _format_metrics(metrics[split]))
        lines.append("")
    parity = meta.get("export_checks", {})
    if parity:
        lines += ["## Export checks (ONNX Runtime vs torch)", ""]
        lines += [f"- {k}: {v}" for k, v in parity.items()]
        lines.append("")
    lines += trust_sections(meta)
    limits = card.get("limits", DEFAULT_LIMITS)
    lines += ["## Known limits", "", *[f"- {item}" for item in limits], ""]
    for title, body in (extra_sections or {}).items():
        lines += [f"## {title}", "", body.strip(), ""]
    versions = meta.get("versions", {})
    if versions:
        lines += ["## Versions", "", ", ".join(f"{k} {v}" for k, v in versions.items()), ""]
    lines += [f"model.onnx sha256: `{meta['model_sha256']}`", ""]
    return "\n".join(lines)


def _count(value: Any) -> str:
    if isinstance(value, dict) and "pos" in value:
        return f"{value['pos']}+/{value['neg']}-"
    if isinstance(value, dict) and "n" in value:
        return str(value["n"])
    return str(value)


def _output_names(meta: dict[str, Any]) -> list[str]:
    out = meta["outputs"]
    names = [out["logits"]] + [out[k] for k in ("embedding", "tokens") if out.get(k)]
    attn = out.get("attention", [])
    if attn:
        names.append(f"{attn[0]}..{attn[-1]} (attention per block)")
    return names


def _format_metrics(values: dict[str, Any]) -> str:
    keep = {k: v for k, v in values.items() if not k.startswith(("n_pos", "n_neg", "score"))}
    return ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in keep.items())


def trust_sections(meta: dict[str, Any]) -> list[str]:
    """Return the card's lines on the model's domain, its out-of-distribution check and Grad-CAM."""
    lines: list[str] = []
    domain = meta.get("domain")
    if domain:
        lines += ["## Domain (the images it applies to)", "",
                  f"Trained on {domain.get('description', 'images')}. The app checks each image's header "
                  "against this before showing any output and says when it does not apply.", ""]
        for key in ("modalities", "body_parts", "views", "photometric", "bits_stored", "min_size", "formats"):
            if domain.get(key) not in (None, []):
                value = domain[key]
                lines.append(f"- {key.replace('_', ' ')}: {', '.join(map(str, value)) if isinstance(value, list) else value}")
        if domain.get("source"):
            lines.append(f"- source: {domain['source']}")
        lines.append("")
    ood = meta.get("ood")
    if ood:
        lines += ["## Out-of-distribution check", "",
                  f"{ood.get('method')}; reference: {ood.get('reference_embeddings')} training embeddings "
                  f"(float16, `{ood.get('file')}`); calibrated on {ood.get('held_out_images')} held-out in-domain "
                  f"images. \"Unusual for this model\" at percentile >= {ood.get('threshold_percentile')} "
                  f"({ood.get('threshold_choice')}).", ""]
        evaluation = ood.get("evaluation") or {}
        if any(isinstance(v, dict) for v in evaluation.values()):
            from models.ood_eval import ood_eval_text

            lines += [f"Measured on real images (in-domain: {evaluation.get('in_domain', 'held-out images')}):", "",
                      ood_eval_text({k: v for k, v in evaluation.items() if isinstance(v, dict)}), ""]
        elif evaluation.get("note"):
            lines += [f"AUROC {evaluation['note']}.", ""]
        else:
            lines += ["AUROC on real out-of-distribution images: not measured yet (`python -m models.ood_eval`).", ""]
    gradcam = meta.get("gradcam")
    if gradcam:
        parity = gradcam.get("parity", {})
        lines += ["## Grad-CAM", "",
                  f"`{gradcam.get('file')}` returns the {gradcam.get('layer')} activations and the gradient of a "
                  "chosen class logit with respect to them (ONNX Runtime, no torch); the app forms "
                  f"{gradcam.get('formula')}. Parity with torch autograd Grad-CAM on the same weights "
                  f"({parity.get('reference')}): per-image Pearson r min {parity.get('pearson_min')}, median "
                  f"{parity.get('pearson_median')} over {parity.get('n_maps')} maps ({parity.get('limit')}).", ""]
    elif meta.get("domain") is not None:
        lines += ["## Grad-CAM", "", "Not exported for this architecture: the app offers occlusion instead.", ""]
    return lines

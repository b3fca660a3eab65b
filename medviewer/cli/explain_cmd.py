"""``medviewer explain`` and ``medviewer explain-check``: saliency maps and their trust checks.

``explain`` writes one map: ``--out FILE.npy`` holds the map at the image's
pixel size (float32, values in [0, 1]); ``--out FILE.png`` is the image with
the overlay, a colour bar and the method in words.  ``explain-check`` runs
the model-randomisation sanity check and the deletion/insertion scores on
images, and with ``--dataset`` the lesion-mask figures on a synthetic set.
"""

from __future__ import annotations

from pathlib import Path

from medviewer.cli.output import emit
from medviewer.explain.maps import METHODS, SINGLE_IMAGE_METHODS

METHOD_CHOICES = list(METHODS)
# The trust checks run by default; Grad-CAM is asked for by name (older bundles lack its graph).
DEFAULT_CHECK_METHODS = ("rollout", "attention", "occlusion")


def _add_map_options(parser) -> None:
    parser.add_argument("--label", help="occlusion, gradcam: the label explained (default: the top-scoring one)")
    parser.add_argument("--fallback-occlusion", action="store_true",
                        help="gradcam on a bundle without the gradient graph: compute occlusion and say so "
                             "(default: exit 2 with the reason)")
    parser.add_argument("--fusion", choices=["mean", "max", "min"], default="mean",
                        help="rollout: head fusion (default mean)")
    parser.add_argument("--discard", type=float, default=0.0, metavar="R",
                        help="rollout: share of the lowest attention weights dropped per block (0..0.99)")
    parser.add_argument("--block", type=int, default=-1, help="attention: block (default: the last)")
    parser.add_argument("--head", type=int, help="attention: head (default: mean of the heads)")
    parser.add_argument("--window", type=int, default=2, help="occlusion: window side in patches (2)")
    parser.add_argument("--stride", type=int, default=1, help="occlusion: window step in patches (1)")
    parser.add_argument("--fill", choices=["mean", "blur"], default="mean",
                        help="occlusion: fill the window with the training mean grey (default) or "
                             "a blurred copy of itself")
    parser.add_argument("--provider", default="auto", help="auto (default), cpu, cuda, ...")
    parser.add_argument("--frame", type=int, default=None,
                        help="frame of a multi-frame image (required when the image has several)")
    parser.add_argument("--json", action="store_true")


def register(subparsers) -> None:
    """Add the ``explain`` and ``explain-check`` subcommands."""
    p = subparsers.add_parser(
        "explain", help="write an attention or saliency map of an image (PNG overlay or .npy)",
        description="Write an attention or saliency map. Maps show model behaviour, not lesion "
                    "localisation.")
    p.add_argument("bundle", metavar="BUNDLE", help="model bundle folder")
    p.add_argument("image", metavar="IMAGE", help="DICOM, PNG or JPEG file")
    p.add_argument("--method", choices=METHOD_CHOICES, default="rollout")
    p.add_argument("--out", required=True, metavar="FILE",
                   help=".png: the image with the overlay and a colour bar; .npy: the map at the image's "
                        "pixel size, float32 in [0, 1]")
    p.add_argument("--other", metavar="IMAGE", help="similarity: the image compared with IMAGE")
    p.add_argument("--other-out", metavar="FILE",
                   help="similarity: where the other image's map goes (default: OUT with '-other' added)")
    p.add_argument("--opacity", type=float, default=0.5, help="PNG: overlay opacity (0.5)")
    p.add_argument("--threshold", type=float, default=0.0, help="PNG: values below it are not coloured")
    p.add_argument("--faithfulness", action="store_true",
                   help="also report deletion/insertion areas (Petsiuk et al. 2018)")
    _add_map_options(p)
    p.set_defaults(func=run_explain)

    c = subparsers.add_parser(
        "explain-check",
        help="sanity checks of saliency maps: randomised weights, deletion/insertion, lesions",
        description="Model-randomisation check (Adebayo et al. 2018: maps of the trained model vs a copy "
                    "with random weights; Spearman and SSIM near 0 = the map depends on the learned "
                    "weights), deletion/insertion areas on IMAGEs, and with --dataset the share of each "
                    "map inside the lesion masks of a synthetic dataset against random maps.")
    c.add_argument("bundle", metavar="BUNDLE", help="model bundle folder")
    c.add_argument("images", nargs="*", metavar="IMAGE", help="DICOM, PNG or JPEG files")
    c.add_argument("--method", action="append", choices=list(SINGLE_IMAGE_METHODS),
                   help="method to check (repeatable; default: "
                        f"{', '.join(DEFAULT_CHECK_METHODS)})")
    c.add_argument("--scope", choices=["all", "head", "cascade"], default="all",
                   help="randomise all weights (default), only the classification head, or cascade: "
                        "block by block from the top (head, last block, ..., all)")
    c.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    c.add_argument("--no-faithfulness", action="store_true", help="skip deletion/insertion")
    c.add_argument("--dataset", metavar="DIR",
                   help="synthetic dataset folder (labels.csv with mask_path): lesion-mask figures")
    c.add_argument("--limit", type=int, help="--dataset: at most this many films")
    _add_map_options(c)
    c.set_defaults(func=run_check)


def _request(args, method: str):
    from medviewer.explain import ExplainRequest

    return ExplainRequest(method, fusion=args.fusion, discard_ratio=args.discard, block=args.block,
                          head=args.head, label=args.label, window=args.window, stride=args.stride,
                          fill=args.fill, fallback=bool(getattr(args, "fallback_occlusion", False)))


def _other_path(out: Path, given: str | None) -> Path:
    return Path(given) if given else out.with_name(f"{out.stem}-other{out.suffix}")


def run_explain(args) -> int:
    """Compute one map and write it; print its description."""
    from medviewer.errors import MedViewerError
    from medviewer.services.explain import display_image, open_explainer, save_map

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".npy"):
        raise MedViewerError(f"--out must end in .png or .npy, not '{out.suffix}'", path=out)
    if args.method == "similarity" and not args.other:
        raise MedViewerError("--method similarity compares two images", hint="add --other IMAGE")
    from medviewer.inference.applicability import assess, image_facts

    explainer = open_explainer(args.bundle, provider=args.provider)
    facts = image_facts(args.image)
    image = display_image(args.image, args.frame)
    if args.label is not None and args.label not in explainer.labels:
        raise MedViewerError(f"unknown label {args.label!r}", path=args.bundle,
                             hint=f"the model's labels are {', '.join(explainer.labels)}")
    applicability = assess(explainer.bundle, facts, explainer.outputs(image, ("embedding",)).embedding, image)
    try:
        request = _request(args, args.method)
        if args.method == "similarity":
            other_image = display_image(args.other)
            pair = explainer.explain_pair(image, other_image)
            explanation = pair.query
            other_out = _other_path(out, args.other_out)
            save_map(pair.other, other_image, other_out, opacity=args.opacity, threshold=args.threshold)
        else:
            explanation = explainer.explain(image, request)
    except ValueError as exc:  # a parameter out of range: say which, as a usage error
        raise MedViewerError(str(exc), hint="see `medviewer explain --help`") from exc
    notes = () if applicability.applicable and not applicability.unusual else (applicability.summary(),)
    save_map(explanation, image, out, opacity=args.opacity, threshold=args.threshold, notes=notes)
    payload = {"bundle": str(explainer.bundle.path), "image": args.image, "out": str(out),
               "provider": explainer.runner.provider, **applicability.to_dict(), **explanation.to_dict()}
    payload.pop("best_match", None)
    lines = [applicability.summary(), f"{explanation.title}: wrote {out} ({explanation.image_map.shape[1]}x"
             f"{explanation.image_map.shape[0]} px, {explanation.seconds * 1000:.0f} ms on "
             f"{explainer.runner.provider})"]
    if args.method == "similarity":
        payload["other"] = {"image": args.other, "out": str(other_out)}
        payload["embedding_similarity"] = round(pair.embedding_similarity, 6)
        lines.append(f"wrote {other_out}; embedding cosine {pair.embedding_similarity:.3f}")
    if explanation.label:
        lines.append(f"label {explanation.label}, logit {explanation.score:.3f}")
    if "note" in explanation.extra:
        lines.append(explanation.extra["note"])
    if "fallback" in explanation.extra:
        lines.append(explanation.extra["fallback"])
    if args.faithfulness:
        curves = explainer.faithfulness(image, explanation)
        payload["faithfulness"] = curves.to_dict()
        lines.append(f"deletion AUC {curves.deletion_auc:.3f} "
                     f"(random order {curves.random_deletion_auc:.3f}), "
                     f"insertion AUC {curves.insertion_auc:.3f} (random order "
                     f"{curves.random_insertion_auc:.3f})")
    lines.append("Maps show model behaviour, not lesion localisation.")
    emit(args.json, payload, "\n".join(lines))
    return 0


def verdict(rho: float) -> str:
    """Return the randomisation check's result in words for a mean Spearman correlation."""
    if abs(rho) < 0.3:
        return "clearly different: the map depends on the learned weights"
    if abs(rho) < 0.6:
        return "partly similar"
    return "similar: the map barely depends on the learned weights"


def run_check(args) -> int:
    """Run the randomisation check and deletion/insertion on images; lesion figures on a dataset."""
    from medviewer.errors import MedViewerError
    from medviewer.services.explain import (cascading_randomisation, display_image, lesion_figures,
                                            open_explainer, randomisation_check)

    if not args.images and not args.dataset:
        raise MedViewerError("nothing to check", hint="give IMAGE files, or --dataset DIR")
    explainer = open_explainer(args.bundle, provider=args.provider)
    methods = args.method or list(DEFAULT_CHECK_METHODS)
    payload: dict = {"bundle": str(explainer.bundle.path), "model_sha256": explainer.bundle.sha256}
    lines = [f"{explainer.bundle.name} on {explainer.runner.provider}"]
    if args.images:
        images = [display_image(path, args.frame) for path in args.images]
        payload["randomisation"], payload["faithfulness"] = [], []
        for method in methods:
            request = _request(args, method)
            if args.scope == "cascade":
                steps = cascading_randomisation(explainer, images, request, seed=args.seed)
                payload["randomisation"].append({"method": steps[0].method, "cascade": [
                    {**r.to_dict(), "verdict": verdict(r.mean_spearman)} for r in steps]})
                lines.append(f"{steps[0].method}: cascading randomisation (Spearman / SSIM vs trained)")
                lines.extend(f"    {r.scope:12} {r.mean_spearman:5.2f} / {r.mean_ssim:5.2f}  {verdict(r.mean_spearman)}"
                             for r in steps)
            else:
                result = randomisation_check(explainer, images, request, scope=args.scope, seed=args.seed)
                entry = {**result.to_dict(), "verdict": verdict(result.mean_spearman)}
                payload["randomisation"].append(entry)
                lines.append(f"{result.method}: randomised ({args.scope}) vs trained: Spearman "
                             f"{result.mean_spearman:.2f}, SSIM {result.mean_ssim:.2f} -> {entry['verdict']}")
            if args.no_faithfulness:
                continue
            for path, image in zip(args.images, images):
                explanation = explainer.explain(image, request)
                curves = explainer.faithfulness(image, explanation)
                payload["faithfulness"].append({"image": path, "method": explanation.title,
                                                **curves.to_dict()})
                lines.append(f"    {Path(path).name}: deletion {curves.deletion_auc:.3f} "
                             f"(random {curves.random_deletion_auc:.3f}), insertion "
                             f"{curves.insertion_auc:.3f} (random {curves.random_insertion_auc:.3f})")
    if args.dataset:
        figures = lesion_figures(explainer, args.dataset, [_request(args, m) for m in methods],
                                 limit=args.limit)
        payload["lesions"] = figures.to_dict()
        lines.append(f"lesion masks ({figures.images} films with one finding): share of map mass inside "
                     "the mask vs a random map")
        lines.append(figures.text())
    emit(args.json, payload, "\n".join(lines))
    return 0

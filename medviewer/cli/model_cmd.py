"""``medviewer model``: check a model bundle and show its card."""

from __future__ import annotations

import sys

from medviewer.cli.output import emit


def register(subparsers) -> None:
    """Add the ``model`` subcommand group (``check``, ``card``)."""
    parser = subparsers.add_parser("model", help="check a model bundle or show its card")
    actions = parser.add_subparsers(dest="model_action", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="validate a bundle and run it once")
    check.add_argument("bundle", metavar="BUNDLE",
                       help="bundle folder (model.onnx + metadata.json)")
    check.add_argument("--provider", default="auto",
                       help="auto (default), cpu, cuda, tensorrt, coreml or directml")
    check.add_argument("--variant", choices=["fp32", "fp16", "int8"], default="fp32")
    check.add_argument("--strict", action="store_true",
                       help="fail when the requested provider cannot run the model")
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=run_check)
    card = actions.add_parser("card", help="print the bundle's model card")
    card.add_argument("bundle", metavar="BUNDLE")
    card.set_defaults(func=run_card)


def run_check(args) -> int:
    """Load and validate a bundle, run one blank image, and report provider and checksum."""
    from medviewer.errors import MedViewerError
    from medviewer.inference import ModelRunner, describe, load_bundle
    from medviewer.inference.runner import check_runs

    try:
        bundle = load_bundle(args.bundle)
        runner = ModelRunner(bundle, args.provider, strict=args.strict,
                             variant=None if args.variant == "fp32" else args.variant)
        size = bundle.preprocess.input_size
        check_runs(runner)
    except MedViewerError as exc:
        if args.json:
            emit(True, {"ok": False, "error": str(exc), "error_type": type(exc).__name__,
                        "bundle": args.bundle}, "")
        sys.stderr.write(f"medviewer: error: {exc}\n")
        return 2
    info = {"ok": True, **describe(runner), "variants": sorted(bundle.variants)}
    text = "\n".join([
        f"OK  {bundle.name}",
        f"    bundle    {bundle.path}",
        f"    task      {bundle.task}: {', '.join(bundle.labels)}",
        f"    input     {size} px, {bundle.preprocess.channels} channel(s)",
        f"    provider  {runner.provider_report().message}",
        f"    sha256    {runner.model_sha256}",
        *(f"    warning   {w}" for w in bundle.warnings),
    ])
    emit(args.json, info, text)
    return 0


def run_card(args) -> int:
    """Print the model card (Markdown)."""
    from medviewer.inference import load_bundle

    bundle = load_bundle(args.bundle, verify_graph=False)
    text = bundle.card_text or f"{bundle.name}: this bundle has no card.md"
    sys.stdout.write(text.rstrip("\n") + "\n")
    return 0

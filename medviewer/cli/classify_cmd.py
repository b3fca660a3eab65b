"""``medviewer classify``: per-label probabilities for images, with a model bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medviewer.cli.output import emit


def register(subparsers) -> None:
    """Add the ``classify`` subcommand."""
    parser = subparsers.add_parser("classify", help="classify images with a model bundle")
    parser.add_argument("bundle", metavar="BUNDLE",
                        help="bundle folder (model.onnx + metadata.json)")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="DICOM/PNG/JPEG files or folders")
    parser.add_argument("--provider", default="auto",
                        help="auto (default), cpu, cuda, tensorrt, coreml or directml")
    parser.add_argument("--variant", choices=["fp32", "fp16", "int8"], default="fp32")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def load_display_image(path: str | Path) -> np.ndarray:
    """Return an image's first frame as the viewer displays it (uint8 grey or RGB).

    DICOM: (0028,1052) rescale / Modality LUT, the header's (0028,1050)
    window (or a percentile window), MONOCHROME1 inversion, all through
    ``medviewer.dicom.pixels.decode`` and ``medviewer.display.render``, so a
    model sees exactly what the reader sees.  PNG/JPEG: their grey values.
    """
    from medviewer.dicom.pixels import decode
    from medviewer.dicom.sources import FileRef
    from medviewer.display.render import render_frame

    ref = path if isinstance(path, FileRef) else FileRef.for_path(path)
    return render_frame(decode(ref), 0)


def run(args) -> int:
    """Classify every readable image; list unreadable ones; exit 2 when none could be read."""
    from medviewer.dicom.sources import iter_files
    from medviewer.errors import ImageReadError, MedViewerError
    from medviewer.inference import ModelRunner, load_bundle
    from medviewer.inference.runner import check_runs

    from medviewer.inference.applicability import assess, image_facts
    from medviewer.inference.postprocess import task_outputs

    bundle = load_bundle(args.bundle)
    runner = ModelRunner(bundle, args.provider, batch_size=args.batch_size,
                         variant=None if args.variant == "fp32" else args.variant)
    check_runs(runner)  # the checks of `model check`, before any image is read
    names, images, facts, skipped = [], [], [], []
    for ref in iter_files(args.paths):
        try:
            facts.append(image_facts(ref))
            images.append(load_display_image(ref))
            names.append(ref.display)
        except ImageReadError as exc:
            if len(facts) > len(images):
                facts.pop()
            skipped.append({"path": ref.display, "reason": exc.reason, "detail": exc.message})
    wanted = ("logits", "embedding") if bundle.outputs.get("embedding") else ("logits",)
    raw = runner.run(images, wanted) if images else {}
    results = ([{label: float(v) for label, v in zip(bundle.labels, row)}
                for row in task_outputs(raw["logits"], bundle.task)] if images else [])
    checks = [assess(bundle, f, raw["embedding"][i:i + 1] if "embedding" in raw else None, images[i])
              for i, f in enumerate(facts)]
    payload = {
        "bundle": str(bundle.path),
        "model": bundle.name,
        "sha256": runner.model_sha256,
        "task": bundle.task,
        "labels": bundle.labels,
        "provider": runner.provider,
        "provider_message": runner.provider_report().message,
        "results": [{"path": n, **c.to_dict(), "probabilities": r}
                    for n, r, c in zip(names, results, checks)],
        "skipped": skipped,
    }
    kind = "value" if bundle.task == "regression" else "probability"
    lines = [f"{bundle.name} ({runner.provider_report().message}); {kind} per label"]
    for name, row, check in zip(names, results, checks):
        lines.append(name)
        lines.append(f"    {check.summary()}")
        lines.extend(f"    {label:<24} {value:8.4f}" for label, value in row.items())
    lines.extend(f"skipped {s['path']}: {s['reason']}" for s in skipped)
    emit(args.json, payload, "\n".join(lines))
    if not images:
        raise MedViewerError("no readable image among the paths given",
                             hint="pass DICOM, PNG or JPEG files, or folders holding them")
    return 0

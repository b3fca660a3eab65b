"""Milliseconds per map for ViT-S/16 at 224 px on this CPU, per method, against plain inference.

Run: ``python benchmarks/bench_explain.py [--threads N] [--repeats R] [--json OUT]``.

The model is timm's ``vit_small_patch16_224`` (random weights: speed does not
depend on them) exported with ``models.export.export_onnx`` (the graph bundles
carry: logits, embedding, tokens, attention of all 12 blocks) into a bundle
folder and run with the app's session settings through ``medviewer.explain``.
The image is a 512 x 512 synthetic radiograph, and every timing is end to end
for one image: preprocessing, the model run (its cache cleared first), the map
and its upsampling to 512 x 512.

Lines:

- ``inference``: what "classify" costs: preprocess + run asking for logits;
- ``rollout`` (mean fusion) and ``rollout max/0.9``: one run asking for logits and
  the 12 attention maps, then rollout; target: < 10 % more than ``inference``;
- ``attention``: the last block's raw class-token attention;
- ``similarity``: two images (two runs) and the patch matching;
- ``gradcam``: the Grad-CAM graph (``models/gradcam_graph.py``: forward + the
  written-out backward of the last block) plus the plain run for the label's
  logit; target: at most 4x ``inference`` (and the ratio to occlusion);
- ``occlusion``: 2 x 2-patch windows, stride 1 = 225 masked copies in batches of 32;
- ``faithfulness``: deletion + insertion, 32 steps, 3 random orders (264 runs).

Timings are medians of ``--repeats`` runs, methods interleaved in a random
order so that other load on a shared machine hits all of them alike; the
fastest run is printed too (the least disturbed one).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import cpu_name

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def write_bundle(folder: Path, model_name: str, size: int) -> Path:
    """Export a random-weight timm ViT as a bundle folder the app can load."""
    import torch

    from medviewer.inference.bundle import sha256_file
    from medviewer.inference.testing import toy_metadata
    from models.export import export_onnx
    from models.graph import ExportGraph
    from models.vit import ArchConfig, architecture_summary, build_model

    torch.manual_seed(0)
    model = build_model(ArchConfig(model=model_name, num_outputs=3, img_size=size)).eval()
    folder.mkdir(parents=True, exist_ok=True)
    export_onnx(ExportGraph(model), folder / "model.onnx", {"input_size": size, "channels": 3}, 17)
    arch = architecture_summary(model)
    meta = toy_metadata(labels=["A", "B", "C"], task="multilabel", input_size=size, resize=int(size * 8 / 7),
                        channels=3, patch_size=arch["patch_size"], embed_dim=arch["embed_dim"],
                        depth=arch["depth"], num_heads=arch["num_heads"],
                        sha256=sha256_file(folder / "model.onnx"))
    meta["name"] = f"{model_name} (random weights, benchmark)"
    meta["architecture"] = arch
    from models.gradcam_graph import add_gradcam_graph

    images = np.random.default_rng(0).standard_normal((2, 3, size, size)).astype(np.float32)
    block = add_gradcam_graph(model, folder, {"input_size": size, "channels": 3}, images, log=lambda line: None)
    if block:
        meta["gradcam"] = block
    (folder / "metadata.json").write_text(json.dumps(meta, indent=2))
    return folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="vit_small_patch16_224")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--threads", type=int, help="default: physical cores (as the app)")
    p.add_argument("--repeats", type=int, default=15, help="timed runs per fast method")
    p.add_argument("--slow-repeats", type=int, default=3, help="timed runs of occlusion and faithfulness")
    p.add_argument("--json", help="write the figures to this file")
    args = p.parse_args(argv)

    from medviewer.explain import Explainer, ExplainRequest
    from medviewer.inference import ModelRunner, load_bundle
    from medviewer.inference.preprocess import preprocess_image
    from medviewer.inference.session import physical_core_count
    from medviewer.synthetic import render_chest, sample_anatomy, sample_findings

    threads = args.threads or physical_core_count()
    work = Path(tempfile.mkdtemp(prefix="bench-explain-"))
    bundle = load_bundle(write_bundle(work / "bundle", args.model, args.size))
    runner = ModelRunner(bundle, "cpu", threads=threads)
    explainer = Explainer(runner)
    rng = np.random.default_rng(0)
    images = []
    for _ in range(2):
        chest = render_chest(sample_anatomy(rng, sample_findings(rng)), 512, rng)
        images.append((chest.density * 255).astype(np.uint8))
    image, other = images

    def inference():
        runner.run_tensor(preprocess_image(image, bundle.preprocess)[None], ("logits",))

    def fresh(fn):
        def run():
            explainer.clear_cache()  # every map pays for its own model run
            fn()
        return run

    fast = {
        "inference": inference,
        "rollout": fresh(lambda: explainer.explain(image, ExplainRequest("rollout"))),
        "rollout max/0.9": fresh(lambda: explainer.explain(
            image, ExplainRequest("rollout", fusion="max", discard_ratio=0.9))),
        "attention": fresh(lambda: explainer.explain(image, ExplainRequest("attention"))),
        "similarity": fresh(lambda: explainer.explain_pair(image, other)),
        "gradcam": fresh(lambda: explainer.explain(image, ExplainRequest("gradcam", label="A"))),
    }
    slow = {
        "occlusion": fresh(lambda: explainer.explain(image, ExplainRequest("occlusion", label="A"))),
        "faithfulness": lambda: explainer.faithfulness(
            image, explainer.explain(image, ExplainRequest("rollout")), label="A"),
    }
    for fn in fast.values():  # warm-up: session, BLAS and scipy imports
        fn()
    timings: dict[str, list[float]] = {name: [] for name in [*fast, *slow]}
    names = list(fast)
    order_rng = np.random.default_rng(1)
    for _ in range(args.repeats):
        # A new random order every round: a method that always ran after another (e.g.
        # after a BLAS call whose threads still spin) would carry that one's after-effects.
        for name in order_rng.permutation(names):
            t0 = time.perf_counter()
            fast[name]()
            timings[name].append(1000 * (time.perf_counter() - t0))
    for _ in range(args.slow_repeats):
        for name, fn in slow.items():
            t0 = time.perf_counter()
            fn()
            timings[name].append(1000 * (time.perf_counter() - t0))
    median = {name: float(np.median(values)) for name, values in timings.items()}
    base = median["inference"]
    ratios = {name: value / base for name, value in median.items()}
    fastest = {name: float(np.min(values)) for name, values in timings.items()}
    print(f"{'method':18} {'ms/map':>9} {'x inference':>12} {'fastest':>9} {'x':>6}")
    for name in timings:
        print(f"{name:18} {median[name]:9.1f} {ratios[name]:12.2f} {fastest[name]:9.1f} "
              f"{fastest[name] / fastest['inference']:6.2f}")
    overhead = ratios["rollout"] - 1.0
    print(f"\nrollout adds {100 * overhead:+.1f} % to inference (target < +10 %): "
          f"{'met' if overhead < 0.10 else 'NOT met'}")
    gradcam = ratios["gradcam"]
    print(f"gradcam costs {gradcam:.2f}x inference (target <= 4x): {'met' if gradcam <= 4 else 'NOT met'}; "
          f"{median['occlusion'] / median['gradcam']:.0f}x faster than occlusion")
    print(f"{args.model} @ {args.size}px, {threads} threads, {cpu_name()}, image 512x512")
    if args.json:
        info = {"model": args.model, "size": args.size, "threads": threads, "cpu": cpu_name(),
                "python": platform.python_version(), "ms_per_map": median, "fastest_ms": fastest,
                "ratios": {k: round(v, 3) for k, v in ratios.items()},
                "samples": {k: [round(v, 2) for v in vs] for k, vs in timings.items()}}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(info, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

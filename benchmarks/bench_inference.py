"""Images per second of ViT-S/16 at 224 px: ONNX Runtime (fp32, int8) vs torch eager, same weights.

Run: ``python benchmarks/bench_inference.py [--threads N] [--seconds S] [--json OUT]``.

The ONNX model is the graph MedViewer bundles carry (``models.export``: logits,
embedding, tokens and every block's attention), run with the app's session
settings (``medviewer.inference.session``: intra-op threads = physical cores,
no spinning) and asked for logits and embedding, as classification and
retrieval do.  torch runs the timm model eagerly (fused attention) in
``inference_mode`` with the same number of threads.  int8 is ONNX Runtime's
dynamic quantisation of the same graph (``models.export`` writes it the same
way).  Targets (issue #3): ONNX Runtime >= torch eager at batch 16; int8 >=
1.8x fp32.  Where a CUDA device works, CUDA-provider figures are added.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def throughput(fn, batch: int, seconds: float, warmup: int = 2) -> float:
    """Return images/s of ``fn`` (one call = one batch): median over timed windows."""
    for _ in range(warmup):
        fn()
    rates = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rates) < 3:
        t0 = time.perf_counter()
        fn()
        rates.append(batch / (time.perf_counter() - t0))
    return float(np.median(rates))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="vit_small_patch16_224")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    p.add_argument("--threads", type=int, help="default: physical cores (as the app)")
    p.add_argument("--seconds", type=float, default=10.0, help="timed seconds per measurement")
    p.add_argument("--json", help="write the figures to this file")
    args = p.parse_args(argv)

    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from medviewer.inference.session import create_session, physical_core_count
    from models.export import export_onnx
    from models.graph import ExportGraph
    from models.vit import ArchConfig, build_model

    threads = args.threads or physical_core_count()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(ArchConfig(model=args.model, num_outputs=3, img_size=args.size)).eval()
    work = Path(tempfile.mkdtemp(prefix="bench-inference-"))
    fp32, int8 = work / "model.onnx", work / "model.int8.onnx"
    export_onnx(ExportGraph(model), fp32, {"input_size": args.size, "channels": 3}, 17)
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    sessions = {"ort_fp32": create_session(fp32, "cpu", threads=threads)[0],
                "ort_int8": create_session(int8, "cpu", threads=threads)[0]}
    cuda_session, report = create_session(fp32, "cuda", threads=threads)
    if report.provider == "CUDAExecutionProvider":
        sessions["ort_cuda_fp32"] = cuda_session
    rng = np.random.default_rng(0)
    results: dict[str, dict[int, float]] = {}
    for batch in args.batches:
        x = rng.standard_normal((batch, 3, args.size, args.size)).astype(np.float32)
        xt = torch.from_numpy(x)

        def torch_eager():
            with torch.inference_mode():
                model(xt)

        results.setdefault("torch_eager", {})[batch] = throughput(torch_eager, batch, args.seconds)
        for name, sess in sessions.items():
            run = lambda s=sess: s.run(["logits", "embedding"], {"image": x})  # noqa: E731
            results.setdefault(name, {})[batch] = throughput(run, batch, args.seconds)
        print(f"batch {batch}: " + ", ".join(f"{k} {v[batch]:.1f} img/s" for k, v in results.items()), flush=True)

    ratios = {}
    for batch in args.batches:
        ratios[f"ort_fp32/torch_eager@{batch}"] = results["ort_fp32"][batch] / results["torch_eager"][batch]
        ratios[f"ort_int8/ort_fp32@{batch}"] = results["ort_int8"][batch] / results["ort_fp32"][batch]
    info = {
        "model": args.model, "size": args.size, "threads": threads, "cpu": _cpu_name(),
        "python": platform.python_version(), "torch": torch.__version__, "onnxruntime": ort.__version__,
        "cuda_provider": report.message,
        "images_per_second": results, "ratios": {k: round(v, 3) for k, v in ratios.items()},
        "targets": {"ort_fp32/torch_eager@16": ">= 1.0", "ort_int8/ort_fp32@16": ">= 1.8"},
    }
    print("\nimages/s       " + "  ".join(f"batch {b:>3}" for b in args.batches))
    for name, row in results.items():
        print(f"{name:14} " + "  ".join(f"{row[b]:9.1f}" for b in args.batches))
    print()
    for k, v in ratios.items():
        print(f"{k:28} {v:6.2f}x")
    print(f"\n{args.model} @ {args.size}px, {threads} threads, {info['cpu']}; CUDA: {report.message}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(info, indent=2) + "\n")
    return 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())

"""Export a checkpoint as a model bundle: ``python -m models.export RUN/best.pt OUT_DIR``.

The bundle is built in a temporary folder and moved into place only after
every check passes (timm ``utils/onnx.py`` style, stricter):

1. the export graph (explicit attention) equals ``model(x)`` in torch;
2. ONNX Runtime, with the app's session settings, agrees with torch on random
   and real inputs at batch sizes 1 and N: logits max abs diff <= 1e-4,
   embedding cosine >= 0.9999 (every sample);
3. ``medviewer.inference.load_bundle`` accepts the folder and its runner
   reproduces the torch logits.

Optional variants are written only after their agreement with fp32 is
measured: ``--int8`` (dynamic quantisation of the MatMuls, :func:`quantize_int8`;
top-1 agreement >= 99%, mean embedding cosine >= 0.999) and ``--fp16`` (the same
limits).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medviewer.errors import MedViewerError
from models.card import render_card
from models.graph import ExportGraph, check_wrapper_matches
from models.train import model_from_checkpoint
from models.vit import ViTClassifier, architecture_summary

LOGITS_ATOL = 1e-4
EMBEDDING_COSINE = 0.9999
VARIANT_LIMITS = {"int8": {"top1": 0.99, "cosine": 0.999}, "fp16": {"top1": 0.99, "cosine": 0.999}}


class ExportCheckError(MedViewerError):
    """The exported model disagrees with torch; no bundle was written."""


def export_bundle(
    checkpoint: str | Path | dict[str, Any],
    out_dir: str | Path,
    *,
    name: str | None = None,
    opset: int = 17,
    fp16: bool = False,
    int8: bool = False,
    real_inputs: np.ndarray | None = None,
    card: dict[str, Any] | None = None,
    extra_sections: dict[str, str] | None = None,
    overwrite: bool = False,
    gradcam: bool = True,
    applicability: bool = True,
    domain: dict[str, Any] | None = None,
    log=print,
) -> dict[str, Any]:
    """Export a training checkpoint to a validated bundle folder.

    Parameters
    ----------
    checkpoint : path or dict
        ``best.pt`` written by ``models.train`` (or its loaded dict).
    out_dir : path
        The bundle folder to create.
    name : str, optional
        Display name (default: the folder name).
    opset : int
        ONNX opset (>= 17).
    fp16, int8 : bool
        Also write reduced-precision variants when they agree with fp32.
    real_inputs : np.ndarray, optional
        Extra preprocessed real images (N, C, H, W) for the checks; the
        checkpoint's own sample of validation images is always used.
    card : dict, optional
        ``summary``, ``intended_use``, ``limits`` for the model card.
    extra_sections : dict, optional
        More card sections (title -> Markdown).
    overwrite : bool
        Replace an existing bundle folder.
    gradcam : bool
        Also write the Grad-CAM graph (``models/gradcam_graph.py``) when it
        matches torch Grad-CAM (per-image Pearson r >= 0.99).
    applicability : bool
        Record the domain and the out-of-distribution summary from the
        training data (``models/trust_export.py``).
    domain : dict, optional
        Domain fields the caller knows better than the data (``modalities``,
        ``body_parts``, ``views``, ``description``).

    Returns
    -------
    dict
        The metadata written.

    Raises
    ------
    ExportCheckError
        A check failed; nothing was written.
    """
    if opset < 17:
        raise ValueError("opset must be 17 or later")
    state = checkpoint if isinstance(checkpoint, dict) else torch.load(checkpoint, map_location="cpu",
                                                                        weights_only=False)
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists; pass --overwrite to replace it")
    model = model_from_checkpoint(state)
    inputs = _check_inputs(state, real_inputs)
    check_wrapper_matches(model, torch.from_numpy(inputs["random"][:2]))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        onnx_path = tmp / "model.onnx"
        graph = ExportGraph(model)
        export_onnx(graph, onnx_path, state["preprocess"], opset)
        checks = parity_checks(graph, onnx_path, inputs)
        log("parity: " + ", ".join(f"{k} {v}" for k, v in checks.items()))
        meta = build_metadata(state, model, graph, onnx_path, opset, name or out_dir.name, checks, card)
        _write(tmp, meta, extra_sections)
        runner_diff = _check_through_app(tmp, graph, inputs)
        meta["export_checks"]["app_runner_logits_max_abs_diff"] = float(f"{runner_diff:.3g}")
        meta.update(trust_features(state, model, tmp, inputs, opset, gradcam=gradcam,
                                   applicability=applicability, domain=domain, log=log))
        for variant, wanted in (("fp16", fp16), ("int8", int8)):
            if wanted:
                _add_variant(variant, tmp, meta, inputs, log)
        _write(tmp, meta, extra_sections)
        from medviewer.inference import load_bundle

        load_bundle(tmp)  # the final folder must pass the app's own validation
        tmp.chmod(0o755)  # mkdtemp makes it private; a bundle is meant to be shared
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"wrote {out_dir} (sha256 {meta['model_sha256'][:12]}...)")
    return meta


def trust_features(state: dict[str, Any], model: ViTClassifier, folder: Path, inputs: dict[str, np.ndarray],
                   opset: int, *, gradcam: bool = True, applicability: bool = True,
                   domain: dict[str, Any] | None = None, log=print) -> dict[str, Any]:
    """Return the metadata blocks that let the app say whether it applies and explain a class.

    ``gradcam``: the Grad-CAM graph, checked against torch on the check inputs;
    ``domain`` and ``ood``: the training data's domain and embedding summary.
    Callable on any trained model and its checkpoint (issue 12's bundles too).
    """
    from models.gradcam_graph import add_gradcam_graph
    from models.trust_export import add_applicability

    blocks: dict[str, Any] = {}
    if gradcam:
        images = np.concatenate([inputs.get("real", inputs["random"])[:48], inputs["random"][:2]])
        block = add_gradcam_graph(model, folder, state["preprocess"], images, opset, log=log)
        if block:
            blocks["gradcam"] = block
    if applicability:
        blocks.update(add_applicability(state, model, folder, declared=domain, log=log))
    return blocks


def export_onnx(graph: ExportGraph, path: Path, preprocess: dict[str, Any], opset: int) -> None:
    """Write the ONNX file with a dynamic batch axis on every input and output."""
    size, channels = int(preprocess["input_size"]), int(preprocess["channels"])
    example = torch.randn(2, channels, size, size)
    names = graph.output_names
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter warns about tracing and about itself being
        # legacy; the parity checks below are what proves the graph right.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph, (example,), str(path), dynamo=False, opset_version=opset,
            input_names=["image"], output_names=names, do_constant_folding=True,
            dynamic_axes={n: {0: "batch"} for n in ["image", *names]},
        )
    import onnx

    onnx.checker.check_model(str(path))


def parity_checks(graph: ExportGraph, onnx_path: Path, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """Compare ONNX Runtime (the app's session settings, CPU) with torch; raise on disagreement."""
    from medviewer.inference.session import create_session

    session, _ = create_session(onnx_path, "cpu")
    names = graph.output_names
    worst = {"logits": 0.0, "cos": 1.0, "attn": 0.0, "tokens": 0.0}
    for kind, batch in inputs.items():
        for chunk in (batch[:1], batch):  # batch 1 and batch N: the batch axis must be dynamic
            with torch.no_grad():
                ref = [t.numpy() for t in graph(torch.from_numpy(chunk))]
            got = session.run(names, {"image": chunk})
            worst["logits"] = max(worst["logits"], float(np.abs(ref[0] - got[0]).max()))
            worst["cos"] = min(worst["cos"], float(_cosine(ref[1], got[1]).min()))
            worst["tokens"] = max(worst["tokens"], float(np.abs(ref[2] - got[2]).max()))
            worst["attn"] = max(worst["attn"], max(float(np.abs(r - g).max()) for r, g in zip(ref[3:], got[3:])))
    checks = {
        "inputs": {k: int(len(v)) for k, v in inputs.items()},
        "logits_max_abs_diff": float(f"{worst['logits']:.3g}"),
        "embedding_min_cosine": float(f"{worst['cos']:.8f}"),
        "tokens_max_abs_diff": float(f"{worst['tokens']:.3g}"),
        "attention_max_abs_diff": float(f"{worst['attn']:.3g}"),
        "limits": f"logits <= {LOGITS_ATOL:g}, embedding cosine >= {EMBEDDING_COSINE}",
    }
    if worst["logits"] > LOGITS_ATOL or worst["cos"] < EMBEDDING_COSINE:
        raise ExportCheckError(
            f"ONNX Runtime disagrees with torch: logits max abs diff {worst['logits']:.2e} "
            f"(limit {LOGITS_ATOL:g}), embedding min cosine {worst['cos']:.6f} (limit {EMBEDDING_COSINE})",
            path=onnx_path,
            hint="no bundle was written; check the opset, the torch/onnxruntime versions, or the model",
        )
    return checks


def build_metadata(state: dict[str, Any], model: ViTClassifier, graph: ExportGraph, onnx_path: Path,
                   opset: int, name: str, checks: dict[str, Any], card: dict[str, Any] | None) -> dict[str, Any]:
    """Return the bundle's ``metadata.json`` content."""
    from medviewer.inference.bundle import sha256_file
    from medviewer.inference.metadata import FORMAT_NAME, FORMAT_VERSION, external_data_hashes

    spec, cfg = state["spec"], state.get("train_config", {})
    depth = len(model.blocks)
    recipe = {k: cfg.get(k) for k in ("epochs", "batch_size", "lr", "weight_decay", "warmup_epochs",
                                     "degrees", "flip", "seed", "pretrained")}
    recipe.update({"optimizer": "AdamW, cosine schedule with linear warm-up",
                   "best_epoch": state["epoch"] + 1,
                   "split": cfg.get("data", {}).get("split"),
                   "balanced": state.get("data", {}).get("balanced"),
                   "loss": {"multilabel": "masked BCE per finding", "multiclass": "cross-entropy",
                            "regression": "L1 on standardised targets"}[spec["task"]]})
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "name": name,
        "task": spec["task"],
        "labels": list(spec["names"]),
        "label_groups": spec.get("groups", {}),
        "negatives": spec.get("negatives"),
        "preprocessing": state["preprocess"],
        "input": {"name": "image", "layout": "NCHW", "dtype": "float32"},
        "outputs": {"logits": "logits", "embedding": "embedding", "tokens": "tokens",
                    "attention": [f"attn_{i}" for i in range(depth)]},
        "embedding": {"dim": int(model.vit.embed_dim), "metric": "cosine", "normalise": "l2"},
        "saliency": {"attention_rollout": "attention", "token_similarity": "tokens",
                     "occlusion": "logits"},
        "architecture": architecture_summary(model),
        "model_file": "model.onnx",
        "model_sha256": sha256_file(onnx_path),
        # Weights stored beside the graph (large models) are covered by the checksum too.
        "external_data": external_data_hashes(onnx_path, onnx_path.parent),
        "recipe": recipe,
        "training_data": state.get("data", {}),
        "metrics": {"val": state.get("val_metrics"), "test": state.get("test_metrics")},
        "export_checks": checks,
        "versions": _versions(opset),
        "card": card or {},
    }


def real_inputs_from_training_data(state: dict[str, Any], n: int = 200, log=print) -> np.ndarray | None:
    """Return up to ``n`` preprocessed validation images, re-read from the training data.

    Returns None (with a message) when the data is not where training found it.
    """
    from medviewer.inference.preprocess import PreprocessConfig, preprocess_image
    from models.dataset import raw_image
    from models.prepare import DataConfig, load_records

    try:
        cfg = DataConfig(**{**state["train_config"]["data"],
                            "split": tuple(state["train_config"]["data"]["split"])})
        _, val, test, _ = load_records(cfg)
        pre = PreprocessConfig.from_metadata(state["preprocess"])
        records = (val + test)[:n]
        return np.stack([preprocess_image(raw_image(r), pre) for r in records]).astype(np.float32)
    except Exception as exc:  # the data may be gone or moved: the stored sample still applies
        log(f"real images: training data not readable ({type(exc).__name__}: {exc}); "
            "using the checkpoint's stored sample only")
        return None


def _check_inputs(state: dict[str, Any], real_inputs: np.ndarray | None) -> dict[str, np.ndarray]:
    pre = state["preprocess"]
    shape = (int(pre["channels"]), int(pre["input_size"]), int(pre["input_size"]))
    rng = np.random.default_rng(0)
    inputs = {"random": rng.standard_normal((4, *shape)).astype(np.float32)}
    real = [np.asarray(state["parity_inputs"].float().numpy())] if state.get("parity_inputs") is not None else []
    if real_inputs is not None and len(real_inputs):
        real.append(np.asarray(real_inputs, dtype=np.float32))
    if real:
        inputs["real"] = np.concatenate(real).astype(np.float32)
    return inputs


def _check_through_app(folder: Path, graph: ExportGraph, inputs: dict[str, np.ndarray]) -> float:
    from medviewer.inference import ModelRunner, load_bundle

    runner = ModelRunner(load_bundle(folder), "cpu")
    batch = inputs.get("real", inputs["random"])
    got = runner.run_tensor(batch, ("logits",))["logits"]
    with torch.no_grad():
        ref = graph(torch.from_numpy(batch))[0].numpy()
    diff = float(np.abs(got - ref).max())
    if diff > LOGITS_ATOL:
        raise ExportCheckError(f"the app's runner disagrees with torch by {diff:.2e}", path=folder)
    return diff


def _add_variant(variant: str, folder: Path, meta: dict[str, Any], inputs: dict[str, np.ndarray], log) -> None:
    from medviewer.inference.bundle import sha256_file
    from medviewer.inference.metadata import external_data_hashes
    from medviewer.inference.session import create_session

    path = folder / f"model.{variant}.onnx"
    if variant == "int8":
        quantize_int8(folder / "model.onnx", path, log)
    else:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        half = convert_float_to_float16(onnx.load(str(folder / "model.onnx")), keep_io_types=True)
        onnx.save(half, str(path))
    agreement = measure_agreement(folder / "model.onnx", path, inputs)
    limits = VARIANT_LIMITS[variant]
    ok = agreement["top1_agreement"] >= limits["top1"] and agreement["embedding_mean_cosine"] >= limits["cosine"]
    agreement["limits"] = f"top-1 >= {limits['top1']}, mean embedding cosine >= {limits['cosine']}"
    if ok:
        meta.setdefault("variants", {})[variant] = {"file": path.name, "sha256": sha256_file(path),
                                                     "external_data": external_data_hashes(path, folder),
                                                     "agreement": agreement}
        create_session(path, "cpu")  # must load
        log(f"{variant}: written ({agreement})")
    else:
        path.unlink()
        meta.setdefault("variants_rejected", {})[variant] = agreement
        log(f"{variant}: NOT written, agreement too low ({agreement})")


#: The ops quantised in the int8 variant (see :func:`quantize_int8`).
INT8_OPS = ("MatMul",)


def quantize_int8(source: Path, path: Path, log=print) -> None:
    """Write the int8 variant of ``source`` to ``path``: the MatMuls only, weights per channel.

    ONNX Runtime dynamic quantisation (weights int8 once, activations
    quantised per batch at run time), measured on ViT-S/16 at 224 px, 2
    threads (``benchmarks/bench_inference.py``):

    - only ``MatMul`` (every linear layer of the blocks and the head; with
      constant weights only, ONNX Runtime's default for dynamic
      quantisation, so the attention products of two activations stay
      fp32).  Quantising the patch-embedding ``Conv`` too made it 4.6x
      slower than fp32 (``ConvInteger`` has no fast kernel here) and the
      whole model 1.81x fp32 instead of 2.1x;
    - per output channel: each weight column gets its own scale, which
      lifts the embedding cosine to fp32 from 0.997 to 0.9994 and, with
      the per-channel kernels, the speed from 2.1x to 2.4x fp32.

    The graph is pre-processed first (shape inference and ONNX Runtime's
    basic optimisations, as ONNX Runtime recommends); the session that runs
    the result applies every optimisation level again (``ORT_ENABLE_ALL``
    in :func:`medviewer.inference.session.create_session`), which fuses each
    ``DynamicQuantizeLinear`` + ``MatMulInteger`` + scale into one
    ``DynamicQuantizeMatMul``.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, path = Path(source), Path(path)
    prepared = path.with_name(path.stem + ".quant-prep.onnx")
    try:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=False)
        source = prepared
    except Exception as exc:  # pre-processing is an optimisation; plain quantisation still works
        log(f"int8: quantisation pre-processing skipped ({type(exc).__name__}: {exc})")
    try:
        quantize_dynamic(str(source), str(path), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=list(INT8_OPS))
    finally:
        prepared.unlink(missing_ok=True)


def measure_agreement(reference: Path, candidate: Path, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """Compare a variant's logits and embeddings with the fp32 model's on all check inputs."""
    from medviewer.inference.session import create_session

    ref_s, _ = create_session(reference, "cpu")
    cand_s, _ = create_session(candidate, "cpu")
    batch = np.concatenate(list(inputs.values()))
    # In chunks: a few hundred 224 px images at once would hold gigabytes of attention maps.
    ref = _run_chunked(ref_s, batch)
    got = _run_chunked(cand_s, batch)
    cos = _cosine(ref[1], got[1])
    return {
        "n": int(len(batch)),
        "top1_agreement": float(f"{(ref[0].argmax(1) == got[0].argmax(1)).mean():.4f}"),
        "label_decision_agreement": float(f"{((ref[0] > 0) == (got[0] > 0)).mean():.4f}"),
        "logits_max_abs_diff": float(f"{np.abs(ref[0] - got[0]).max():.3g}"),
        "embedding_mean_cosine": float(f"{cos.mean():.6f}"),
        "embedding_min_cosine": float(f"{cos.min():.6f}"),
        "size_bytes": int(candidate.stat().st_size),
    }


def _run_chunked(session: Any, batch: np.ndarray, chunk: int = 32) -> list[np.ndarray]:
    parts = [session.run(["logits", "embedding"], {"image": batch[i:i + chunk]})
             for i in range(0, len(batch), chunk)]
    return [np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])]


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def _versions(opset: int) -> dict[str, Any]:
    import onnx
    import onnxruntime
    import timm

    import medviewer

    return {"torch": torch.__version__, "timm": timm.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "numpy": np.__version__,
            "medviewer": medviewer.__version__, "opset": opset}


def _write(folder: Path, meta: dict[str, Any], extra_sections: dict[str, str] | None) -> None:
    (folder / "metadata.json").write_text(json.dumps(meta, indent=2, default=_json_default) + "\n")
    (folder / "card.md").write_text(render_card(meta, extra_sections))


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m models.export``; return the exit code."""
    p = argparse.ArgumentParser(prog="python -m models.export", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="best.pt from models.train")
    p.add_argument("out", help="bundle folder to create")
    p.add_argument("--name", help="display name of the model")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--fp16", action="store_true", help="also write model.fp16.onnx if it agrees")
    p.add_argument("--int8", action="store_true", help="also write model.int8.onnx if it agrees")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--real-images", type=int, default=200,
                   help="validation/test images re-read from the training data for the checks "
                        "(0: only the sample stored in the checkpoint)")
    p.add_argument("--threads", type=int)
    p.add_argument("--no-gradcam", action="store_true", help="do not write the Grad-CAM graph")
    p.add_argument("--no-applicability", action="store_true",
                   help="do not record the domain and the out-of-distribution summary")
    p.add_argument("--domain", metavar="JSON",
                   help='domain fields known better than the data, e.g. \'{"body_parts": ["CHEST"], '
                        '"views": ["PA", "AP"], "description": "frontal chest radiographs"}\'')
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
        real = real_inputs_from_training_data(state, args.real_images) if args.real_images else None
        export_bundle(state, args.out, name=args.name, opset=args.opset, fp16=args.fp16,
                      int8=args.int8, overwrite=args.overwrite, real_inputs=real,
                      gradcam=not args.no_gradcam, applicability=not args.no_applicability,
                      domain=json.loads(args.domain) if args.domain else None)
    except (MedViewerError, FileExistsError, ValueError, FileNotFoundError) as exc:
        print(f"models.export: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

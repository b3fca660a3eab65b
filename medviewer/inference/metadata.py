"""The ``metadata.json`` schema of a model bundle, and its validation.

A bundle is a folder with ``model.onnx``, ``metadata.json`` and ``card.md``
(see ``models/README.md`` for an annotated example).  Format version 1::

    {
      "format": "medviewer-model-bundle",
      "format_version": 1,
      "name": "demo-synthetic-vit",
      "task": "multilabel",                      # multilabel | multiclass | regression
      "labels": ["Cardiomegaly", "Emphysema", "Opacity"],
      "preprocessing": {"input_size": 64, "resize": 72, "channels": 3,
                        "mean": [0.45], "std": [0.22],
                        "window_policy": "display", "interpolation": "bilinear"},
      "input": {"name": "image", "layout": "NCHW", "dtype": "float32"},
      "outputs": {"logits": "logits",            # (N, len(labels))
                  "embedding": "embedding",      # (N, embedding.dim), pre-logits
                  "tokens": "tokens",            # (N, T, embedding.dim) final normed tokens
                  "attention": ["attn_0", ...]}, # per block (N, heads, T, T), softmax rows
      "embedding": {"dim": 192, "metric": "cosine"},
      "architecture": {"family": "vit", "patch_size": 8, "grid": [8, 8],
                       "num_prefix_tokens": 1, "depth": 4, "num_heads": 3,
                       "embed_dim": 192, "pos_embed": "learned", ...},
      "model_file": "model.onnx",
      "model_sha256": "<hex sha256 of model.onnx>",
      "external_data": {"model.onnx.data": "<hex sha256>"},  # every file model.onnx loads
      "recipe": {...}, "training_data": {...}, "metrics": {...},
      "versions": {"torch": ..., "timm": ..., "onnx": ..., "onnxruntime": ..., "opset": 17},
      "variants": {"int8": {"file": "model.int8.onnx", "sha256": ..., "agreement": {...}}}
    }

``T = num_prefix_tokens + grid[0] * grid[1]``.  Saliency: attention rollout
uses ``attention`` (prefix tokens first, then patches in row-major grid order);
"why are these two similar" maps use ``tokens``; occlusion needs ``logits`` only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

FORMAT_NAME = "medviewer-model-bundle"
FORMAT_VERSION = 1
TASKS = ("multilabel", "multiclass", "regression")
METRICS = ("cosine",)
# Inputs outside this range are certainly a mistake (and would not fit in memory).
MIN_INPUT_SIZE = 8
MAX_INPUT_SIZE = 1024

REQUIRED = {
    "format_version": int,
    "task": str,
    "labels": list,
    "preprocessing": dict,
    "input": dict,
    "outputs": dict,
    "embedding": dict,
    "architecture": dict,
    "model_sha256": str,
}


def metadata_problems(meta: Any) -> list[str]:
    """Return every problem found in a metadata dictionary (empty when valid).

    Checks presence and types of the required fields and their internal
    consistency (labels unique, patch grid matches the input size, one
    attention output per block, ...).  The input-size check lives in
    :func:`input_size_problem` because it has its own error class.
    """
    if not isinstance(meta, dict):
        return ["metadata.json must hold a JSON object"]
    problems = []
    for key, kind in REQUIRED.items():
        if key not in meta:
            problems.append(f"missing field '{key}'")
        elif not isinstance(meta[key], kind) or (kind is int and isinstance(meta[key], bool)):
            problems.append(f"field '{key}' must be a {kind.__name__}")
    if problems:
        return problems
    if meta["task"] not in TASKS:
        problems.append(f"task must be one of {TASKS}, not {meta['task']!r}")
    labels = meta["labels"]
    if not labels or not all(isinstance(x, str) and x for x in labels):
        problems.append("labels must be a non-empty list of names")
    elif len(set(labels)) != len(labels):
        problems.append("labels must be unique")
    if meta["task"] == "multiclass" and len(labels) < 2:
        problems.append("a multiclass model needs at least 2 labels")
    problems += _preprocessing_problems(meta["preprocessing"])
    problems += _output_problems(meta)
    if not isinstance(meta["input"].get("name"), str):
        problems.append("input.name must name the ONNX input")
    files = [meta.get("model_file", "model.onnx")] + [
        v.get("file", "") for v in meta.get("variants", {}).values() if isinstance(v, dict)
    ]
    for name in files:
        # Model files live inside the bundle folder: no paths, so a bundle cannot point elsewhere.
        plain = isinstance(name, str) and name not in ("", ".", "..")
        if not plain or "/" in name or "\\" in name:
            problems.append(f"model file {name!r} must be a plain file name inside the bundle")
    sha = meta["model_sha256"]
    if not _is_sha256(sha):
        problems.append("model_sha256 must be 64 hex digits")
    blocks = [("external_data", meta.get("external_data"))] + [
        (f"variants.{k}.external_data", v.get("external_data"))
        for k, v in meta.get("variants", {}).items() if isinstance(v, dict)]
    for where, block in blocks:
        if block is None:
            continue
        if not isinstance(block, dict) or not all(
                isinstance(k, str) and _is_sha256(v) for k, v in block.items()):
            problems.append(f"{where} must map file names to 64-hex-digit sha256 values")
    return problems


def _is_sha256(value: Any) -> bool:
    return (isinstance(value, str) and len(value) == 64
            and all(c in "0123456789abcdef" for c in value.lower()))


def external_data_hashes(model_path: str | Path, folder: str | Path) -> dict[str, str]:
    """Return ``{location: sha256}`` of every external data file an ONNX model loads.

    The exporter records this as ``external_data`` in ``metadata.json`` so the bundle's
    checksum covers the weights wherever they are stored.

    Raises
    ------
    PathOutsideRootError
        A location leads outside ``folder``.
    """
    from medviewer.fileio import resolve_inside, sha256_file
    from medviewer.inference.onnx_files import external_data_locations

    return {loc: sha256_file(resolve_inside(folder, loc))
            for loc in external_data_locations(model_path)}


def _preprocessing_problems(block: dict) -> list[str]:
    from medviewer.inference.preprocess import PreprocessConfig

    try:
        PreprocessConfig.from_metadata(block)
    except KeyError as exc:
        return [f"preprocessing lacks {exc.args[0]!r}"]
    except (TypeError, ValueError) as exc:
        return [f"preprocessing: {exc}"]
    return []


def _output_problems(meta: dict) -> list[str]:
    problems = []
    outputs, emb, arch = meta["outputs"], meta["embedding"], meta["architecture"]
    if not isinstance(outputs.get("logits"), str):
        problems.append("outputs.logits must name the logits output")
    if "embedding" in outputs and not isinstance(outputs["embedding"], str):
        problems.append("outputs.embedding must be an output name")
    if not isinstance(emb.get("dim"), int) or emb.get("dim", 0) < 1:
        problems.append("embedding.dim must be a positive integer")
    if emb.get("metric", "cosine") not in METRICS:
        problems.append(f"embedding.metric must be one of {METRICS}")
    attention = outputs.get("attention", [])
    if not isinstance(attention, list) or not all(isinstance(n, str) for n in attention):
        problems.append("outputs.attention must be a list of output names")
    elif attention and arch.get("depth") not in (None, len(attention)):
        problems.append(
            f"architecture.depth is {arch.get('depth')} but {len(attention)} attention "
            "outputs are listed"
        )
    names = [outputs.get("logits"), outputs.get("embedding"), outputs.get("tokens"), *attention]
    names = [n for n in names if n is not None]
    if len(set(map(str, names))) != len(names):
        problems.append("output names must be distinct")
    return problems


def input_size_problem(meta: dict) -> str | None:
    """Return why the bundle's input size is unsupported, or None when it is fine."""
    pre, arch = meta["preprocessing"], meta["architecture"]
    size = int(pre["input_size"])
    if not MIN_INPUT_SIZE <= size <= MAX_INPUT_SIZE:
        return f"input size {size} is outside {MIN_INPUT_SIZE}..{MAX_INPUT_SIZE} pixels"
    patch = arch.get("patch_size")
    if patch is not None:
        if not isinstance(patch, int) or patch < 1 or size % patch:
            return f"input size {size} is not a multiple of the patch size {patch}"
        grid = arch.get("grid")
        if grid is not None and list(grid) != [size // patch, size // patch]:
            return f"patch grid {grid} does not match input size {size} / patch {patch}"
    return None


def token_count(meta: dict) -> int | None:
    """Return the number of tokens T (prefix + patches), or None if unknown."""
    arch = meta["architecture"]
    grid = arch.get("grid")
    if not grid:
        return None
    return int(arch.get("num_prefix_tokens", 1)) + int(grid[0]) * int(grid[1])

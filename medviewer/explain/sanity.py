"""Model-randomisation sanity check: a copy of a bundle whose learned weights are random.

References
----------
Adebayo J, Gilmer J, Muelly M, Goodfellow I, Hardt M, Kim B. "Sanity Checks
for Saliency Maps", NeurIPS 2018, section 3: re-initialise the weights and
compare the maps of the trained and the randomised model; a method whose maps
barely change does not depend on what the model learned.

Every float initializer of rank >= 2 (linear and convolution weights, the
positional embedding, the class token) is replaced by Gaussian noise with the
original tensor's standard deviation, so activations keep their scale and the
attention softmax stays in its working range.  Rank-1 tensors (biases,
LayerNorm gains) are kept, as re-initialisation would set them to constants
anyway.  ``scope="head"`` randomises only the classification head: maps that
do not use the head (attention rollout) cannot change, which shows that they
are not class-specific.  ``scope="cascade-N"`` randomises the head and the
last N blocks: run for N = 1 .. depth it is the paper's cascading
randomisation, from the top layer down.  Editing the ONNX file needs the ``onnx`` package (a
training/test dependency).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from medviewer.errors import MedViewerError
from medviewer.inference.bundle import METADATA_FILE, Bundle, sha256_file

SCOPES = ("all", "head")  # and "cascade-N": the head and the last N blocks (Adebayo et al., section 3.1)


def _is_head(name: str, consumers: list[str]) -> bool:
    return "head" in name.split(".") or any("/head/" in c for c in consumers)


def parse_scope(scope: str) -> int | None:
    """Return how many top blocks a scope randomises (None: all weights; 0: the head only).

    Raises
    ------
    ValueError
        Not ``all``, ``head`` or ``cascade-N`` with N >= 1.
    """
    if scope == "all":
        return None
    if scope == "head":
        return 0
    if scope.startswith("cascade-") and scope[8:].isdigit() and int(scope[8:]) >= 1:
        return int(scope[8:])
    raise ValueError(f"scope must be one of {SCOPES} or cascade-N, not {scope!r}")


def _logical_names(model) -> dict[str, tuple[str, bool]]:
    """Return initializer -> (parameter name, stored transposed) for the exported graph's weights.

    The TorchScript exporter keeps parameter names except for ``Linear``
    weights applied to 3-D inputs, stored transposed as ``onnx::MatMul_*``; the
    ``MatMul`` they feed is followed by an ``Add`` of the layer's named bias,
    which names them.  Weights stored as float16 (``NAME__fp16``, cast back in
    the graph) resolve to NAME.  Knowing the parameter lets the model graph and
    the Grad-CAM graph receive the *same* random weights.
    """
    inits = {t.name for t in model.graph.initializer}
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    out: dict[str, tuple[str, bool]] = {}
    for name in inits:
        base = name[:-len("__fp16")] if name.endswith("__fp16") else name
        if base.startswith("model."):
            out[name] = (base[len("model."):], False)
            continue
        for node in consumers.get(base, []):
            if node.op_type != "MatMul":
                continue
            for add in consumers.get(node.output[0], []):
                bias = next((i for i in add.input if i.endswith(".bias") and i.startswith("model.")), None)
                if add.op_type == "Add" and bias and bias in inits | {f"{bias}__fp16"}:
                    out[name] = (bias[len("model."):-len(".bias")] + ".weight", True)
    return out


def _block_of(parameter: str) -> int | None:
    import re

    found = re.search(r"blocks\.(\d+)\.", parameter)
    return int(found.group(1)) if found else None


def randomise_onnx(source: str | Path, target: str | Path, *, scope: str = "all", seed: int = 0,
                   depth: int | None = None) -> int:
    """Write a copy of an ONNX model with randomised weights; return how many tensors changed.

    Each weight's noise is seeded by ``seed`` and its parameter name and drawn
    in the parameter's own orientation, so two graphs of one model (the
    model and its Grad-CAM graph) get identical random weights.  ``scope``:
    ``all``, ``head``, or ``cascade-N`` (the head and the last N of ``depth`` blocks).

    Raises
    ------
    MedViewerError
        The ``onnx`` package is missing, or nothing could be randomised.
    """
    top = parse_scope(scope)
    if top and depth is None:
        raise ValueError("a cascade scope needs the model's depth")
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:
        raise MedViewerError("the randomisation check needs the 'onnx' package",
                             hint="install the training extra: pip install 'medviewer[train]'") from exc
    import zlib

    model = onnx.load(str(source))
    consumers: dict[str, list[str]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.name)
    logical = _logical_names(model)
    changed = 0
    kinds = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    for index, tensor in enumerate(model.graph.initializer):
        if tensor.data_type not in kinds or len(tensor.dims) < 2:
            continue
        parameter, transposed = logical.get(tensor.name, (tensor.name, False))
        head = _is_head(parameter, consumers.get(tensor.name, []))
        if top is not None:
            block = _block_of(parameter)
            in_cascade = block is not None and depth is not None and block >= depth - top
            if not (head or in_cascade):
                continue
        values = numpy_helper.to_array(tensor)
        std = float(values.astype(np.float32).std()) or 0.02
        rng = np.random.default_rng([int(seed), zlib.crc32(parameter.encode())])
        shape = values.shape[::-1] if transposed else values.shape
        noise = rng.normal(0.0, std, shape).astype(np.float32)
        noise = noise.T if transposed else noise
        model.graph.initializer[index].CopyFrom(
            numpy_helper.from_array(np.ascontiguousarray(noise.astype(values.dtype)), tensor.name))
        changed += 1
    if changed == 0:
        raise MedViewerError(f"no weights to randomise (scope {scope!r})", path=source,
                             hint="this check needs a ViT bundle exported by models.export")
    onnx.save(model, str(target))
    return changed


def randomised_bundle(bundle: Bundle, folder: str | Path, *, scope: str = "all", seed: int = 0) -> Path:
    """Write a bundle folder like ``bundle`` but with randomised weights; return the folder.

    The metadata is copied with the new sha256 and a name that says what it
    is, so the copy can never be mistaken for the trained model (nor share its
    retrieval indexes).  Reduced-precision variants are not copied.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "model.onnx"
    depth = int(bundle.metadata.get("architecture", {}).get("depth") or 0) or None
    randomise_onnx(bundle.model_path, target, scope=scope, seed=seed, depth=depth)
    meta = json.loads(json.dumps(bundle.metadata))
    gradcam = meta.get("gradcam")
    if isinstance(gradcam, dict) and (bundle.path / gradcam["file"]).is_file():
        # The same random weights as the model graph (seeded by parameter name).
        randomise_onnx(bundle.path / gradcam["file"], folder / gradcam["file"], scope=scope, seed=seed, depth=depth)
        gradcam["sha256"] = sha256_file(folder / gradcam["file"])
        gradcam.pop("parity", None)
    meta.pop("ood", None)  # the training-embedding summary belongs to the trained weights
    meta.pop("variants", None)
    meta["model_file"] = "model.onnx"
    meta["model_sha256"] = sha256_file(target)
    meta["name"] = f"{bundle.name} [weights randomised: {scope}, seed {seed}]"
    meta["sanity_check"] = {"randomised_from": bundle.sha256, "scope": scope, "seed": seed}
    (folder / METADATA_FILE).write_text(json.dumps(meta, indent=2))
    if bundle.card_path.is_file():
        shutil.copyfile(bundle.card_path, folder / "card.md")
    return folder

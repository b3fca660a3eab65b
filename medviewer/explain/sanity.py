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
are not class-specific.  Editing the ONNX file needs the ``onnx`` package (a
training/test dependency).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from medviewer.errors import MedViewerError
from medviewer.inference.bundle import METADATA_FILE, Bundle, sha256_file

SCOPES = ("all", "head")


def _is_head(name: str, consumers: list[str]) -> bool:
    return "head" in name.split(".") or any("/head/" in c for c in consumers)


def randomise_onnx(source: str | Path, target: str | Path, *, scope: str = "all", seed: int = 0) -> int:
    """Write a copy of an ONNX model with randomised weights; return how many tensors changed.

    Raises
    ------
    MedViewerError
        The ``onnx`` package is missing, or nothing could be randomised.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, not {scope!r}")
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:
        raise MedViewerError("the randomisation check needs the 'onnx' package",
                             hint="install the training extra: pip install 'medviewer[train]'") from exc
    model = onnx.load(str(source))
    consumers: dict[str, list[str]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.name)
    rng = np.random.default_rng(seed)
    changed = 0
    for index, tensor in enumerate(model.graph.initializer):
        if tensor.data_type != onnx.TensorProto.FLOAT or len(tensor.dims) < 2:
            continue
        if scope == "head" and not _is_head(tensor.name, consumers.get(tensor.name, [])):
            continue
        values = numpy_helper.to_array(tensor)
        std = float(values.std()) or 0.02
        noise = rng.normal(0.0, std, values.shape).astype(np.float32)
        model.graph.initializer[index].CopyFrom(numpy_helper.from_array(noise, tensor.name))
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
    randomise_onnx(bundle.model_path, target, scope=scope, seed=seed)
    meta = json.loads(json.dumps(bundle.metadata))
    meta.pop("variants", None)
    meta["model_file"] = "model.onnx"
    meta["model_sha256"] = sha256_file(target)
    meta["name"] = f"{bundle.name} [weights randomised: {scope}, seed {seed}]"
    meta["sanity_check"] = {"randomised_from": bundle.sha256, "scope": scope, "seed": seed}
    (folder / METADATA_FILE).write_text(json.dumps(meta, indent=2))
    if bundle.card_path.is_file():
        shutil.copyfile(bundle.card_path, folder / "card.md")
    return folder

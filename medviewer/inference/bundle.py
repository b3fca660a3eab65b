"""Load and validate a model bundle: a folder with model.onnx, metadata.json and card.md.

:func:`load_bundle` checks, in this order, and stops at the first failure with
one error that names the bundle and says how to fix it:

1. the path is a folder holding ``metadata.json`` and ``model.onnx``
   (:class:`NotABundleError`);
2. ``metadata.json`` is JSON, of a supported format version, complete and
   consistent (:class:`BundleMetadataError`);
3. the input size is usable (:class:`UnsupportedInputSizeError`);
4. ``model.onnx`` and every external data file it loads have the sha256 recorded at
   export, and those files lie inside the bundle (:class:`ChecksumMismatchError`);
5. ONNX Runtime can parse it (:class:`NotOnnxError`) and its inputs and
   outputs are the ones the metadata describes (:class:`GraphMismatchError`).

Step 5 builds a throw-away CPU session; :class:`~medviewer.inference.runner.ModelRunner`
repeats the cheap comparison on its own session with :func:`check_graph`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medviewer.fileio import sha256_file
from medviewer.inference.errors import (
    BundleMetadataError,
    ChecksumMismatchError,
    GraphMismatchError,
    NotABundleError,
    NotOnnxError,
    UnsupportedInputSizeError,
)
from medviewer.inference.metadata import (
    FORMAT_VERSION,
    input_size_problem,
    metadata_problems,
    token_count,
)
from medviewer.inference.preprocess import PreprocessConfig

MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
CARD_FILE = "card.md"

_REEXPORT = "re-export the bundle with `python -m models.export`"


@dataclass
class Bundle:
    """A validated model bundle.

    Attributes
    ----------
    path : Path
        The bundle folder.
    metadata : dict
        The parsed ``metadata.json``.
    preprocess : PreprocessConfig
        Preprocessing to apply before the model (shared with training).
    warnings : list of str
        Non-fatal findings (e.g. no model card).
    """

    path: Path
    metadata: dict[str, Any]
    preprocess: PreprocessConfig
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """Return the bundle's display name (metadata ``name`` or the folder name)."""
        return str(self.metadata.get("name") or self.path.name)

    @property
    def task(self) -> str:
        """Return ``multilabel``, ``multiclass`` or ``regression``."""
        return self.metadata["task"]

    @property
    def labels(self) -> list[str]:
        """Return the label (or regression target) names, in logit order."""
        return list(self.metadata["labels"])

    @property
    def sha256(self) -> str:
        """Return the sha256 of ``model.onnx`` (identifies the model in libraries and indexes)."""
        return self.metadata["model_sha256"].lower()

    @property
    def model_path(self) -> Path:
        """Return the path of the fp32 ONNX model."""
        return self.path / self.metadata.get("model_file", MODEL_FILE)

    @property
    def card_path(self) -> Path:
        """Return the path of the model card (may not exist)."""
        return self.path / CARD_FILE

    @property
    def card_text(self) -> str:
        """Return the model card's Markdown, or an empty string when there is none."""
        try:
            return self.card_path.read_text(encoding="utf-8")
        except OSError:
            return ""

    @property
    def input_name(self) -> str:
        """Return the name of the ONNX input."""
        return self.metadata["input"]["name"]

    @property
    def outputs(self) -> dict[str, Any]:
        """Return the ``outputs`` block (logical name -> ONNX output name(s))."""
        return self.metadata["outputs"]

    @property
    def embedding_dim(self) -> int:
        """Return the embedding dimension."""
        return int(self.metadata["embedding"]["dim"])

    @property
    def attention_outputs(self) -> list[str]:
        """Return the attention output names, one per block (may be empty)."""
        return list(self.outputs.get("attention", []))

    @property
    def variants(self) -> dict[str, dict[str, Any]]:
        """Return the optional reduced-precision variants (``fp16``, ``int8``)."""
        return dict(self.metadata.get("variants", {}))

    def variant_path(self, variant: str | None) -> tuple[Path, str]:
        """Return (path, sha256) of the model file for ``variant`` (None = fp32).

        Raises
        ------
        BundleMetadataError
            The bundle has no such variant.
        ChecksumMismatchError
            The variant file differs from the one exported.
        """
        if variant in (None, "", "fp32"):
            return self.model_path, self.sha256
        info = self.variants.get(variant)
        if not info or "file" not in info or "sha256" not in info:
            raise BundleMetadataError(
                f"the bundle has no '{variant}' variant "
                f"(it has: {', '.join(self.variants) or 'none'})",
                path=self.path,
                hint="run it without a variant, or export one with "
                "`python -m models.export --int8`",
            )
        path = self.path / info["file"]
        _verify_checksum(path, info["sha256"], self.path)
        _verify_external_data(path, info.get("external_data") or {}, self.path)
        return path, info["sha256"]

    def fingerprint(self, variant: str | None = None) -> str:
        """Return the identity of what this bundle computes, for keying indexes and caches.

        A sha256 over the model file's and its external data's checksums and the
        metadata that shapes an embedding (preprocessing, input, embedding block), so two
        bundles with one ONNX file but other preprocessing never share an index.
        """
        if variant in (None, "", "fp32"):
            model_sha, external = self.sha256, self.metadata.get("external_data") or {}
        else:
            info = self.variants.get(variant) or {}
            model_sha, external = str(info.get("sha256", "")), info.get("external_data") or {}
        identity = {"model_sha256": model_sha.lower(),
                    "external_data": {k: str(v).lower() for k, v in external.items()},
                    "preprocessing": self.metadata.get("preprocessing"),
                    "input": self.metadata.get("input"),
                    "embedding": self.metadata.get("embedding"),
                    "embedding_output": self.outputs.get("embedding")}
        text = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_bundle(path: str | Path, *, verify_graph: bool = True) -> Bundle:
    """Load a model bundle folder and validate everything about it.

    Parameters
    ----------
    path : str or Path
        The bundle folder (a path to its ``model.onnx`` or ``metadata.json``
        is accepted and means the folder).
    verify_graph : bool
        Parse ``model.onnx`` with ONNX Runtime and compare its inputs and
        outputs with the metadata (default).  The checksum is always verified.

    Returns
    -------
    Bundle

    Raises
    ------
    BundleError
        One of its subclasses, naming the bundle and the fix.
    """
    folder = _bundle_folder(Path(path))
    meta = _read_metadata(folder)
    problems = metadata_problems(meta)
    if problems:
        raise BundleMetadataError(
            "metadata.json is invalid: " + "; ".join(problems),
            path=folder,
            hint=_REEXPORT,
        )
    version = meta["format_version"]
    if version > FORMAT_VERSION:
        raise BundleMetadataError(
            f"bundle format version {version} is newer than this MedViewer reads "
            f"({FORMAT_VERSION})",
            path=folder,
            hint="update MedViewer",
        )
    size_problem = input_size_problem(meta)
    if size_problem:
        raise UnsupportedInputSizeError(size_problem, path=folder, hint=_REEXPORT)
    bundle = Bundle(folder, meta, PreprocessConfig.from_metadata(meta["preprocessing"]))
    if not bundle.model_path.is_file():
        raise NotABundleError(
            f"{bundle.model_path.name} is missing",
            path=folder,
            hint="copy the whole bundle folder, or re-export it",
        )
    _verify_checksum(bundle.model_path, bundle.sha256, folder)
    _verify_external_data(bundle.model_path, meta.get("external_data") or {}, folder)
    if not bundle.card_path.is_file():
        bundle.warnings.append("no card.md (model card): intended use and limits are unknown")
    if verify_graph:
        check_graph(bundle, inspection_session(bundle.model_path, folder))
    return bundle


def _bundle_folder(path: Path) -> Path:
    if path.is_file() and path.name in (MODEL_FILE, METADATA_FILE):
        path = path.parent
    if not path.exists():
        raise NotABundleError("no such folder", path=path, hint="check the path")
    if not path.is_dir():
        raise NotABundleError(
            "not a model bundle (a file, not a folder)",
            path=path,
            hint=f"choose the folder holding {MODEL_FILE} and {METADATA_FILE}",
        )
    missing = [n for n in (METADATA_FILE, MODEL_FILE) if not (path / n).is_file()]
    if len(missing) == 2:
        raise NotABundleError(
            f"not a model bundle: neither {METADATA_FILE} nor {MODEL_FILE} is in the folder",
            path=path,
            hint=f"choose the folder holding {MODEL_FILE} and {METADATA_FILE}",
        )
    if METADATA_FILE in missing:
        raise BundleMetadataError(
            f"{METADATA_FILE} is missing",
            path=path,
            hint="copy the whole bundle folder, or " + _REEXPORT,
        )
    return path


def _read_metadata(folder: Path) -> dict[str, Any]:
    try:
        text = (folder / METADATA_FILE).read_text(encoding="utf-8")
        return json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleMetadataError(
            f"{METADATA_FILE} cannot be read: {exc}", path=folder, hint=_REEXPORT
        ) from exc
    except RecursionError as exc:
        raise BundleMetadataError(f"{METADATA_FILE} is nested too deeply to be a bundle's "
                                  "metadata", path=folder, hint=_REEXPORT) from exc


def _verify_checksum(model_path: Path, expected: str, folder: Path) -> None:
    if not model_path.is_file():
        raise NotABundleError(f"{model_path.name} is missing", path=folder, hint=_REEXPORT)
    actual = sha256_file(model_path)
    if actual != expected.lower():
        raise ChecksumMismatchError(
            f"{model_path.name} has changed since export (sha256 {actual[:12]}... "
            f"but metadata.json records {expected[:12]}...)",
            path=folder,
            hint="the file is corrupt or was edited; copy the bundle again or " + _REEXPORT,
        )


def _verify_external_data(model_path: Path, recorded: dict[str, str], folder: Path) -> None:
    """Check every external data file the model loads: inside the bundle, recorded, unchanged."""
    from medviewer.fileio import PathOutsideRootError, resolve_inside
    from medviewer.inference.onnx_files import OnnxFormatError, external_data_locations

    try:
        locations = external_data_locations(model_path)
    except (OSError, OnnxFormatError) as exc:
        raise NotOnnxError(f"{model_path.name} is not a readable ONNX model ({exc})",
                           path=folder, hint=_REEXPORT) from exc
    for location in locations:
        try:
            data_path = resolve_inside(folder, location)
        except PathOutsideRootError as exc:
            raise BundleMetadataError(
                f"{model_path.name} loads weights from {location!r}, outside the bundle folder",
                path=folder, hint="keep external data beside model.onnx; " + _REEXPORT) from exc
        expected = recorded.get(location)
        if expected is None:
            raise ChecksumMismatchError(
                f"{model_path.name} loads weights from {location}, whose sha256 is not "
                "recorded in metadata.json, so they cannot be verified",
                path=folder, hint=_REEXPORT)
        if not data_path.is_file():
            raise NotABundleError(f"{location} (weights of {model_path.name}) is missing",
                                  path=folder, hint="copy the whole bundle folder")
        actual = sha256_file(data_path)
        if actual != expected.lower():
            raise ChecksumMismatchError(
                f"{location} has changed since export (sha256 {actual[:12]}... but "
                f"metadata.json records {expected[:12]}...)",
                path=folder,
                hint="the weights are corrupt or were edited; copy the bundle again or "
                + _REEXPORT)


def inspection_session(model_path: Path, folder: Path | None = None) -> Any:
    """Parse an ONNX file with ONNX Runtime on the CPU, without optimisations.

    Raises
    ------
    NotOnnxError
        ONNX Runtime cannot read the file.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 4  # the error below reports the problem once, clearly
    options.intra_op_num_threads = 1
    try:
        return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NotOnnxError(
            f"{model_path.name} is not a readable ONNX model ({first_line[:200]})",
            path=folder or model_path.parent,
            hint=_REEXPORT,
        ) from exc


def check_graph(bundle: Bundle, session: Any) -> None:
    """Compare an ONNX Runtime session's inputs and outputs with the bundle metadata.

    Raises
    ------
    GraphMismatchError
        An input or output is missing or has the wrong shape.
    """
    problems = graph_problems(bundle.metadata, session)
    if problems:
        raise GraphMismatchError(
            "model.onnx does not match metadata.json: " + "; ".join(problems),
            path=bundle.path,
            hint=_REEXPORT,
        )


def graph_problems(meta: dict[str, Any], session: Any) -> list[str]:
    """Return the disagreements between a session's graph and the metadata."""
    problems = []
    inputs = session.get_inputs()
    pre = meta["preprocessing"]
    if len(inputs) != 1:
        problems.append(f"expected 1 input, the graph has {len(inputs)}")
    else:
        inp = inputs[0]
        if inp.name != meta["input"]["name"]:
            problems.append(f"input is named {inp.name!r}, metadata says {meta['input']['name']!r}")
        if inp.type != "tensor(float)":
            problems.append(f"input type is {inp.type}, expected tensor(float)")
        expected = [None, int(pre["channels"]), int(pre["input_size"]), int(pre["input_size"])]
        shape = list(inp.shape)
        if len(shape) != 4:
            problems.append(f"input has rank {len(shape)}, expected 4 (N, C, H, W)")
        else:
            if isinstance(shape[0], int):
                problems.append(
                    f"batch dimension is fixed to {shape[0]}; export with a dynamic batch"
                )
            for axis, (got, want) in enumerate(zip(shape[1:], expected[1:]), start=1):
                if isinstance(got, int) and got != want:
                    problems.append(f"input axis {axis} is {got}, metadata implies {want}")
    graph_out = {o.name: list(o.shape) for o in session.get_outputs()}
    outputs = meta["outputs"]
    wanted = {
        outputs["logits"]: [None, len(meta["labels"])],
        outputs.get("embedding"): [None, int(meta["embedding"]["dim"])],
        outputs.get("tokens"): [None, token_count(meta), int(meta["embedding"]["dim"])],
    }
    heads = meta["architecture"].get("num_heads")
    for name in outputs.get("attention", []):
        wanted[name] = [None, heads, token_count(meta), token_count(meta)]
    for name, shape in wanted.items():
        if name is None:
            continue
        if name not in graph_out:
            problems.append(f"output {name!r} is not in the graph (it has {sorted(graph_out)[:8]})")
            continue
        got = graph_out[name]
        if len(got) != len(shape):
            problems.append(f"output {name!r} has rank {len(got)}, expected {len(shape)}")
            continue
        for axis, (g, w) in enumerate(zip(got, shape)):
            if w is not None and isinstance(g, int) and g != w:
                problems.append(f"output {name!r} axis {axis} is {g}, metadata implies {w}")
    return problems

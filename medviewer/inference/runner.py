"""Run a model bundle on images in batches, with progress and cancel.

:class:`ModelRunner` is what the app, the CLI and the retrieval index call.
Its methods block, so the GUI calls them from a worker thread; ONNX Runtime
sessions are thread-safe, so one runner may serve several workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medviewer.inference.bundle import Bundle, check_graph, load_bundle
from medviewer.inference.errors import InferenceError, PreprocessError
from medviewer.inference.postprocess import l2_normalise, task_outputs
from medviewer.inference.preprocess import preprocess_image
from medviewer.inference.providers import ProviderReport
from medviewer.inference.session import create_session
from medviewer.tasks import TaskState, ensure_state

LOGICAL_OUTPUTS = ("logits", "embedding", "tokens", "attention")


class ModelRunner:
    """Run one bundle with ONNX Runtime.

    Parameters
    ----------
    bundle : Bundle or str or Path
        A loaded bundle, or a bundle folder to load (and validate).
    provider_preference : str or list of str
        ``"auto"`` (default), ``"cpu"``, ``"cuda"``, ``"tensorrt"``,
        ``"coreml"``, ``"directml"`` or a list; see
        :func:`~medviewer.inference.session.create_session`.
    threads : int, optional
        Intra-op threads (default: physical cores).
    variant : str, optional
        ``"fp16"`` or ``"int8"`` to run a reduced-precision variant the
        bundle carries; None runs the fp32 model.
    batch_size : int
        Images per ONNX Runtime call.
    strict : bool
        Fail instead of falling back to the CPU when the preferred provider
        cannot run.

    Examples
    --------
    >>> runner = ModelRunner(load_bundle("models/demo"))        # doctest: +SKIP
    >>> runner.provider_report().message                         # doctest: +SKIP
    'CUDA not available: no NVIDIA driver (libcuda.so.1 cannot be loaded); running on CPU'
    >>> runner.classify([image])                                 # doctest: +SKIP
    [{'Cardiomegaly': 0.93, 'Emphysema': 0.04, 'Opacity': 0.12}]
    """

    def __init__(
        self,
        bundle: Bundle | str | Path,
        provider_preference: str | list[str] | None = "auto",
        *,
        threads: int | None = None,
        variant: str | None = None,
        batch_size: int = 16,
        strict: bool = False,
    ) -> None:
        if not isinstance(bundle, Bundle):
            # The graph is compared with this runner's own session below.
            bundle = load_bundle(bundle, verify_graph=False)
        self.bundle = bundle
        # Kept so companion graphs of the bundle (Grad-CAM) open on the same provider and threads.
        self.provider_preference, self.threads = provider_preference, threads
        self.variant = variant or "fp32"
        model_path, self.model_sha256 = bundle.variant_path(variant)
        # What indexes and caches are keyed on: weights and preprocessing, not the file alone.
        self.fingerprint = bundle.fingerprint(variant)
        self.session, self._report = create_session(
            model_path, provider_preference, threads=threads, strict=strict
        )
        check_graph(bundle, self.session)
        self.batch_size = max(1, int(batch_size))

    @property
    def provider(self) -> str:
        """Return the provider that runs the model, in words (``CUDA``, ``CPU``, ...)."""
        return self._report.provider_label

    def provider_report(self) -> ProviderReport:
        """Return which provider runs the model and why faster ones do not."""
        return self._report

    def run(
        self,
        images: Sequence[np.ndarray],
        outputs: Sequence[str] = ("logits",),
        state: TaskState | None = None,
        batch_size: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Preprocess and run images in batches; return the requested raw outputs.

        Parameters
        ----------
        images : sequence of np.ndarray
            Displayed images (see :func:`~medviewer.inference.preprocess.preprocess_image`).
            A lazy sequence (``__len__`` + ``__getitem__`` that loads on
            access) keeps memory flat for large sets.
        outputs : sequence of str
            Logical outputs among ``logits``, ``embedding``, ``tokens`` and
            ``attention`` (the per-block maps stacked to (N, L, H, T, T)).
        state : TaskState, optional
            Receives progress; cancellation is checked between batches.
        batch_size : int, optional
            Overrides the runner's batch size.

        Returns
        -------
        dict of str to np.ndarray
            One array per requested output, first axis = images.

        Raises
        ------
        TaskCancelled
            Cancellation was requested.
        PreprocessError
            An image cannot be preprocessed (the message gives its index).
        """
        state = ensure_state(state)
        names = self._onnx_names(outputs)
        total = len(images)
        step = int(batch_size or self.batch_size)
        chunks: dict[str, list[np.ndarray]] = {k: [] for k in outputs}
        state.set_progress(0.0, f"running {self.bundle.name} on {total} images")
        for start in range(0, total, step):
            state.check()
            batch = self._prepare(images, start, min(total, start + step))
            result = self._run_tensor(batch, [n for group in names.values() for n in group])
            for key, group in names.items():
                arrays = [result[n] for n in group]
                chunks[key].append(np.stack(arrays, axis=1) if key == "attention" else arrays[0])
            done = min(total, start + step)
            state.set_progress(done / total, f"{done}/{total} images")
        if total == 0:
            return {k: self._empty(k) for k in outputs}
        return {k: np.concatenate(v, axis=0) for k, v in chunks.items()}

    def run_tensor(
        self, batch: np.ndarray, outputs: Sequence[str] = ("logits",)
    ) -> dict[str, np.ndarray]:
        """Run an already preprocessed (N, C, H, W) float32 batch; return logical outputs."""
        names = self._onnx_names(outputs)
        result = self._run_tensor(np.ascontiguousarray(batch, dtype=np.float32),
                                  [n for g in names.values() for n in g])
        return {
            key: (np.stack([result[n] for n in group], axis=1) if key == "attention"
                  else result[group[0]])
            for key, group in names.items()
        }

    def classify(
        self, images: Sequence[np.ndarray], state: TaskState | None = None
    ) -> list[dict[str, float]]:
        """Return, per image, each label's probability (or regression value).

        Multi-label models give independent sigmoid probabilities; multi-class
        models a softmax over the labels; regression models the raw values.
        """
        logits = self.run(images, ("logits",), state)["logits"]
        scores = task_outputs(logits, self.bundle.task)
        labels = self.bundle.labels
        return [{label: float(v) for label, v in zip(labels, row)} for row in scores]

    def embed(
        self, images: Sequence[np.ndarray], state: TaskState | None = None, normalise: bool = True
    ) -> np.ndarray:
        """Return (N, D) float32 embeddings, unit length by default (cosine metric)."""
        emb = self.run(images, ("embedding",), state)["embedding"].astype(np.float32)
        return l2_normalise(emb) if normalise else emb

    def attention(self, images: Sequence[np.ndarray], state: TaskState | None = None) -> np.ndarray:
        """Return (N, L, H, T, T) attention probabilities of every block.

        Token order: prefix tokens (class token) first, then the patches of
        the ``architecture.grid`` in row-major order.
        """
        return self.run(images, ("attention",), state)["attention"]

    def close(self) -> None:
        """Release the session (and its GPU memory)."""
        self.session = None

    def __enter__(self) -> ModelRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers -----------------------------------------------------------

    def _onnx_names(self, outputs: Sequence[str]) -> dict[str, list[str]]:
        mapping = self.bundle.outputs
        names: dict[str, list[str]] = {}
        for key in outputs:
            if key not in LOGICAL_OUTPUTS:
                raise ValueError(f"unknown output {key!r}; choose from {LOGICAL_OUTPUTS}")
            value = mapping.get(key)
            if not value:
                raise InferenceError(
                    f"the model does not export '{key}'",
                    path=self.bundle.path,
                    hint="re-export it with `python -m models.export`",
                )
            names[key] = list(value) if isinstance(value, list) else [value]
        return names

    def _prepare(self, images: Sequence[np.ndarray], start: int, stop: int) -> np.ndarray:
        config = self.bundle.preprocess
        tensors = []
        for index in range(start, stop):
            try:
                tensors.append(preprocess_image(images[index], config))
            except PreprocessError as exc:
                raise PreprocessError(
                    f"image {index}: {exc.message}", path=exc.path, hint=exc.hint
                ) from exc
        return np.stack(tensors).astype(np.float32, copy=False)

    def _run_tensor(self, batch: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
        if self.session is None:
            raise InferenceError("the runner was closed", path=self.bundle.path)
        try:
            values = self.session.run(names, {self.bundle.input_name: batch})
        except Exception as exc:  # onnxruntime's pybind exceptions
            raise InferenceError(
                f"ONNX Runtime failed: {str(exc).strip().splitlines()[0][:300]}",
                path=self.bundle.path,
                hint="try the CPU provider; if that fails too, re-export the bundle",
            ) from exc
        return dict(zip(names, values))

    def _empty(self, key: str) -> np.ndarray:
        dim = self.bundle.embedding_dim
        shapes: dict[str, tuple[int, ...]] = {
            "logits": (0, len(self.bundle.labels)),
            "embedding": (0, dim),
        }
        return np.zeros(shapes.get(key, (0,)), dtype=np.float32)


def describe(runner: ModelRunner) -> dict[str, Any]:
    """Return a JSON-friendly summary of a runner: bundle, provider and checksum."""
    bundle = runner.bundle
    return {
        "bundle": str(bundle.path),
        "name": bundle.name,
        "task": bundle.task,
        "labels": bundle.labels,
        "input_size": bundle.preprocess.input_size,
        "embedding_dim": bundle.embedding_dim,
        "variant": runner.variant,
        "sha256": runner.model_sha256,
        **runner.provider_report().to_dict(),
        "warnings": list(bundle.warnings),
    }


def check_runs(runner: ModelRunner) -> None:
    """Run one blank image and refuse a model whose outputs are not finite numbers.

    ``model check``, ``classify`` and index builds all call this before trusting a bundle,
    so a bundle whose normalisation or weights are broken fails the same way everywhere.

    Raises
    ------
    InferenceError
    """
    size = runner.bundle.preprocess.input_size
    wanted = tuple(name for name in ("logits", "embedding") if runner.bundle.outputs.get(name))
    out = runner.run([np.zeros((size, size), np.uint8)], wanted)
    if not all(np.all(np.isfinite(v)) for v in out.values()):
        raise InferenceError("the model outputs NaN or infinite values", path=runner.bundle.path,
                             hint="its preprocessing (mean/std) or weights are broken; "
                                  "re-export the bundle with `python -m models.export`")

"""Compute any map of an image from a model bundle, through ONNX Runtime (no torch).

:class:`Explainer` wraps a :class:`~medviewer.inference.ModelRunner`.  A model run
asks only for the outputs the map needs (logits and the attention of every
block for rollout) and is cached (a few images, keyed by the pixels), so
switching between rollout fusions, blocks and heads costs no new run.  Occlusion and the faithfulness
curves run batches of modified inputs.  Methods block: the GUI calls them on
a worker thread; an Explainer may be shared by several workers.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from medviewer.explain.attention import attention_rollout, raw_attention
from medviewer.explain.faithfulness import FaithfulnessCurves, blurred, deletion_insertion
from medviewer.explain.geometry import InputGeometry, grid_to_image, input_geometry
from medviewer.explain.maps import ExplainRequest, Explanation, PairExplanation, scale_unit
from medviewer.explain.occlusion import occlusion_map
from medviewer.explain.similarity import patch_matches
from medviewer.inference.errors import InferenceError
from medviewer.inference.postprocess import task_outputs
from medviewer.inference.preprocess import preprocess_image
from medviewer.tasks import TaskState, ensure_state


@dataclass(frozen=True)
class ModelOutputs:
    """One image's model input and outputs (batch axis removed).

    Attributes
    ----------
    tensor : np.ndarray
        (C, S, S) preprocessed input.
    logits : np.ndarray
        (K,).
    attention : np.ndarray or None
        (L, H, T, T), when the bundle exports attention.
    tokens : np.ndarray or None
        (T, d), when the bundle exports tokens.
    embedding : np.ndarray or None
        (d,), when the bundle exports an embedding.
    geometry : InputGeometry
    """

    tensor: np.ndarray
    logits: np.ndarray
    attention: np.ndarray | None
    tokens: np.ndarray | None
    embedding: np.ndarray | None
    geometry: InputGeometry


FLAT_STD = 0.01


def flat_map(grid: np.ndarray) -> float | None:
    """Return the spread (std) of a [0, 1] patch map when it is below :data:`FLAT_STD` and not all zero, else None.

    An all-zero map is "empty" (its method says why); a map whose patches are
    all (nearly) equal but not zero would tint the film evenly.
    """
    values = np.nan_to_num(np.asarray(grid, np.float64))
    if not values.any():
        return None
    spread = float(values.std())
    return spread if spread < FLAT_STD else None


def image_key(image: np.ndarray) -> str:
    """Return a digest of an image's pixels, shape and type (the cache key)."""
    arr = np.ascontiguousarray(image)
    digest = hashlib.blake2b(arr.tobytes(), digest_size=16)
    digest.update(f"{arr.shape}{arr.dtype}".encode())
    return digest.hexdigest()


class Explainer:
    """Attention, occlusion and similarity maps of a bundle, at the image's pixel size.

    Parameters
    ----------
    runner : ModelRunner
        The loaded bundle.
    cache_size : int
        Images whose model outputs are kept.
    interpolation : str
        Upsampling of patch maps: ``bilinear`` or ``nearest`` (patch blocks).
    """

    def __init__(self, runner, cache_size: int = 8, interpolation: str = "bilinear") -> None:
        self.runner = runner
        self.bundle = runner.bundle
        arch = self.bundle.metadata.get("architecture", {})
        if not arch.get("grid"):
            raise InferenceError("the bundle's metadata gives no patch grid (architecture.grid)",
                                 path=self.bundle.path, hint="re-export it with `python -m models.export`")
        self.grid = (int(arch["grid"][0]), int(arch["grid"][1]))
        self.prefix = int(arch.get("num_prefix_tokens", 1))
        self.pool = "avg" if str(arch.get("global_pool", "token")).startswith("avg") else "token"
        self.depth = len(self.bundle.attention_outputs)
        self.heads = int(arch.get("num_heads", 0) or 0)
        self.labels = self.bundle.labels
        self.interpolation = interpolation
        self._cache: OrderedDict[str, ModelOutputs] = OrderedDict()
        self._cache_size = max(1, int(cache_size))
        self._lock = threading.Lock()
        self._gradcam = None

    @property
    def has_gradcam(self) -> bool:
        """Return whether the bundle carries the Grad-CAM gradient graph."""
        return isinstance(self.bundle.metadata.get("gradcam"), dict)

    def gradcam_graph(self):
        """Return the bundle's Grad-CAM graph (its session opens on first use).

        Raises
        ------
        GradcamUnavailableError
            The bundle was exported without it.
        """
        from medviewer.explain.gradcam import GradcamGraph

        with self._lock:
            if self._gradcam is None:
                preference = getattr(self.runner, "provider_preference", None) or "cpu"
                self._gradcam = GradcamGraph(self.bundle, preference, threads=getattr(self.runner, "threads", None))
            return self._gradcam

    # -- model runs ----------------------------------------------------------------------------
    def outputs(self, image: np.ndarray, need: tuple[str, ...] = ("attention", "tokens", "embedding")
                ) -> ModelOutputs:
        """Return the model's outputs for a display image (cached by its pixels).

        Parameters
        ----------
        image : np.ndarray
            The display image.
        need : tuple of str
            Outputs wanted besides the logits; only those the bundle exports
            are asked for.  Asking ONNX Runtime for fewer outputs copies less
            (rollout asks for attention only), and a cached entry is completed
            by one more run when a later map needs an output it lacks.
        """
        key = image_key(image)
        exported = {k for k in ("embedding", "tokens", "attention") if self.bundle.outputs.get(k)}
        wanted = [k for k in need if k in exported]
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                if all(getattr(cached, k) is not None for k in wanted):
                    return cached
        tensor = cached.tensor if cached is not None else preprocess_image(image, self.bundle.preprocess)
        result = self.runner.run_tensor(tensor[None], ("logits", *wanted))
        previous = {k: getattr(cached, k) for k in ("attention", "tokens", "embedding")} if cached else {}
        got = ModelOutputs(
            tensor=tensor,
            logits=result["logits"][0],
            attention=result["attention"][0] if "attention" in result else previous.get("attention"),
            tokens=result["tokens"][0] if "tokens" in result else previous.get("tokens"),
            embedding=result["embedding"][0] if "embedding" in result else previous.get("embedding"),
            geometry=input_geometry(np.shape(image), self.bundle.preprocess, self.grid),
        )
        with self._lock:
            self._cache[key] = got
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return got

    def clear_cache(self) -> None:
        """Forget the cached model outputs (e.g. to time a model run)."""
        with self._lock:
            self._cache.clear()

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Return the logits of a preprocessed (B, C, S, S) batch."""
        return self.runner.run_tensor(batch, ("logits",))["logits"]

    def label_index(self, label: str | None, logits: np.ndarray | None = None) -> int:
        """Return the index of ``label`` (None: the highest-scoring label)."""
        if label is None:
            if logits is None:
                raise ValueError("no label given and no logits to choose one from")
            return int(np.argmax(task_outputs(np.asarray(logits)[None], self.bundle.task)[0]))
        if label not in self.labels:
            raise ValueError(f"unknown label {label!r}; the model's labels are {', '.join(self.labels)}")
        return self.labels.index(label)

    def score_fn(self, label_index: int):
        """Return batch -> (B,) probability (value, for regression) of one label."""
        task = self.bundle.task

        def score(batch: np.ndarray) -> np.ndarray:
            return task_outputs(self.logits(batch), task)[:, label_index]

        return score

    # -- maps ----------------------------------------------------------------------------------
    def _require_attention(self, out: ModelOutputs) -> np.ndarray:
        if out.attention is None:
            raise InferenceError("the model exports no attention maps", path=self.bundle.path,
                                 hint="use occlusion, or re-export it with `python -m models.export`")
        return out.attention

    def explain(self, image: np.ndarray, request: ExplainRequest | None = None,
                state: TaskState | None = None) -> Explanation:
        """Return the map ``request`` asks for (not ``similarity``: see :meth:`explain_pair`).

        Raises
        ------
        ValueError
            A parameter is out of range (block, head, label).
        InferenceError
            The bundle lacks an output the method needs.
        TaskCancelled
            Cancellation was requested.
        """
        state = ensure_state(state)
        request = request or ExplainRequest()
        t0 = time.perf_counter()
        fallback_note = None
        if request.method == "gradcam" and not self.has_gradcam:
            if not request.fallback:
                self.gradcam_graph()  # raises GradcamUnavailableError, in words
            fallback_note = ("this bundle has no Grad-CAM gradient graph (exported before Grad-CAM support): "
                             "showing occlusion instead; re-export it for Grad-CAM")
            request = request.with_(method="occlusion")
        out = self.outputs(image, ("attention",) if request.method in ("rollout", "attention") else ())
        # Attention maps are stretched to their own range (their floor is far above 0, and
        # the legend says so); occlusion keeps 0 = "hiding this changes nothing".
        label, score, mode = None, None, "minmax"
        if request.method == "rollout":
            raw = attention_rollout(self._require_attention(out), fusion=request.fusion,
                                    discard_ratio=request.discard_ratio,
                                    num_prefix_tokens=self.prefix, pool=self.pool)
        elif request.method == "attention":
            raw = raw_attention(self._require_attention(out)[None], request.block, request.head,
                                num_prefix_tokens=self.prefix)[0]
        elif request.method == "occlusion":
            index = self.label_index(request.label, out.logits)
            label = self.labels[index]
            fill = (blurred(out.tensor, 0.5 * out.tensor.shape[1] / self.grid[0])
                    if request.fill == "blur" else 0.0)
            raw_grid, score = occlusion_map(out.tensor, self.logits, index, self.grid, window=request.window,
                                            stride=request.stride, fill=fill, state=state)
            raw = raw_grid.ravel()
            request = request.with_(label=label)
            mode = "max"
        elif request.method == "gradcam":
            index = self.label_index(request.label, out.logits)
            label = self.labels[index]
            cams, logits = self.gradcam_graph().cam(out.tensor, index)
            raw, score = cams[0].ravel(), float(out.logits[index])  # the model's own logit
            request = request.with_(label=label)
            mode = "max"
        else:
            raise ValueError("similarity maps need two images: use explain_pair")
        raw_grid = np.asarray(raw, dtype=np.float64).reshape(self.grid)
        grid, scale = scale_unit(raw_grid, mode)
        result = self._finish(grid, raw_grid, request, out.geometry, scale, time.perf_counter() - t0,
                              label=label, score=score)
        if request.method == "occlusion" and scale[1] <= 0:
            result.extra["note"] = (f"no region supports {label}: hiding any window does not lower its "
                                    "score, so the map is empty")
        if request.method == "gradcam" and scale[1] <= 0:
            result.extra["note"] = (f"Grad-CAM is empty for {label}: no patch's activations push its logit up "
                                    "(all negative before the ReLU)")
        if fallback_note:
            result.extra["fallback"] = fallback_note
        return result

    def explain_pair(self, query: np.ndarray, other: np.ndarray,
                     state: TaskState | None = None) -> PairExplanation:
        """Return paired "why similar" maps: each patch's best cosine match in the other image."""
        state = ensure_state(state)
        t0 = time.perf_counter()
        q, o = self.outputs(query, ("tokens", "embedding")), self.outputs(other, ("tokens", "embedding"))
        if q.tokens is None or o.tokens is None:
            raise InferenceError("the model exports no patch tokens, so it cannot show why cases are similar",
                                 path=self.bundle.path, hint="re-export it with `python -m models.export`")
        matches = patch_matches(q.tokens, o.tokens, self.prefix)
        # One scale for both images: the rank of each patch's best cosine among all the
        # pair's patches (0 = the worst-matched patch, 1 = the best).  Most patches of two
        # radiographs match closely, so a linear cosine scale would paint everything bright;
        # ranks show where the matches are, and the raw cosines stay in ``raw``.
        from scipy.stats import rankdata

        both = np.concatenate([matches.query_best, matches.other_best])
        ranks = (rankdata(both) - 1) / max(len(both) - 1, 1)
        low, high = float(both.min()), float(both.max())
        request = ExplainRequest("similarity")
        seconds = time.perf_counter() - t0
        pair = []
        halves = (ranks[:len(matches.query_best)], ranks[len(matches.query_best):])
        for best, rank, geometry in ((matches.query_best, halves[0], q.geometry),
                                     (matches.other_best, halves[1], o.geometry)):
            pair.append(self._finish(rank.reshape(self.grid).astype(np.float32), best.reshape(self.grid),
                                     request, geometry, (low, high), seconds))
        pair[0].extra["best_match"] = matches.query_match.tolist()
        pair[1].extra["best_match"] = matches.other_match.tolist()
        cosine = float("nan")
        if q.embedding is not None and o.embedding is not None:
            a, b = q.embedding.astype(np.float64), o.embedding.astype(np.float64)
            cosine = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
        return PairExplanation(pair[0], pair[1], cosine)

    def _finish(self, grid: np.ndarray, raw_grid: np.ndarray, request: ExplainRequest,
                geometry: InputGeometry, scale: tuple[float, float], seconds: float,
                label: str | None = None, score: float | None = None) -> Explanation:
        flat = flat_map(grid)
        raw_values = np.nan_to_num(np.asarray(raw_grid, np.float64))
        if flat is None and raw_values.any() and np.ptp(raw_values) <= 1e-9 * np.abs(raw_values).max():
            flat = 0.0  # every patch has the same raw value (min-max scaling made it all zero)
        if flat is not None:
            # No structure: drawing it would tint the whole film evenly, which reads as "everywhere".
            grid = np.zeros_like(np.asarray(grid, np.float32))
        image_map = np.clip(grid_to_image(grid, geometry, interpolation=self.interpolation), 0.0, 1.0)
        explanation = Explanation(image_map=image_map, grid=np.asarray(grid, np.float32),
                           raw=np.asarray(raw_grid, np.float32), request=request,
                           title=request.describe(self.depth), geometry=geometry, label=label,
                           score=score, scale=scale, seconds=seconds, model_sha256=self.bundle.sha256)
        if flat is not None:
            explanation.extra["flat"] = True
            explanation.extra["note"] = (f"the map has no structure (spread {flat:.3f} < {FLAT_STD}): it is not "
                                         "drawn, as an even tint would suggest the whole image matters equally")
        return explanation

    # -- trust checks ----------------------------------------------------------------------------
    def faithfulness(self, image: np.ndarray, explanation: Explanation, *, label: str | None = None,
                     steps: int = 32, random_orders: int = 3,
                     state: TaskState | None = None) -> FaithfulnessCurves:
        """Return deletion/insertion curves of a map for a label (default: its own, else the top one)."""
        out = self.outputs(image, ())
        index = self.label_index(label or explanation.label, out.logits)
        return deletion_insertion(out.tensor, explanation.raw, self.score_fn(index), steps=steps,
                                  random_orders=random_orders, state=state)

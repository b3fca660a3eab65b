"""Attention and saliency overlays for the GUI and the CLI: maps, files, trust checks, lesion figures.

No Qt.  The overlay panel runs these functions on a worker thread; the
``explain`` and ``explain-check`` commands call them directly.  Typical use::

    explainer = open_explainer("models/demo")             # or a ModelRunner
    e = explainer.explain(image, ExplainRequest("rollout"))
    save_map(e, image, "map.png")                          # or .npy (values in [0, 1])
    pair = explain_hit(explainer, image, hit)              # "why similar" for a search result
    report = trust_report(explainer, image, request)       # randomisation + deletion/insertion
    figures = lesion_figures(explainer, "synthetic-dataset/")   # map share inside lesion masks
"""

from __future__ import annotations

import atexit
import csv
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medviewer.errors import MedViewerError
from medviewer.explain import (
    NOTE,
    Explainer,
    ExplainRequest,
    Explanation,
    PairExplanation,
    compose,
    mask_share,
    randomised_bundle,
    spearman,
    ssim,
)
from medviewer.explain.render import save_png
from medviewer.tasks import TaskState, ensure_state

__all__ = [
    "NOTE",
    "LesionFigures",
    "SanityResult",
    "TrustReport",
    "display_image",
    "explain_hit",
    "hit_image",
    "lesion_figures",
    "open_explainer",
    "randomisation_check",
    "cascading_randomisation",
    "cascade_scopes",
    "randomised_explainer",
    "save_map",
    "trust_report",
]


def open_explainer(model: Any, *, provider: str = "auto", threads: int | None = None) -> Explainer:
    """Return an :class:`Explainer` for a bundle folder, a loaded Bundle or a ModelRunner.

    Raises
    ------
    BundleError
        The bundle folder is invalid.
    """
    from medviewer.inference import Bundle, ModelRunner, load_bundle

    if isinstance(model, Explainer):
        return model
    if isinstance(model, ModelRunner):
        return Explainer(model)
    bundle = model if isinstance(model, Bundle) else load_bundle(model)
    return Explainer(ModelRunner(bundle, provider, threads=threads))


def display_image(path: str | Path, frame: int | None = 0) -> np.ndarray:
    """Return a frame of an image file (DICOM, PNG, JPEG) as the viewer displays it.

    Raises
    ------
    ImageReadError
        The file cannot be decoded.
    """
    from medviewer.dicom.pixels import decode
    from medviewer.dicom.sources import FileRef
    from medviewer.display.render import render_frame

    ref = FileRef.from_display(str(path))
    decoded = decode(ref)
    count = decoded.frame_count
    if frame is None:
        if count > 1:
            raise MedViewerError(f"the image has {count} frames and none was chosen", path=str(path),
                                 hint=f"choose one with --frame N (0..{count - 1})")
        frame = 0
    if not 0 <= frame < count:
        raise MedViewerError(f"frame {frame} does not exist: the image has {count} frame(s)", path=str(path),
                             hint=f"choose --frame 0..{count - 1}")
    return render_frame(decoded, frame)


def hit_image(hit: Any) -> np.ndarray:
    """Return a search result's frame as displayed (a :class:`~medviewer.retrieval.Hit`)."""
    return display_image(hit.location, int(getattr(hit, "frame", 0)))


def explain_hit(explainer: Explainer, query_image: np.ndarray, hit: Any,
                state: TaskState | None = None) -> tuple[PairExplanation, np.ndarray]:
    """Return the "why similar" pair for a query image and a search result, and the result's image."""
    other = hit_image(hit)
    return explainer.explain_pair(query_image, other, state=state), other


def save_map(explanation: Explanation, image: np.ndarray, path: str | Path, *, opacity: float = 0.5,
             threshold: float = 0.0, legend: bool = True, notes: tuple[str, ...] = ()) -> Path:
    """Write a map: ``.npy`` = (rows, cols) float32 in [0, 1]; ``.png`` = image, overlay, colour bar.

    Raises
    ------
    MedViewerError
        The suffix is neither ``.npy`` nor ``.png``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        np.save(path, explanation.image_map.astype(np.float32))
    elif suffix == ".png":
        title = explanation.title
        if explanation.request.method in ("occlusion", "gradcam") and explanation.score is not None:
            title += f"; logit {explanation.score:.2f}"
        from medviewer.explain import seen_mask

        seen = seen_mask(explanation.geometry)
        if explanation.request.method == "similarity":
            title += (f"; bright = best-matched patches (cosine {explanation.scale[0]:.2f} to "
                      f"{explanation.scale[1]:.2f})")
        extra = tuple(notes) + tuple(explanation.extra[k] for k in ("fallback", "note") if explanation.extra.get(k))
        save_png(compose(image, explanation.image_map, opacity=opacity, threshold=threshold, title=title,
                         legend=legend, seen=seen, notes=extra), str(path))
    else:
        raise MedViewerError(f"cannot write a map to '{path.name}'", path=path,
                             hint="use a .png (image with overlay) or .npy (the map) file name")
    return path


# -- model randomisation (Adebayo et al. 2018) ----------------------------------------------------
_RANDOMISED: dict[tuple[str, str, int], Explainer] = {}
_RANDOMISED_LOCK = threading.Lock()
_TEMP_DIRS: list[str] = []


def _cleanup() -> None:
    for folder in _TEMP_DIRS:
        shutil.rmtree(folder, ignore_errors=True)


atexit.register(_cleanup)


def randomised_explainer(explainer: Explainer, *, scope: str = "all", seed: int = 0) -> Explainer:
    """Return an Explainer for a copy of the bundle with randomised weights (kept for the session).

    Raises
    ------
    MedViewerError
        The ``onnx`` package is missing.
    """
    from medviewer.inference import ModelRunner, load_bundle

    key = (explainer.bundle.sha256, scope, int(seed))
    with _RANDOMISED_LOCK:
        if key in _RANDOMISED:
            return _RANDOMISED[key]
        folder = tempfile.mkdtemp(prefix="medviewer-randomised-")
        _TEMP_DIRS.append(folder)
        randomised_bundle(explainer.bundle, folder, scope=scope, seed=seed)
        threads = explainer.runner.session.get_session_options().intra_op_num_threads or None
        runner = ModelRunner(load_bundle(folder), "cpu", threads=threads)
        _RANDOMISED[key] = Explainer(runner, interpolation=explainer.interpolation)
        return _RANDOMISED[key]


@dataclass(frozen=True)
class SanityResult:
    """Maps of the trained and the randomised model compared, for one method.

    Attributes
    ----------
    method : str
        The method's title.
    scope : str
        What was randomised: ``all`` weights or only the ``head``.
    spearman : list of float
        Per image, Spearman rank correlation of the patch maps.
    ssim : list of float
        Per image, SSIM of the maps (on at most 256 px, maps in [0, 1]).
    """

    method: str
    scope: str
    spearman: list[float]
    ssim: list[float]

    @property
    def mean_spearman(self) -> float:
        """Mean Spearman correlation over the images."""
        return float(np.nanmean(self.spearman)) if self.spearman else float("nan")

    @property
    def mean_ssim(self) -> float:
        """Mean SSIM over the images."""
        return float(np.nanmean(self.ssim)) if self.ssim else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Return the figures as JSON-friendly data."""
        return {"method": self.method, "scope": self.scope, "images": len(self.spearman),
                "mean_spearman": round(self.mean_spearman, 4), "mean_ssim": round(self.mean_ssim, 4),
                "spearman": [round(v, 4) for v in self.spearman], "ssim": [round(v, 4) for v in self.ssim]}


def _small(image_map: np.ndarray, longest: int = 256) -> np.ndarray:
    step = max(1, int(np.ceil(max(image_map.shape) / longest)))
    return image_map[::step, ::step]


def randomisation_check(explainer: Explainer, images: list[np.ndarray], request: ExplainRequest, *,
                        scope: str = "all", seed: int = 0, state: TaskState | None = None) -> SanityResult:
    """Compare a method's maps of the trained and the randomised model on some images.

    A method that passes gives clearly different maps (Spearman and SSIM near
    0); values near 1 mean the map does not depend on the learned weights.
    """
    state = ensure_state(state)
    random = randomised_explainer(explainer, scope=scope, seed=seed)
    rhos, sims = [], []
    for n, image in enumerate(images):
        state.check()
        if request.method == "similarity":
            raise ValueError("the randomisation check takes single-image methods (not similarity)")
        label = request.label
        trained = explainer.explain(image, request)
        # The randomised model explains the same label (its own top label may differ).
        other = random.explain(image, request.with_(label=label or trained.label))
        rhos.append(spearman(trained.raw, other.raw))
        sims.append(ssim(_small(trained.image_map), _small(other.image_map)))
        state.set_progress((n + 1) / len(images), f"randomisation check {n + 1}/{len(images)}")
    return SanityResult(request.describe(explainer.depth), scope, rhos, sims)


def cascade_scopes(depth: int) -> list[str]:
    """Return the cascading randomisation's steps, top layer first: head, last block, ..., all weights."""
    return ["head", *[f"cascade-{n}" for n in range(1, depth + 1)], "all"]


def cascading_randomisation(explainer: Explainer, images: list[np.ndarray], request: ExplainRequest, *,
                            seed: int = 0, state: TaskState | None = None) -> list[SanityResult]:
    """Run the randomisation check block by block from the top (Adebayo et al. 2018, section 3.1).

    Returns one result per step of :func:`cascade_scopes`: a method that
    depends on the learned weights loses its similarity to the trained maps
    as more blocks are randomised; one that stays similar to the end does not
    depend on them.
    """
    state = ensure_state(state)
    steps = cascade_scopes(explainer.depth or int(explainer.bundle.metadata["architecture"]["depth"]))
    results = []
    for n, scope in enumerate(steps):
        state.check()
        results.append(randomisation_check(explainer, images, request, scope=scope, seed=seed))
        state.set_progress((n + 1) / len(steps), f"cascading randomisation {n + 1}/{len(steps)}")
    return results


@dataclass
class TrustReport:
    """Trust checks of one map of one image: randomisation and deletion/insertion."""

    title: str
    faithfulness: dict[str, Any]
    randomised: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-friendly data."""
        return {"title": self.title, "faithfulness": self.faithfulness, "randomised": self.randomised,
                "problems": self.problems}

    def text(self) -> str:
        """Return the report in a few lines for people."""
        f = self.faithfulness
        lines = [self.title,
                 f"deletion AUC {f['deletion_auc']:.3f} (random order {f['random_deletion_auc']:.3f}; "
                 "lower is better)",
                 f"insertion AUC {f['insertion_auc']:.3f} (random order {f['random_insertion_auc']:.3f}; "
                 "higher is better)"]
        if self.randomised:
            r = self.randomised
            lines.append(f"randomised weights: Spearman {r['mean_spearman']:.2f}, SSIM {r['mean_ssim']:.2f} "
                         "(near 1 = the map ignores what the model learned)")
        lines.extend(self.problems)
        return "\n".join(lines)


def trust_report(explainer: Explainer, image: np.ndarray, request: ExplainRequest, *,
                 explanation: Explanation | None = None, randomise: bool = True, steps: int = 32,
                 state: TaskState | None = None) -> TrustReport:
    """Return deletion/insertion areas and (where ``onnx`` is installed) the randomisation similarity."""
    state = ensure_state(state)
    explanation = explanation or explainer.explain(image, request, state=state)
    curves = explainer.faithfulness(image, explanation, steps=steps, state=state)
    faith = curves.to_dict()
    label = explainer.labels[explainer.label_index(explanation.label, explainer.outputs(image, ()).logits)]
    faith["label"] = label
    problems, randomised = [], None
    if randomise and request.method != "similarity":
        try:
            randomised = randomisation_check(explainer, [image], request.with_(label=explanation.label),
                                             state=state).to_dict()
        except MedViewerError as exc:
            problems.append(f"randomisation check skipped: {exc}")
    return TrustReport(explanation.title + f" [scored on {label}]", faith, randomised, problems)


# -- lesion masks of the synthetic radiographs -----------------------------------------------------
@dataclass
class LesionFigures:
    """Share of map mass inside lesion masks, per method and finding, against random maps.

    ``rows`` holds one dict per (method, finding): images, mean share, mean
    mask area, mean random-map share, pointing-hit rate.
    """

    rows: list[dict[str, Any]]
    images: int
    skipped: list[str]

    def to_dict(self) -> dict[str, Any]:
        """Return the figures as JSON-friendly data."""
        return {"images": self.images, "rows": self.rows, "skipped": self.skipped}

    def text(self) -> str:
        """Return a table for people."""
        width = max([len(r["method"]) for r in self.rows] + [6])
        lines = [f"{'method':<{width}} {'finding':<13} {'n':>3} {'share':>6} {'area':>6} {'random':>6} "
                 f"{'ratio':>6} {'hit':>5}"]
        for r in self.rows:
            ratio = r["share"] / r["random_share"] if r["random_share"] else float("nan")
            lines.append(f"{r['method']:<{width}} {r['finding']:<13} {r['images']:>3} {r['share']:6.3f} "
                         f"{r['area']:6.3f} {r['random_share']:6.3f} {ratio:6.2f} {r['hit_rate']:5.2f}")
        return "\n".join(lines)


def lesion_figures(explainer: Explainer, dataset: str | Path,
                   requests: list[ExplainRequest] | None = None, *, limit: int | None = None,
                   state: TaskState | None = None) -> LesionFigures:
    """Measure how much of each method's map falls inside the lesion masks of a synthetic dataset.

    Parameters
    ----------
    explainer : Explainer
    dataset : path
        A folder written by ``medviewer.synthetic.generate_dataset`` (its
        ``labels.csv`` has ``path``, ``labels``, ``mask_path``, ``kind``).
    requests : list of ExplainRequest, optional
        Methods; default rollout and occlusion (both fills).  Occlusion
        explains the image's finding; only films with exactly one finding
        the model knows are used, so the mask is that finding's.
    limit : int, optional
        At most this many films.
    """
    from PIL import Image

    state = ensure_state(state)
    folder = Path(dataset)
    table = folder / "labels.csv"
    if not table.is_file():
        raise MedViewerError("no labels.csv in the folder", path=folder,
                             hint="pass a folder written by `medviewer synthetic`")
    requests = requests or [ExplainRequest("rollout"), ExplainRequest("occlusion", fill="mean"),
                            ExplainRequest("occlusion", fill="blur")]
    with table.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("kind", "radiograph") == "radiograph"]
    chosen = []
    for row in rows:
        findings = [f for f in row.get("labels", "").split("|") if f in explainer.labels]
        if len(findings) == 1 and row.get("mask_path"):
            chosen.append((row, findings[0]))
    chosen = chosen[:limit] if limit else chosen
    results: dict[tuple[str, str], list] = {}
    skipped = []
    for n, (row, finding) in enumerate(chosen):
        state.check()
        try:
            image = display_image(folder / row["path"])
            mask = np.asarray(Image.open(folder / row["mask_path"])) > 0
        except (MedViewerError, OSError) as exc:
            skipped.append(f"{row['path']}: {exc}")
            continue
        for request in requests:
            req = request.with_(label=finding) if request.method == "occlusion" else request
            e = explainer.explain(image, req)
            share = mask_share(e.image_map, mask, e.geometry)
            results.setdefault((e.title.replace(f": {finding}", ""), finding), []).append(share)
        state.set_progress((n + 1) / len(chosen), f"lesion figures {n + 1}/{len(chosen)}")
    table_rows = []
    for (method, finding), shares in sorted(results.items()):
        table_rows.append({
            "method": method, "finding": finding, "images": len(shares),
            "share": round(float(np.nanmean([s.share for s in shares])), 4),
            "area": round(float(np.mean([s.area for s in shares])), 4),
            "random_share": round(float(np.mean([s.random_share for s in shares])), 4),
            "hit_rate": round(float(np.mean([s.hit for s in shares])), 4),
        })
    return LesionFigures(table_rows, len(chosen) - len(skipped), skipped)

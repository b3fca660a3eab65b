"""Which report sentences match this image, or this region of it (an image-text bundle).

The whole image is compared through the bundle's global ``embedding``; a region
through PRIOR's local sentence-region alignment: the patch ``tokens`` the
rectangle covers (each weighted by the share of its footprint inside the
rectangle), unit-normalised, pooled and normalised again, then the cosine with
each sentence's ``text_embedding`` (one joint space, declared in the bundle's
``image_text.joint_space``).  The rectangle is in the displayed image's pixels,
carried through the bundle's resize and centre crop
(:mod:`medviewer.explain.geometry`); the part the model never sees is said.

Sentences: the case's own report, and optionally the distinct sentences of the
library's other reports (each with the cases whose reports hold it).  Every
result says whether the model applies to the image, in words, before the
numbers.  No Qt.

References
----------
Cheng P, Lin L, Lyu J, Huang Y, Luo W, Tang X. PRIOR: Prototype representation
joint learning from medical images and reports. ICCV 2023 (local alignment).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from medviewer.reports.learned import is_image_text_bundle, pool_region, rank_sentences
from medviewer.reports.negation import split_sentences
from medviewer.reports.sections import searchable_text
from medviewer.reports.store import ReportStore
from medviewer.store.library import Library

# Distinct library sentences encoded at most (the most frequent first).
LIBRARY_SENTENCES = 5000
NO_MODEL = ("No model is loaded: load an image-text model (one trained with models.prior_train) "
            "to rank report sentences against the image.")


@dataclass(frozen=True)
class SentenceMatch:
    """One sentence and its cosine to the image or region.

    Attributes
    ----------
    sentence : str
    cosine : float
        In the model's joint space: a ranking, not a probability.
    cases : tuple of int
        The cases whose reports hold the sentence (the query case for its own report).
    """

    sentence: str
    cosine: float
    cases: tuple[int, ...] = ()

    def to_dict(self) -> dict:
        """Return a JSON-friendly dict."""
        return {"sentence": self.sentence, "cosine": round(float(self.cosine), 6),
                "cases": list(self.cases)}


@dataclass
class SentenceMatches:
    """The sentences of a case's report (and of the library) ranked against its image or a region.

    Attributes
    ----------
    case_id : int
    region : Region or None
        None: the whole image.
    patches : int
        Patch tokens the region covers (0 for the whole image).
    seen : float
        Share of the drawn rectangle inside the image and the model's centre crop (1 for the
        whole image).
    applicability : Applicability or None
    own, library : list of SentenceMatch
        Best first.
    notes : list of str
    """

    case_id: int
    region: Any = None
    patches: int = 0
    seen: float = 1.0
    applicability: Any = None
    own: list[SentenceMatch] = field(default_factory=list)
    library: list[SentenceMatch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def target(self) -> str:
        """Return what was matched, in words."""
        if self.region is None:
            return "the image"
        r = self.region
        return f"the region {r.width}\u00d7{r.height} px at ({r.x}, {r.y})"

    def to_dict(self) -> dict:
        """Return a JSON-friendly dict (the CLI's ``report match --json``)."""
        return {"case_id": self.case_id,
                "region": self.region.to_dict() if self.region is not None else None,
                "patches": self.patches, "seen_fraction": round(float(self.seen), 4),
                "applicability": self.applicability.to_dict() if self.applicability else None,
                "own_report": [m.to_dict() for m in self.own],
                "library": [m.to_dict() for m in self.library], "notes": list(self.notes)}


def model_problem(model: str | None) -> str | None:
    """Return why ``model`` cannot rank sentences, in words; None when it can."""
    if not model:
        return NO_MODEL
    if not is_image_text_bundle(model):
        from pathlib import Path

        return (f"The loaded model \u201c{Path(model).name}\u201d is an image-only model: it "
                "has no text encoder, so it cannot compare report sentences with the image. "
                "Load an image-text model (models.prior_train).")
    return None


@lru_cache(maxsize=2)
def _runner(path: str, provider: str):
    from medviewer.inference import ModelRunner

    return ModelRunner(path, provider)


def region_weights(geometry, region) -> tuple[np.ndarray, float]:
    """Return (per-patch share of its footprint inside ``region``, share of the region seen).

    Parameters
    ----------
    geometry : medviewer.explain.geometry.InputGeometry
    region : medviewer.retrieval.search.Region
        In the displayed image's pixels.
    """
    from medviewer.explain.geometry import image_to_grid, seen_mask

    rows, cols = geometry.image_shape
    mask = np.zeros((rows, cols), np.float32)
    x0, y0 = max(0, int(region.x)), max(0, int(region.y))
    x1, y1 = min(cols, int(region.x + region.width)), min(rows, int(region.y + region.height))
    if x1 <= x0 or y1 <= y0:
        return np.zeros(geometry.grid, np.float32), 0.0
    mask[y0:y1, x0:x1] = 1.0
    # Over the rectangle as drawn: the part beyond the image is not seen either.
    seen = float(seen_mask(geometry)[y0:y1, x0:x1].sum()) / max(1, region.width * region.height)
    return image_to_grid(mask, geometry), seen


def match_sentences(library: Library, case_id: int, model: str, *, region=None,
                    include_library: bool = False, runner=None, provider: str = "auto",
                    sentences: list[str] | None = None, limit: int = 8) -> SentenceMatches:
    """Rank the case's report sentences (and the library's) against its image or a region.

    Parameters
    ----------
    model : str
        An image-text bundle folder.
    region : Region, optional
        A rectangle of the displayed image, in pixels; None for the whole image.
    include_library : bool
        Also rank the distinct sentences of the library's other reports (top ``limit``).
    runner : ModelRunner, optional
        The app's runner of the same bundle, reused instead of opening another.
    sentences : list of str, optional
        Rank these instead of the case's report.

    Raises
    ------
    ReportError
        The case is not in the library, or has no report and no sentences were given.
    BundleError
        ``model`` is not an image-text bundle (see :func:`model_problem`).
    QueryError
        The region lies outside the part of the image the model sees.
    """
    from medviewer.explain.geometry import input_geometry
    from medviewer.reports.errors import ReportError
    from medviewer.retrieval.catalog import read_catalog
    from medviewer.retrieval.errors import QueryError
    from medviewer.services.learned_search import _encoder
    from medviewer.services.retrieval import case_image

    encoder = _encoder(str(model), provider)
    if runner is None or str(getattr(runner.bundle, "path", "")) != str(encoder.bundle_path):
        runner = _runner(str(encoder.bundle_path), provider)
    case = read_catalog(library).get(int(case_id))
    if case is None:
        raise ReportError(f"case {case_id} is not in the library", path=str(library.path))
    store = ReportStore(library)
    if sentences is None:
        reports = store.reports_for_case(int(case_id))
        sentences = split_sentences(searchable_text(reports[0].sections)) if reports else []
    if not sentences and not include_library:
        raise ReportError(f"case {case_id} has no report to match", path=str(library.path),
                          hint="import or type the case's report, or rank the library's sentences")
    pixels = case_image(case)
    wanted = ("embedding", "tokens") if region is not None else ("embedding",)
    out = runner.run([pixels], wanted)
    embedding = np.asarray(out["embedding"][0], np.float32)
    embedding = embedding / max(float(np.linalg.norm(embedding)), 1e-12)  # as runner.embed gives
    found = SentenceMatches(case_id=int(case_id), region=region)
    found.applicability = _verdict(runner, case, pixels, embedding)
    vector = embedding
    if region is not None:
        arch = runner.bundle.metadata.get("architecture", {})
        geometry = input_geometry(pixels.shape, runner.bundle.preprocess, arch["grid"])
        weights, seen = region_weights(geometry, region)
        if not weights.any():
            raise QueryError(f"{found.target} lies outside the part of the image the model sees "
                             "(its centre crop)", hint="draw the rectangle nearer the centre")
        found.patches, found.seen = int((weights > 0).sum()), seen
        if seen < 0.99:
            found.notes.append(f"{100 * (1 - seen):.0f}% of the region lies outside the image or "
                               "the model's centre crop and was not seen.")
        prefix = int(arch.get("num_prefix_tokens", 1))
        vector = pool_region(out["tokens"][0], weights.ravel(), prefix)
    found.own = [SentenceMatch(s, c, (int(case_id),))
                 for s, c in rank_sentences(encoder, vector, list(dict.fromkeys(sentences)))]
    if include_library:
        found.library, note = _library_matches(store, encoder, vector, int(case_id), set(sentences),
                                               limit)
        found.notes += [note] if note else []
    return found


def _verdict(runner, case, pixels: np.ndarray, embedding: np.ndarray):
    """Return whether the model applies to the case's image (its header, else its pixels)."""
    from medviewer.dicom.sources import FileRef
    from medviewer.errors import MedViewerError
    from medviewer.services.applicability import image_applicability

    try:
        return image_applicability(runner, FileRef.from_display(case.location), pixels,
                                   embedding=embedding)
    except (MedViewerError, OSError):  # the file cannot be read again: judge the pixels
        return image_applicability(runner, None, pixels, embedding=embedding)


_LIBRARY_CACHE: dict[tuple[str, str, str], tuple[list[str], list[tuple[int, ...]], np.ndarray]] = {}


def _library_matches(store: ReportStore, encoder, vector: np.ndarray, case_id: int,
                     own: set[str], limit: int) -> tuple[list[SentenceMatch], str | None]:
    """Return the best distinct sentences of the other reports, and a note when capped."""
    key = (str(store.library.path), store.reports_version(), str(encoder.bundle_path))
    cached = _LIBRARY_CACHE.get(key)
    if cached is None:
        where: dict[str, set[int]] = {}
        for other, report in store.case_reports().items():
            for sentence in split_sentences(searchable_text(report.sections)):
                where.setdefault(sentence, set()).add(int(other))
        ordered = sorted(where, key=lambda s: (-len(where[s]), s))
        capped = ordered[:LIBRARY_SENTENCES]
        cached = (capped, [tuple(sorted(where[s])) for s in capped],
                  encoder.encode(capped) if capped else np.zeros((0, encoder.dim), np.float32))
        _LIBRARY_CACHE.clear()  # one library's sentences at a time
        _LIBRARY_CACHE[key] = cached
        total = len(ordered)
    else:
        total = len(cached[0])
    texts, cases, vectors = cached
    if not texts:
        return [], "The library's other reports hold no sentences."
    v = np.asarray(vector, np.float32)
    scores = vectors @ (v / max(float(np.linalg.norm(v)), 1e-12))
    out = []
    for i in np.argsort(-scores, kind="stable"):
        others = tuple(c for c in cases[i] if c != case_id)
        if texts[i] in own or not others:
            continue
        out.append(SentenceMatch(texts[i], float(scores[i]), others))
        if len(out) >= limit:
            break
    note = (f"Only the {LIBRARY_SENTENCES} most frequent of {total} distinct library sentences "
            "were ranked." if total > LIBRARY_SENTENCES else None)
    return out, note
